"""``python -m sim.results``: the committed results page is what the benchmark files give, and
bad flags or paths get a one-line error."""

import os
import shutil

from sim import results

from cli_run import ROOT, run_module

PAGE = os.path.join(ROOT, "docs", "results.md")


def test_page_is_current(tmp_path):
    out = tmp_path / "results.md"
    assert results.main(["--out", str(out)]) == 0
    with open(PAGE, "rb") as f:
        assert out.read_bytes() == f.read(), "docs/results.md is stale: run python -m sim.results"
    assert results.main(["--check"]) == 0


def test_check_finds_a_stale_page(tmp_path, capsys):
    out = tmp_path / "results.md"
    out.write_text(results.render().replace("| 16x16 |", "| 16x15 |", 1))
    assert results.main(["--check", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "out of date" in err


def test_generate_section_only_with_its_file(tmp_path):
    bench = tmp_path / "benchmarks"
    shutil.copytree(os.path.join(ROOT, "benchmarks"), bench)
    shutil.rmtree(bench / "generate", ignore_errors=True)
    assert "## Generation time" not in results.render(str(bench))
    (bench / "generate").mkdir()
    (bench / "generate" / "generate.json").write_text(
        '{"command": "python -m sim.bench_generate --json g.json", "cores": 2, "runs": 3, '
        '"rows": [{"pe": "16x16", "pes": 256, "median_seconds": 4.02, '
        '"seconds": [4.1, 4.02, 3.9], "peak_mib": 310, "verilog_mib": 1.23}]}')
    page = results.render(str(bench))
    assert "## Generation time" in page
    assert "`python -m sim.bench_generate --json g.json`" in page and "cores: 2" in page
    assert "| 16x16 | 256 | 4.0 | 4.1, 4.0, 3.9 | 310 | 1.2 |" in page


def _one_line_error(proc, flag):
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert flag in proc.stderr


def test_bad_flags_and_paths(tmp_path):
    cwd = str(tmp_path)
    _one_line_error(run_module("sim.results", "--bogus", cwd=cwd), "--bogus")
    _one_line_error(run_module("sim.results", "--out", str(tmp_path / "no" / "page.md"),
                               cwd=cwd), "--out")
    _one_line_error(run_module("sim.results", "--out", cwd, cwd=cwd), "--out")
    _one_line_error(run_module("sim.results", "--check", "--out", str(tmp_path / "none.md"),
                               cwd=cwd), "--out")
    _one_line_error(run_module("sim.results", "--benchmarks", str(tmp_path / "none"),
                               "--out", str(tmp_path / "page.md"), cwd=cwd), "--benchmarks")
    bad = tmp_path / "bench"
    shutil.copytree(os.path.join(ROOT, "benchmarks"), bad)
    (bad / "pe_array.json").write_text("{not json")
    _one_line_error(run_module("sim.results", "--benchmarks", str(bad), "--out",
                               str(tmp_path / "page.md"), cwd=cwd), "--benchmarks")
    assert not (tmp_path / "page.md").exists()


def test_training_section_compares_each_numerics_with_float(tmp_path):
    import json

    bench = tmp_path / "benchmarks"
    shutil.copytree(os.path.join(ROOT, "benchmarks"), bench)
    shutil.rmtree(bench / "train")
    assert "## SWAT training" not in results.render(str(bench))
    row = {"budget": "uniform", "sparsity": 0.9, "train_macs_vs_dense": 0.16,
           "saved_activations_vs_dense": 0.25}
    rows = [dict(row, numerics="float", grad_rounding=None, seed=s, test_accuracy=a)
            for s, a in ((0, 0.96), (1, 0.98))]
    rows += [dict(row, numerics="int8", grad_rounding="nearest", seed=s, test_accuracy=a)
             for s, a in ((0, 0.94), (1, 0.96))]
    (bench / "train").mkdir()
    (bench / "train" / "train.json").write_text(json.dumps(rows))
    page = results.render(str(bench))
    assert "| uniform | 0.9 | 97.0 (96.0 to 98.0) | 95.0 (-2.0) | 16.0 % / 16.0 % | - / 2.00 |" \
        in page
    assert "- int8: at most 2.0 points below float over the table (goal: within 1.5; not met)." \
        in page
    assert "varies by up to 2.0 points from seed to seed" in page


def test_block_reports_group_by_configuration_with_missing_parameters_at_default():
    from golden.config import AccelConfig

    config = AccelConfig(pe_rows=4, pe_cols=4).to_dict()
    older = {k: v for k, v in config.items() if k != "act_conv_read"}
    reports = [{"target": "ecp5-85f", "block": "b", "config": config},
               {"target": "ecp5-85f", "block": "a", "config": older},
               {"target": "ecp5-85f", "block": "c", "config": {**config, "act_conv_read": 0}}]
    groups = list(results._grouped_reports(reports).values())
    assert [[r["block"] for r in group] for group in groups] == [["a", "b"], ["c"]]
