"""The table of FPGA families, targets and boards (rtl_gen.targets) is whole and is what the
command lines offer."""

import importlib
import pkgutil
import re

import pytest

import rtl_gen.targets as targets
from rtl_gen.block_ram import block_rams
from rtl_gen.cli import build_parser, config_from_args, freq_mhz, main, parse_args
from rtl_gen.targets import (BOARDS, CELL_KINDS, FAMILIES, PRESETS, RESOURCES, TARGETS, Family,
                             Preset)

#: The harness's ports (:class:`hw.harness.SynthHarness` converted by :mod:`rtl_gen.synth`).
HARNESS_PORTS = ("clk", "rst", "si", "so")


def test_every_family_module_is_in_the_table():
    for info in pkgutil.iter_modules(targets.__path__):
        module = importlib.import_module(f"rtl_gen.targets.{info.name}")
        family = getattr(module, "FAMILY", None)
        if family is not None:
            assert FAMILIES.get(family.name) is family, info.name
            assert all(TARGETS[t.name] is t for t in module.TARGETS)
            assert all(BOARDS[b.name] is b for b in module.BOARDS)
            assert all(PRESETS[p.name] is p for p in module.PRESETS)
            assert all(TARGETS[p.target].family is family for p in module.PRESETS)
    assert {"ecp5", "ice40", "nexus", "gowin"} <= set(FAMILIES)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_is_complete(name):
    family = FAMILIES[name]
    assert isinstance(family, Family) and family.name == name
    assert family.synth_command.startswith(f"synth_{name}")
    assert set(family.cells) == set(CELL_KINDS) and all(family.cells.values())
    assert set(family.pnr_resources) == set(RESOURCES)
    assert set(family.cell_weights) <= {c for cells in family.cells.values() for c in cells}
    assert family.nextpnr.startswith("yowasp-nextpnr-") and family.fallback_map_luts
    assert family.lut_flows and set(family.lut_flows) <= {"abc9", "abc"}
    # block RAM: its shapes, each a power-of-two depth, the widest the shallowest
    assert family.block_ram and family.block_ram_shapes
    for depth, width in family.block_ram_shapes:
        assert depth & (depth - 1) == 0 and width > 0
    assert sorted(family.block_ram_shapes) == sorted(family.block_ram_shapes,
                                                     key=lambda shape: -shape[1])
    # one memory of the narrowest shape's size takes one block RAM
    depth, width = max(family.block_ram_shapes)
    assert block_rams(name, width, depth) == 1 and block_rams(name, width, depth + 1) == 2


@pytest.mark.parametrize("name", list(TARGETS))
def test_target_is_complete(name):
    target = TARGETS[name]
    assert target.name == name and name.startswith(target.family.name + "-")
    assert FAMILIES[target.family.name] is target.family
    assert set(target.resources) == set(RESOURCES) and all(target.resources.values())
    assert target.device_args and 1 <= target.default_mhz <= 1000
    family = target.family
    if family.pin_constraint is None:
        # the harness's I/O has no sites: the family's nextpnr must be told to allow that
        assert any("allow-unconstrained" in option for option in family.pnr_options)
        assert not target.pins
    else:
        # a site for each of the harness's ports, in the file the nextpnr arguments read
        assert set(target.pins) == set(HARNESS_PORTS) and all(target.pins.values())
        assert "{port}" in family.pin_constraint and "{site}" in family.pin_constraint
        assert any(family.constraints_file in arg for arg in family.constraints_args)


def test_harness_ports_are_the_ones_targets_place():
    from hw.harness import SynthHarness
    from hw.skid_buffer import SkidBuffer
    from rtl_gen.verilog import to_verilog

    harness = SynthHarness(SkidBuffer(8))
    text = to_verilog(harness, "harness", ports=[harness.si, harness.so])
    header = re.search(r"^module harness\((.*?)\);", text, re.M).group(1)
    assert sorted(port.strip() for port in header.split(",")) == sorted(HARNESS_PORTS)


@pytest.mark.parametrize("name", list(BOARDS))
def test_board_family_can_build_bitstreams(name):
    board = BOARDS[name]
    assert FAMILIES[board.family.name] is board.family
    assert ":" in board.platform
    family = board.family
    assert family.board_tools and family.programmer and family.bitstream_suffix


def test_command_line_offers_the_table():
    parser = build_parser()
    actions = {a.dest: a for a in parser._actions}
    for name in TARGETS:
        assert name in actions["synth"].help
    for name in BOARDS:
        assert name in actions["board"].help
    for name in PRESETS:
        assert name in actions["preset"].help
    for target in TARGETS.values():
        assert f"{target.default_mhz:g} on {target.family.title}" in actions["freq"].help


@pytest.mark.parametrize("flag, table", [("--synth", TARGETS), ("--board", BOARDS),
                                         ("--preset", PRESETS)])
def test_unknown_name_lists_the_table(capsys, flag, table):
    with pytest.raises(SystemExit) as exit:
        main([flag, "virtex"])
    assert exit.value.code == 2
    assert capsys.readouterr().err == (f"error: {flag} must be one of {', '.join(table)}, "
                                       "not 'virtex'\n")


@pytest.mark.parametrize("name", list(TARGETS))
def test_default_clock_is_the_targets(name):
    parser = build_parser()
    assert freq_mhz(parser.parse_args(["--synth", name]), name) == TARGETS[name].default_mhz
    assert freq_mhz(parser.parse_args(["--synth", name, "--freq", "42"]), name) == 42


def test_manifest_counts_block_rams_on_every_family():
    from golden.config import AccelConfig
    from hw.top import SwatAccel
    from rtl_gen.generate import memories

    config = AccelConfig(pe_rows=2, pe_cols=2, tile_depth=16, topk_lanes=2, pe_bank_entries=64,
                         pe_max_rows=16, pe_max_tiles=4, max_tensor_len=256,
                         act_bitmap_bits=256, act_values=128, act_tensors=2, act_max_rows=16,
                         act_max_cols=16, nm_max_m=4)
    for memory in memories(SwatAccel(config)):
        assert list(memory["block_rams"]) == list(FAMILIES)
        assert all(count >= memory["copies"] for count in memory["block_rams"].values())


def test_the_documented_presets_exist():
    assert PRESETS["ecp5-85f-16x16"].target == "ecp5-85f"
    assert PRESETS["up5k"].target == "ice40-up5k"


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_is_a_configuration_its_part_can_hold(name):
    from hw.top import SwatAccel, check_config
    from rtl_gen.generate import memories

    preset = PRESETS[name]
    assert isinstance(preset, Preset) and preset.name == name and preset.summary
    parser = build_parser()
    dests = {action.dest for action in parser._actions}
    assert set(preset.options) <= dests, set(preset.options) - dests
    args = parse_args(parser, ["--preset", name])
    assert all(getattr(args, key) == value for key, value in preset.options.items())
    config = config_from_args(args)
    check_config(config)
    part = TARGETS[preset.target]
    family = part.family.name
    rams = sum(m["block_rams"][family] for m in memories(SwatAccel(config)))
    assert rams <= part.resources["brams"], (rams, part.resources["brams"])
    # every PE product not built from LUTs takes a multiplier block
    assert config.pe_rows * config.pe_cols - config.pe_lut_products <= part.resources["dsps"]


def test_flags_override_a_preset():
    preset = PRESETS["up5k"]
    args = parse_args(build_parser(), ["--pe-lut-products", "12", "--preset", "up5k",
                                       "--act-tensors=3"])
    config = config_from_args(args)
    assert (config.pe_lut_products, config.act_tensors) == (12, 3)
    assert config.pe == preset.options["pe"]
    assert config.act_conv_read == preset.options["act_conv_read"]
    # without --preset the defaults are the configuration's own
    assert config_from_args(parse_args(build_parser(), [])) == config_from_args(
        build_parser().parse_args([]))


def test_a_bad_value_from_a_preset_names_the_preset(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit:
        main(["--preset", "up5k", "--pe", "2x2", "--out", str(tmp_path / "out")])
    assert exit.value.code == 2
    assert capsys.readouterr().err == ("error: --pe-lut-products (from --preset up5k) must be "
                                       "between 0 and 4, not 10\n")
    with pytest.raises(SystemExit):
        main(["--preset", "up5k", "--pe", "2x2", "--pe-lut-products", "5"])
    assert capsys.readouterr().err == ("error: --pe-lut-products must be between 0 and 4, "
                                       "not 5\n")
