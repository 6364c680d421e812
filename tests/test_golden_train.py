import subprocess
import sys

import numpy as np

from golden import budgets, topk, train


def test_trainer_learns_and_reports_sparse_savings():
    data = train.load_digits_split(0)
    dense = train.train(0.0, epochs=2, data=data)
    sparse = train.train(0.9, epochs=2, data=data)
    assert dense["test_accuracy"] > 0.8
    assert sparse["test_accuracy"] > 0.5
    assert sparse["train_macs_vs_dense"] < 0.3 < dense["train_macs_vs_dense"]
    assert sparse["saved_activations_vs_dense"] < 0.5
    assert dense["saved_activations_vs_dense"] == 1.0
    assert sparse["layer_densities"] == [1.0, 0.1, 0.1]


def test_erk_budget_keeps_the_global_density_and_learns():
    """SWAT-ERK at sparsity 0.8: the layers keep 20 % of all weights between them (to a weight
    per layer, as top-K keeps whole elements), each layer's density is in [0, 1], the layers
    with the fewest weights per connection keep the most, and one epoch learns well above
    chance (10 classes)."""
    shapes = train.DigitsCNN.weight_shapes
    row = train.train(0.8, epochs=1, budget="erk")
    densities = budgets.erk_densities(shapes, 0.2)
    assert row["layer_densities"] == [round(d, 4) for d in densities]
    assert all(0.0 <= d <= 1.0 for d in densities)
    sizes = [int(np.prod(s)) for s in shapes]
    kept = sum(topk.topk_k(n, d) for n, d in zip(sizes, densities))
    assert abs(kept - 0.2 * sum(sizes)) <= len(sizes)
    ratios = [sum(s) / n for s, n in zip(shapes, sizes)]
    assert np.argsort(densities).tolist() == np.argsort(ratios).tolist()
    assert row["test_accuracy"] > 0.5


def test_cli_table_and_bad_flags():
    ok = subprocess.run([sys.executable, "-m", "golden.train", "--epochs", "1",
                         "--sparsity", "0.5"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "| 0.5 | uniform |" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "golden.train", "--sparsity", "1.5"],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: --sparsity values must be in [0, 1), not 1.5"
    bad = subprocess.run([sys.executable, "-m", "golden.train", "--width", "99"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_integer_numerics_learn_and_report_their_name(tmp_path):
    data = train.load_digits_split(0)
    for numerics in ("int16", "int8"):
        row = train.train(0.5, epochs=2, data=data, numerics=numerics)
        assert row["numerics"] == numerics and row["grad_rounding"] == "nearest"
        assert row["test_accuracy"] > 0.8
    stochastic = train.train(0.5, epochs=1, data=data, numerics="int8",
                             grad_rounding="stochastic")
    assert stochastic["grad_rounding"] == "stochastic" and stochastic["test_accuracy"] > 0.5


def test_cli_numerics_and_json(tmp_path):
    out = tmp_path / "rows.json"
    ok = subprocess.run([sys.executable, "-m", "golden.train", "--epochs", "1", "--sparsity",
                         "0.9", "--numerics", "int8", "--json", str(out)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "| 0.9 | uniform | int8 |" in ok.stdout
    import json

    (row,) = json.loads(out.read_text())
    for key in ("sparsity", "budget", "numerics", "test_accuracy", "train_macs_vs_dense",
                "saved_activations_vs_dense"):
        assert key in row
    assert row["numerics"] == "int8" and row["sparsity"] == 0.9
    bad = subprocess.run([sys.executable, "-m", "golden.train", "--numerics", "int4"],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("error: argument --numerics: invalid choice: 'int4'")
    assert len(bad.stderr.strip().splitlines()) == 1
