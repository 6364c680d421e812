"""The Verilog conversion (:mod:`rtl_gen.verilog`) and the hierarchy it keeps
(:mod:`hw.hierarchy`)."""

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.config import AccelConfig
from hw import hierarchy
from hw.top import SwatAccel
from rtl_gen.verilog import convert_with_modules, prefix_modules, to_verilog


class _Inverter(wiring.Component):
    a: In(4)
    y: Out(4)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.y.eq(~self.a)
        return m


class _Pair(wiring.Component):
    """Two equal inverters (one module) and a shared input wired to both."""
    a: In(4)
    y0: Out(4)
    y1: Out(4)

    def elaborate(self, platform):
        m = Module()
        for i, y in enumerate((self.y0, self.y1)):
            inv = _Inverter()
            m.submodules[f"inv{i}"] = hierarchy.instantiate(inv, {}, inputs={"a": self.a})
            m.d.comb += y.eq(inv.y)
        return m


def test_equal_components_share_one_module():
    text = to_verilog(_Pair(), "pair")
    name = prefix_modules(hierarchy.module_name(_Inverter, {}), "pair")
    assert text.count(f"module {name}(") == 1
    assert f"  {name} inv0 (" in text and f"  {name} inv1 (" in text
    assert "(* top" not in text.split(f"module {name}(")[0].split("module pair(")[1]


def test_module_names_follow_parameters_and_class():
    assert hierarchy.module_name(_Inverter, {"n": 1}) == hierarchy.module_name(_Inverter(), {"n": 1})
    assert hierarchy.module_name(_Inverter, {"n": 1}) != hierarchy.module_name(_Inverter, {"n": 2})
    assert hierarchy.module_name(_Pair, {}) != hierarchy.module_name(_Inverter, {})


def test_shared_inputs_are_checked():
    inv = _Inverter()
    with pytest.raises(ValueError, match=r"^'y' is not an input port of "):
        hierarchy.instantiate(inv, {}, inputs={"y": Signal(4)})
    with pytest.raises(ValueError, match=r"^'a' takes 4 bits, not 3$"):
        hierarchy.instantiate(inv, {}, inputs={"a": Signal(3)})


def test_two_top_names_can_be_read_together():
    a, b = to_verilog(_Pair(), "left"), to_verilog(_Pair(), "right")
    modules_a = {line.split("(")[0] for line in a.splitlines() if line.startswith("module ")}
    modules_b = {line.split("(")[0] for line in b.splitlines() if line.startswith("module ")}
    assert not modules_a & modules_b


def test_parallel_conversion_gives_the_same_text():
    config = AccelConfig(pe_rows=2, pe_cols=2)
    one = convert_with_modules(SwatAccel(config), "swat_accel", jobs=1)
    two = convert_with_modules(SwatAccel(config), "swat_accel", jobs=2)
    assert one == two
    assert one.count("(* top =") == 1
    assert one.index("module swat_accel(") < one.index("module swat_topkselector_")
