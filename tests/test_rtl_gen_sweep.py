"""``python -m rtl_gen.sweep``: a two-point sweep of tiny configurations on two Dask workers
(minutes)."""

import json

import pytest

from cli_run import run_module
from test_rtl_gen_synth import TINY  # the 2x2 tiny configuration's flags


def test_bad_target_is_refused(tmp_path):
    result = run_module("rtl_gen.sweep", "--target", "virtex", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: --target must be one of ecp5-85f, ecp5-45f, "
                                     "ecp5-25f, ice40-up5k, gowin-gw2a18, not 'virtex'")


@pytest.mark.parametrize("args, message", [
    (["--out", ""], "error: --out must name a folder, not an empty string"),
    (["--pes", "0x2"], "error: --pes rows must be between 1 and 64, not 0"),
    (["--pes", "3"], "error: --pes must be ROWSxCOLS with positive integers, like 16x16, not '3'"),
    (["--widths", "99"], "error: --widths must be between 2 and 16, not 99"),
    (["--widths", "a"], "error: --widths must be comma-separated integers, not 'a'"),
    (["--workers", "0"], "error: --workers must be at least 1, not 0"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"],
     "error: --workers starts a local cluster; with --scheduler, the scheduler's workers run "
     "the points"),
])
def test_bad_flags_are_refused_before_any_work(tmp_path, args, message):
    result = run_module("rtl_gen.sweep", *args, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip() == message
    assert list(tmp_path.iterdir()) == []  # nothing generated


def test_an_unwritable_out_is_refused_before_any_work(tmp_path):
    (tmp_path / "a_file").write_text("")
    result = run_module("rtl_gen.sweep", "--out", "a_file/sweep", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: --out: cannot create folder 'a_file/sweep'")


def test_help_says_how_the_point_lists_relate_to_pe_and_width(tmp_path):
    text = " ".join(run_module("rtl_gen.sweep", "--help", cwd=tmp_path).stdout.split())
    assert "--pes and --widths replace --pe and --width" in text and "``" not in text


def test_a_scheduler_that_does_not_answer_fails_in_seconds(tmp_path, monkeypatch):
    monkeypatch.setenv("SWAT_ACCEL_CACHE", str(tmp_path / "cache"))
    result = run_module("rtl_gen.sweep", "--pes", "1x1", "--widths", "8", "--scheduler",
                        "tcp://127.0.0.1:9", "--out", "sweep", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: --scheduler tcp://127.0.0.1:9: no Dask scheduler "
                                     "answered within 10 s (OSError)")


def _tiny_sweep(tmp_path, pes, out, *more):
    flags = [a for a in TINY]
    del flags[0:2]  # the sweep gives --pes instead of --pe
    return run_module("rtl_gen.sweep", *flags, "--pes", pes, "--widths", "8", "--target",
                      "ecp5-25f", "--freq", "50", "--out", out, *more, cwd=tmp_path)


# Four place-and-route runs (both points on two workers, then on one): long.
@pytest.mark.slow
@pytest.mark.long
def test_tiny_sweep_on_two_workers(tmp_path, monkeypatch):
    monkeypatch.setenv("SWAT_ACCEL_CACHE", str(tmp_path / "cache"))
    result = _tiny_sweep(tmp_path, "1x1,2x2", "sweep", "--workers", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 of 2 points to run on ecp5-25f, on a local cluster of 2 worker processes" \
        in result.stdout
    assert "[2 done, 0 running, 0 left]" in result.stdout  # progress
    # Each point's folder: Verilog, manifest, core, report, the tools' logs.
    for name in ("1x1_w8", "2x2_w8"):
        folder = tmp_path / "sweep" / name
        assert (folder / "swat_accel.v").exists() and (folder / "synth_ecp5-25f.json").exists()
        assert (folder / "synth_ecp5-25f" / "nextpnr.log").exists()
    points = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert [(p["pe"], p["pes"]) for p in points] == [("1x1", 1), ("2x2", 4)]
    assert points[1]["report"]["dsps"]["used"] > points[0]["report"]["dsps"]["used"]
    table = (tmp_path / "sweep" / "sweep.md").read_text()
    assert "| 2x2 | 8 | 4 |" in table
    png = (tmp_path / "sweep" / "sweep.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000
    # What the sweep writes after each point: a sweep cut short keeps the points it measured.
    from rtl_gen.sweep import write_results

    partial = tmp_path / "partial"
    partial.mkdir()
    table = write_results(points[:1], str(partial), "ecp5-25f", 50)
    assert "| 1x1 | 8 | 1 |" in table and "2x2" not in table
    assert json.loads((partial / "sweep.json").read_text()) == points[:1]
    assert (partial / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Run again: every point comes from the cache, and the results are the same.
    again = _tiny_sweep(tmp_path, "1x1,2x2", "again", "--workers", "2")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "points to run" not in again.stdout and again.stdout.count(": cached (") == 2
    assert json.loads((tmp_path / "again" / "sweep.json").read_text()) == points

    # One worker, nothing cached: the same figures as on two.
    monkeypatch.setenv("SWAT_ACCEL_CACHE", str(tmp_path / "cache_one"))
    one = _tiny_sweep(tmp_path, "1x1,2x2", "one", "--workers", "1")
    assert one.returncode == 0, one.stdout + one.stderr
    assert "2 of 2 points to run on ecp5-25f, on a local cluster of 1 worker process\n" \
        in one.stdout
    assert json.loads((tmp_path / "one" / "sweep.json").read_text()) == points
