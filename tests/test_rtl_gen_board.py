"""``python -m rtl_gen --board``: the built-in self-test's bitstream for a board (a minute)."""

import json

import pytest

from cli_run import run_module
from configs import ONE_PE, config_flags

ONE_PE_FLAGS = config_flags(ONE_PE)


def test_unknown_board_is_refused(tmp_path):
    result = run_module("rtl_gen", "--board", "arty", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: --board must be one of ulx3s-85f, icebreaker, "
                                     "not 'arty'")


@pytest.mark.slow
@pytest.mark.parametrize("board, bitstream", [("icebreaker", "swat_bist.bin"),
                                              ("ulx3s-85f", "swat_bist.bit")])
def test_self_test_bitstream(tmp_path, board, bitstream):
    result = run_module("rtl_gen", *ONE_PE_FLAGS, "--out", "gen", "--board", board, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "gen" / f"board_{board}.json").read_text())
    assert report["board"] == board and report["pe"] == "1x1"
    path = tmp_path / "gen" / report["bitstream"]
    assert path.name == bitstream and path.stat().st_size == report["bitstream_bytes"] > 10000
    lut = "ICESTORM_LC" if board == "icebreaker" else "TRELLIS_COMB"
    assert 500 < report["utilization"][lut]["used"] <= report["utilization"][lut]["available"]
    assert 1 < report["fmax_mhz"] < 500 and report["clock_mhz"] in (12, 25)
    assert report["meets_clock"] == (report["fmax_mhz"] >= report["clock_mhz"])
    assert f"board_{board}.json" in result.stdout
