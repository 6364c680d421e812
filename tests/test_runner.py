"""sim.runner's cache: folders unused for the given days go, recent and locked ones stay; a
build keeps no precompiled headers; large Verilator models compile unoptimised."""

import fcntl
import os

import pytest

from sim.runner import prune_cache


def test_prune_cache_removes_only_old_unlocked_folders(tmp_path):
    now = 1_000_000_000.0
    day = 86400

    def folder(name, used_days_ago, stamp=True, locked=False):
        path = tmp_path / name
        path.mkdir()
        (path / "build.log").write_text("x")
        target = path / "built.stamp" if stamp else path
        if stamp:
            target.write_text("key")
        (path / ".lock").write_text("")
        os.utime(target, (now - used_days_ago * day, now - used_days_ago * day))
        return path

    old = folder("old", 3)
    recent = folder("recent", 1)
    old_no_stamp = folder("old_no_stamp", 5, stamp=False)
    held = folder("held", 4)
    # A build whose folder is old but whose stamp was touched recently (reused) stays.
    reused = folder("reused", 0.5)
    os.utime(reused, (now - 9 * day, now - 9 * day))
    with open(held / ".lock") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        prune_cache(tmp_path, 2, now=now)
    assert not old.exists() and not old_no_stamp.exists()
    assert recent.exists() and held.exists() and reused.exists()


def test_a_build_keeps_no_precompiled_headers(run_cocotb, simulator):
    """Verilator's precompiled headers (about 150 MB a build) are not kept in the cache."""
    import time

    from hw.skid_buffer import SkidBuffer
    from rtl_gen.cache import cache_dir

    start = time.time() - 1
    run_cocotb(SkidBuffer(3), toplevel="skid_buffer", test_module="sim.testbenches.skid_buffer",
               params={"width": 3, "count": 20})
    used = [b for b in cache_dir("sim").glob(f"skid_buffer-{simulator}-*")
            if (b / "built.stamp").exists() and (b / "built.stamp").stat().st_mtime >= start]
    assert used
    assert not [path for build in used for path in build.glob("*.gch")]


def test_a_large_model_is_compiled_without_optimisation(monkeypatch):
    """Verilator models over ``UNOPTIMIZED_ABOVE`` characters of Verilog compile at ``-O0`` (the
    top's C++ takes longer to optimise than its testbenches run)."""
    from hw.skid_buffer import SkidBuffer
    from sim import runner

    reason = runner.simulator_missing("verilator")
    if reason:
        pytest.skip(reason)
    monkeypatch.setattr(runner, "UNOPTIMIZED_ABOVE", 100)
    run_dir = runner.run_cocotb(SkidBuffer(5), toplevel="skid_buffer", simulator="verilator",
                                test_module="sim.testbenches.skid_buffer",
                                params={"width": 5, "count": 20})
    build = run_dir.parent.parent.parent / "sim" / run_dir.parent.name
    compiles = [line for line in (build / "build.log").read_text().splitlines()
                if line.startswith("c++ ") and " -c " in line]
    assert any(" -O0 " in line for line in compiles)
    assert not any(" -Os " in line for line in compiles)
