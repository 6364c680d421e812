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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_topk_benchmark_small_run(tmp_path, simulator):
    """``python -m sim.bench_topk`` on a short tensor, without synthesis: a row for every
    command of every selector configuration, none faster than its ideal cycles."""
    result = run_module("sim.bench_topk", "--n", "180", "--no-synth", "--sim", simulator,
                        "--json", "topk.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "topk.json").read_text())
    assert report["n"] == 180 and report["simulator"] == simulator and "area" not in report
    rows = report["cycles"]
    assert sorted({(r["width"], r["lanes"]) for r in rows}) == [(8, 1), (8, 4), (16, 4)]
    assert {r["command"] for r in rows} == {"threshold", "apply", "nm 2:4", "slice threshold",
                                            "slice apply"}
    for r in rows:
        assert r["elements"] in (180, 180 - 180 % 9)
        assert 0 < r["ideal_cycles"] <= r["cycles"], r
        assert r["cycles_per_element"] == pytest.approx(r["cycles"] / r["elements"])
    assert "| 8 | 4 | threshold |" in result.stdout


@pytest.mark.slow
def test_act_buffer_benchmark_small_run(tmp_path, simulator):
    """``python -m sim.bench_act_buffer`` on an 8x16 matrix: a row per width and sparsity,
    the stored bits below dense storage and no smaller than the entropy bound, sparser
    storing less."""
    result = run_module("sim.bench_act_buffer", "--rows", "8", "--cols", "16", "--sim",
                        simulator, "--json", "act.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "act.json").read_text())
    assert [(r["width"], r["sparsity"]) for r in rows] == [
        (w, s) for w in (8, 16) for s in (0.5, 0.8, 0.9)]
    for r in rows:
        assert r["n"] == 128 and 0 < r["kept"] <= r["n"]
        assert r["format_entropy"] <= r["stored_bits"] < r["format_dense"], r
        assert min(r["write_cycles"], r["read_rows_cycles"], r["read_cols_cycles"],
                   r["read_dense_cycles"]) > 0
    for width in (8, 16):
        bits = [r["stored_bits"] for r in rows if r["width"] == width]
        assert bits == sorted(bits, reverse=True)
    assert "Activation buffer, 8x16 matrix" in result.stdout
