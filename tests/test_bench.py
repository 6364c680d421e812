import json
import os

import pytest

from cli_run import run_module

from sim import runner


def run_bench(*args, cwd):
    return run_module("sim.bench", *args, cwd=cwd)


@pytest.mark.parametrize("args, message", [
    (["--pe", "0x4"], "--pe rows must be between 1 and 64, not 0"),
    (["--sparsity", "1.5"], "a sparsity must be in [0, 1), not 1.5"),
    (["--layers", "layer9"], "unknown ResNet-18 layer 'layer9'"),
    (["--tiles", "0"], "--tiles must be auto or between 1 and 64, not 0"),
    (["--tiles", "many"], "--tiles must be auto or between 1 and 64, not many"),
])
def test_bad_flags_give_one_line_and_exit_2(tmp_path, args, message):
    result = run_bench(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr


def test_tiny_run_writes_the_json_table(tmp_path):
    if runner.simulator_missing("verilator"):
        if os.environ.get("CI"):
            pytest.fail(runner.simulator_missing("verilator"))
        pytest.skip(runner.simulator_missing("verilator"))
    result = run_bench("--pe", "2x2", "--layers", "fc", "--sparsity", "0.8", "--tiles", "1",
                       "--json", "out.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "out.json").read_text())
    assert [r["gemm"] for r in rows] == ["forward", "input_grad", "weight_grad"]
    for r in rows:
        assert set(r) == {"pe", "layer", "gemm", "sparsity", "dense_cycles", "sparse_cycles",
                          "speedup", "ideal_speedup", "bound"}
        assert r["pe"] == "2x2" and r["layer"] == "fc" and r["sparsity"] == 0.8
        assert r["bound"] in ("compute", "load")
        assert 0 < r["sparse_cycles"] < r["dense_cycles"]
        assert r["speedup"] == pytest.approx(r["dense_cycles"] / r["sparse_cycles"], abs=1e-3)
        assert 1 < r["speedup"] <= r["ideal_speedup"] * 1.05
    assert "| 2x2 | fc | weight_grad |" in result.stdout


def test_generation_benchmark_prints_a_row_per_size(tmp_path):
    result = run_module("sim.bench_generate", "--pes", "1x1,2x1", "--runs", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("python -m rtl_gen, cold runs (1 per size, ")
    rows = [line.split(" | ") for line in lines if line.startswith("| 1x1 ") or
            line.startswith("| 2x1 ")]
    assert [r[1] for r in rows] == ["1", "2"]
    assert all(float(r[2]) > 0 and float(r[4]) > 0 for r in rows)


@pytest.mark.parametrize("args, message", [
    (["--runs", "0"], "error: --runs must be at least 1, not 0"),
    (["--pes", "16"], "error: --pes must be sizes like 16x16, not '16'"),
])
def test_generation_benchmark_refuses_bad_flags(tmp_path, args, message):
    result = run_module("sim.bench_generate", *args, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip() == message
