"""``python -m rtl_gen --synth``: a tiny configuration through Yosys and nextpnr (minutes)."""

import json

import pytest

from cli_run import run_module
from configs import ONE_PE, TINY as TINY_FIELDS, config_flags

#: The tiny configuration with a 2x2 array, as rtl_gen flags.
TINY = config_flags(dict(TINY_FIELDS, pe_rows=2, pe_cols=2))
#: The one-PE configuration (no conv read): the smallest whole top, placed and routed in
#: minutes, where the tiny one takes ten.
ONE_PE_FLAGS = config_flags(ONE_PE)
#: The smallest 2x2 array (four products).
SMALL_2X2 = config_flags(dict(ONE_PE, pe_rows=2, pe_cols=2))


@pytest.mark.parametrize("args, message", [
    (["--synth", "virtex"], "error: --synth must be one of ecp5-85f, ecp5-45f, ecp5-25f, "
                            "ice40-up5k, gowin-gw2a18, not 'virtex'"),
    (["--synth", "ecp5-85f", "--freq", "0"], "error: --freq must be between 1 and 1000 MHz, "
                                             "not 0"),
    (["--synth", "ecp5-85f", "--router1-seconds", "-1"],
     "error: --router1-seconds must be between 0 and 86400, not -1"),
    (["--synth-block", "pe_array"], "error: --synth-block needs --synth TARGET"),
    (["--synth", "ecp5-85f", "--synth-block", "controller"],
     "error: --synth-block must be one of topk_selector, act_buffer, pe_array, not "
     "'controller'"),
])
def test_bad_synth_flags(tmp_path, args, message):
    result = run_module("rtl_gen", *args, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip() == message


@pytest.mark.slow
def test_tiny_configuration_report_is_complete_and_plausible(tmp_path):
    # router2 from the start: router1 can run past its 20-minute budget on this design on a
    # loaded 2-core machine.
    result = run_module("rtl_gen", *ONE_PE_FLAGS, "--out", "gen", "--synth", "ecp5-25f",
                        "--freq", "50", "--router1-seconds", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "gen" / "synth_ecp5-25f.json").read_text())
    assert report["target"] == "ecp5-25f" and report["freq_target_mhz"] == 50
    assert report["block"] == "top"
    for key in ("luts", "ffs", "dsps", "brams"):
        assert 0 <= report[key]["used"] <= report[key]["available"], key
    assert report["luts"]["available"] == 24288 and report["luts"]["used"] > 500
    assert report["ffs"]["used"] > report["harness"]["input_bits"]
    assert 5 < report["fmax_mhz"] < 400
    assert report["meets_target"] == (report["fmax_mhz"] >= 50)
    assert report["critical_path"]["from"] and report["critical_path"]["to"]
    assert set(report["blocks"]) == {"topk_selector", "act_buffer", "pe_array", "controller"}
    assert all(report["blocks"][b]["luts"] > 0 for b in ("topk_selector", "pe_array"))
    assert report["tools"]["yosys"].startswith("Yosys ")
    assert report["tools"]["nextpnr"].startswith("nextpnr-")
    assert report["seconds"] > 0
    assert report["router"] == "router2"
    assert "Fmax" in result.stdout and "| luts |" in result.stdout


@pytest.mark.slow
def test_tiny_configuration_places_and_routes_on_gowin(tmp_path):
    """The Gowin GW2A-18C: its nextpnr gets the harness's pins in a CST file, and the report
    adds its LUT4s and ALU bits into LUTs. A 2x2 PE array alone (products in DSPs; its banks
    small enough for LUTs) checks the flow in a fraction of the whole top's place and route
    time."""
    result = run_module("rtl_gen", *SMALL_2X2, "--out", "gen", "--synth", "gowin-gw2a18",
                        "--synth-block", "pe_array", "--freq", "50", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "gen" / "synth_gowin-gw2a18_pe_array.json").read_text())
    assert report["target"] == "gowin-gw2a18" and report["freq_target_mhz"] == 50
    for key in ("luts", "ffs", "dsps", "brams"):
        assert 0 <= report[key]["used"] <= report[key]["available"], key
    assert report["luts"]["available"] == 20736 and report["luts"]["used"] > 500
    assert report["ffs"]["used"] > report["harness"]["input_bits"]
    assert report["dsps"]["used"] >= 4  # the tiny array's banks are small enough for LUTs
    assert 5 < report["fmax_mhz"] < 400
    assert report["meets_target"] == (report["fmax_mhz"] >= 50)
    assert report["critical_path"]["from"] and report["critical_path"]["to"]
    assert report["block"] == "pe_array"
    cst = (tmp_path / "gen" / "synth_gowin-gw2a18_pe_array" / "harness.cst").read_text()
    assert 'IO_LOC "clk" H11;' in cst.splitlines()
    assert "Fmax" in result.stdout and "| luts |" in result.stdout


@pytest.mark.slow
def test_router2_takes_over_when_router1_runs_out_of_time(tmp_path):
    """nextpnr with router1 gets ``router1_seconds``; past that the run starts again with
    router2, and the report and the table say so."""
    from rtl_gen.cli import build_parser, config_from_args
    from rtl_gen.synth import format_report, synthesize

    config = config_from_args(build_parser().parse_args(ONE_PE_FLAGS))
    messages = []
    report = synthesize(config, "ecp5-25f", 50, str(tmp_path), progress=messages.append,
                        block="pe_array", router1_seconds=0.5)
    assert report["router"] == "router2"
    assert any("again with router2" in message for message in messages), messages
    assert 5 < report["fmax_mhz"] < 400 and report["luts"]["used"] > 100
    assert "routed by router2" in format_report(report)


@pytest.mark.slow
def test_too_many_multipliers_are_reported_with_the_fix(tmp_path):
    """6x5 PEs need 30 multipliers (plus the controller's), the ECP5-25F has 28: refused
    after synthesis, before place and route, with the --pe-lut-products that fits."""
    tiny = list(TINY) + ["--act-conv-read", "0"]  # (the conv read only lengthens synthesis)
    tiny[tiny.index("--pe") + 1] = "6x5"
    result = run_module("rtl_gen", *tiny, "--out", "gen", "--synth", "ecp5-25f", cwd=tmp_path)
    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]  # (after any progress lines)
    assert message.startswith("error: the design does not fit ecp5-25f: "), message
    used = int(message.split(": ")[2].split()[0])
    assert used > 30 and message.endswith(
        f"the part has 28 (--pe-lut-products {30 - (28 - (used - 30))} builds that many PE "
        "products from LUTs)"), message
    assert "nextpnr" not in result.stdout


@pytest.mark.slow
def test_a_design_that_does_not_fit_is_reported(tmp_path):
    result = run_module("rtl_gen", *TINY, "--act-conv-read", "0", "--out", "gen", "--synth",
                        "ice40-up5k", cwd=tmp_path)
    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("error: the design does not fit ice40-up5k"), result.stderr


@pytest.mark.slow
def test_one_block_alone_gets_its_own_report(tmp_path):
    result = run_module("rtl_gen", *TINY, "--out", "gen", "--synth", "ecp5-25f",
                        "--synth-block", "pe_array", "--router1-seconds", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "UnusedElaboratable" not in result.stderr  # only the block is built
    report = json.loads((tmp_path / "gen" / "synth_ecp5-25f_pe_array.json").read_text())
    assert report["router"] == "router2"  # --router1-seconds 0: router2 only, no router1 try
    assert "router1 not done" not in result.stdout and "routed by router2" in result.stdout
    assert not (tmp_path / "gen" / "synth_ecp5-25f.json").exists()
    assert report["block"] == "pe_array" and report["blocks"] == {}
    assert report["freq_target_mhz"] == 125
    # The PE array alone: its DSPs (one per PE) and fewer LUTs than the whole top.
    assert report["dsps"]["used"] >= 4 and 300 < report["luts"]["used"] < 10000
    assert report["critical_path"]["from"].startswith("dut.")
    assert 5 < report["fmax_mhz"] < 400
    assert "ecp5-25f, pe_array: Fmax" in result.stdout
    assert "synth_ecp5-25f_pe_array.json" in result.stdout


_FAKE_NEXTPNR = """
import sys, time
with open("nextpnr.log", "w") as log:
    for line in ["Info: Packing IOLOGIC...", "Info: Packing DSPs...",
                 "Info: Running main analytical placer, max placement attempts 5.",
                 "Info: Routing globals...", "Info: Routing.."]:
        log.write(line + "\\n")
        log.flush()
        time.sleep(float(sys.argv[1]))
print("finished")
"""


def test_nextpnr_phases_are_reported_with_elapsed_time(tmp_path):
    import subprocess
    import sys

    from rtl_gen.synth import run_nextpnr

    lines = []
    result = run_nextpnr([sys.executable, "-c", _FAKE_NEXTPNR, "0.3"], str(tmp_path),
                         lines.append, poll_seconds=0.1)
    assert result.returncode == 0 and result.stdout == "finished\n"
    assert [line.split(" (")[0] for line in lines] == [
        "  nextpnr: packing", "  nextpnr: placing", "  nextpnr: routing"]
    assert all(line.endswith(" s)") for line in lines)
    with pytest.raises(subprocess.TimeoutExpired):
        run_nextpnr([sys.executable, "-c", _FAKE_NEXTPNR, "5"], str(tmp_path), lines.append,
                    timeout=0.5, poll_seconds=0.1)


_FULL_NEXTPNR = """
import time
with open("nextpnr.log", "w") as log:
    log.write("Info: Packing IOLOGIC...\\nInfo: Device utilisation:\\n"
              "Info: \\t          TRELLIS_IO:       4/    365     1%\\n"
              "Info: \\t        TRELLIS_COMB:   87443/  83640   104%\\n")
    log.flush()
    time.sleep(60)
"""


def test_a_packed_design_over_the_part_stops_nextpnr(tmp_path):
    """nextpnr-ecp5 goes on placing a design that packs into more logic cells than the part
    has; the flow stops it at the utilisation table and says why."""
    import sys
    import time

    from rtl_gen.synth import SynthFlowFailed, overused, run_nextpnr

    assert overused("Info: \t        TRELLIS_COMB:   83640/  83640   100%") is None
    assert overused("Info: Packing IOLOGIC...") is None
    start = time.monotonic()
    with pytest.raises(SynthFlowFailed) as failure:
        run_nextpnr([sys.executable, "-c", _FULL_NEXTPNR], str(tmp_path), lambda line: None,
                    poll_seconds=0.1, part="ecp5-85f")
    assert time.monotonic() - start < 30
    assert str(failure.value) == ("the design does not fit ecp5-85f: nextpnr packs it into "
                                  "87443 TRELLIS_COMB of 83640")


def test_carry_cells_count_against_the_logic_cells():
    """An ECP5 CCU2C takes two LUT sites, so LUTs plus two per carry cell must fit the part's
    logic cells (the 16x16 preset's 60173 LUT4s and 10518 CCU2Cs do, 81209 cells, and are left
    to nextpnr's packing); an iCE40 SB_CARRY sits beside its LUT."""
    from golden.config import AccelConfig
    from rtl_gen.synth import fit_failure

    config = AccelConfig()
    cells = {"luts": 60173, "carry": 10518, "ffs": 57401, "dsps": 156, "brams": 196}
    assert fit_failure(dict(cells, carry=12000), "ecp5-85f", config) == (
        "the design does not fit ecp5-85f: 84173 logic cells (60173 LUTs, 12000 carry cells) "
        "after synthesis, the part has 83640")
    assert fit_failure(cells, "ecp5-85f", config) is None  # 81209: nextpnr's packing decides
    assert fit_failure(dict(cells, luts=5000, carry=400, dsps=0, brams=30), "ice40-up5k",
                       config) is None
    assert fit_failure(dict(cells, luts=5281, carry=400, dsps=0, brams=30), "ice40-up5k",
                       config) == ("the design does not fit ice40-up5k: 5281 LUTs after "
                               "synthesis, the part has 5280")
