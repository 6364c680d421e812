import pytest
from amaranth.lib import data

from hw.memory import MODULE, SimpleDualPortMemory, address_width
from rtl_gen.verilog import to_verilog


def test_address_width_is_never_zero():
    assert [address_width(d) for d in (1, 2, 3, 4, 5, 1024, 1025)] == [1, 1, 2, 2, 3, 10, 11]


def test_rejects_bad_depth():
    with pytest.raises(ValueError, match=r"^depth must be at least 1, not 0$"):
        SimpleDualPortMemory(shape=8, depth=0)


def test_layout_words_and_ports():
    layout = data.StructLayout({"a": 3, "b": 5})
    mem = SimpleDualPortMemory(shape=layout, depth=6)
    assert mem.width == 8 and len(mem.w_addr) == 3
    assert mem.read_port().data is mem.r_data and mem.write_port().en is mem.w_en


def test_verilog_is_one_instance_and_the_module_once():
    text = to_verilog(SimpleDualPortMemory(shape=12, depth=3000), "mem")
    assert text.count("module mem_sdp_ram") == 1 and MODULE not in text
    assert ".DEPTH(32'd3000)" in text and ".WIDTH(32'd12)" in text
    assert "initial" not in text.split("module mem_sdp_ram")[0], "no per-word initial block"


@pytest.mark.parametrize("width, depth", [(1, 1), (8, 2), (13, 37), (36, 512)])
def test_cocotb_read_before_write_against_model(run_cocotb, width, depth):
    run_cocotb(SimpleDualPortMemory(shape=width, depth=depth), toplevel="memory",
               test_module="sim.testbenches.memory",
               params={"width": width, "depth": depth, "cycles": 400})
