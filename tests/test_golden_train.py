import subprocess
import sys

from golden import train


def test_trainer_learns_and_reports_sparse_savings():
    data = train.load_digits_split(0)
    dense = train.train(0.0, epochs=2, data=data)
    sparse = train.train(0.9, epochs=2, data=data)
    assert dense["test_accuracy"] > 0.8
    assert sparse["test_accuracy"] > 0.5
    assert sparse["training_macs_vs_dense"] < 0.3 < dense["training_macs_vs_dense"]
    assert sparse["saved_activation_memory_vs_dense"] < 0.5
    assert dense["saved_activation_memory_vs_dense"] == 1.0
    assert sparse["layer_densities"] == [1.0, 0.1, 0.1]


def test_erk_budget_runs():
    row = train.train(0.8, epochs=1, budget="erk")
    assert 0 < row["test_accuracy"] <= 1


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
