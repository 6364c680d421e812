import pytest

from hw.skid_buffer import SkidBuffer
from rtl_gen import yosys

# Bits of an adder per carry cell: CCU2C holds two, SB_CARRY one.
BITS_PER_CARRY_CELL = {"ecp5": 2, "ice40": 1}


@pytest.mark.slow
def test_skid_buffer_synthesizes_to_its_registers():
    stats = yosys.synth_stats(SkidBuffer(8), "skid_buffer_w8", "ecp5")
    # Two 8-bit payload registers and two valid bits; no memories, no multipliers.
    assert stats["ffs"] == 18
    assert 0 < stats["luts"] < 60
    assert stats["brams"] == 0 and stats["dsps"] == 0


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="family must be one of ecp5, ice40"):
        yosys.synth_stats(SkidBuffer(8), "x", "virtex")


@pytest.mark.slow
@pytest.mark.parametrize("family", ["ecp5", "ice40"])
def test_lut_products_take_no_dsp(family):
    """The PE array maps each product to a DSP multiplier (MULT18X18D; SB_MAC16 on the
    UltraPlus) unless it is one of the ``pe_lut_products``: those become LUTs, and the DSP
    count drops by as many."""
    from golden.config import AccelConfig
    from hw.pe_array import SparsePEArray

    base = AccelConfig(pe_rows=2, pe_cols=2, width=8, tile_depth=16, pe_bank_entries=32,
                       pe_max_rows=8, pe_max_tiles=2, nm_max_m=4)
    # Both netlists through the same LUT mapper (abc: ABC9 asserts on some netlists and the
    # fallback would otherwise compare one flow's counts with the other's).
    all_dsp = yosys.synth_stats(SparsePEArray.from_config(base), "pe_array_dsp", family,
                                flows=("abc",))
    three_lut = yosys.synth_stats(SparsePEArray.from_config(base.replace(pe_lut_products=3)),
                                  "pe_array_lut3", family, flows=("abc",))
    width = base.width
    assert all_dsp["dsps"] >= 4
    assert three_lut["dsps"] == all_dsp["dsps"] - 3
    # Each LUT product is seven carry-chain adders of at least ``width`` bits. LUT counts are
    # not compared: abc's result on the rest of the array moves by more than the products' ANDs.
    assert three_lut["carry"] - all_dsp["carry"] >= 3 * 7 * width // BITS_PER_CARRY_CELL[family]


@pytest.mark.slow
@pytest.mark.parametrize("family", ["ecp5", "ice40"])
def test_logic_product_maps_to_adders_in_carry_chains(family):
    """An 8x8 product from LUTs is seven carry-chain adders plus the partial products' ANDs:
    about 140 LUT4 on the ECP5 (a CCU2C holds two) and 135 on the iCE40 (an SB_CARRY shares
    its cell's LUT). Merged into one carry-save sum it takes 325 and 186
    (``python -m sim.bench_logic_product``)."""
    from sim.bench_logic_product import RegisteredProduct

    stats = yosys.synth_stats(RegisteredProduct(8), "logic_product_w8", family)
    assert stats["dsps"] == 0 and stats["ffs"] == 32
    lut4_per_carry_cell = {"ecp5": 2, "ice40": 0}[family]
    # Seven adders, each at least eight bits.
    assert 7 * 4 <= stats["carry"] and 7 * 8 // BITS_PER_CARRY_CELL[family] <= stats["carry"]
    assert stats["luts"] + lut4_per_carry_cell * stats["carry"] <= 160, stats


@pytest.mark.slow
def test_lut_mapping_without_abc9_gives_the_same_registers(tmp_path):
    """The fallback flow (abc maps the LUTs), on every family, run by the real Yosys."""
    import json

    from rtl_gen.verilog import to_verilog

    (tmp_path / "skid.v").write_text(to_verilog(SkidBuffer(8), "skid"))
    tool = yosys.find_yosys()
    for family, ff_cells in (("ecp5", 18), ("ice40", 18), ("nexus", 18), ("gowin", 18)):
        result, flow = yosys.run_synthesis(tool, tmp_path, "skid.v", family, "skid",
                                           json_out="skid.json", flows=("abc",))
        assert result.returncode == 0 and flow == "abc", result.stderr
        stats = yosys.cell_counts(json.loads((tmp_path / "stat.json").read_text()), family)
        assert stats["ffs"] == ff_cells and 0 < stats["luts"] < 60
        assert (tmp_path / "skid.json").stat().st_size > 1000


def test_an_abc9_assertion_is_retried_with_abc(tmp_path):
    """A stand-in Yosys that dies in ABC9's reintegration the way YoWASP Yosys does on some
    netlists: the synthesis is run again with the abc flow, and the first log is kept."""
    import stat
    import sys

    fake = tmp_path / "fake_yosys"
    fake.write_text(f"""#!{sys.executable}
import sys
script = sys.argv[sys.argv.index("-p") + 1]
log = open("yosys.log", "w")
if "-run :map_luts" not in script:
    log.write("2.46.17.7. Executing ABC_OPS_REINTEGRATE pass\\n")
    log.write("ERROR: Assert `GetSize(conn.first) == GetSize(conn.second)' failed\\n")
    sys.exit(1)
assert "abc -lut 4:7" in script and "-run map_cells: -json out.json" in script, script
open("stat.json", "w").write("{{}}")
""")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    result, flow = yosys.run_synthesis(str(fake), tmp_path, "x.v", "ecp5", "x",
                                       json_out="out.json")
    assert result.returncode == 0, result.stderr
    assert flow == "abc"
    assert "ABC_OPS_REINTEGRATE" in (tmp_path / "yosys_abc9.log").read_text()
    # Any other failure is not retried.
    fake.write_text(f"#!{sys.executable}\nimport sys\nopen('yosys.log', 'w').write('ERROR: syntax')\n"
                    "sys.exit(1)\n")
    result, flow = yosys.run_synthesis(str(fake), tmp_path, "x.v", "ecp5", "x")
    assert result.returncode == 1 and flow == "abc9"


def test_logic_product_benchmark_refuses_bad_widths():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "sim.bench_logic_product", "--widths", "8,1"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --widths must be between 2 and 32, not '8,1'"
