import json
import re

import numpy as np
import pytest

from cli_run import run_module

from golden import train as golden_train
from golden.scaling import NUMERICS
from sim import train_rtl

from configs import by_default_on


def run_train(*args, cwd):
    return run_module("sim.train_rtl", *args, cwd=cwd)


@pytest.mark.parametrize("args, message", [
    (["--iterations", "0"], "error: --iterations must be between 1 and 100, not 0"),
    (["--batch", "64", "--iterations", "30"],
     "error: --iterations must be at most one epoch (23), not 30"),
    (["--batch", "0"], "error: --batch must be between 1 and 64, not 0"),
    (["--density", "1.5"], "error: --density must be between 0 and 1, not 1.5"),
    (["--channels", "16"],
     "error: --channels must be C1xC2 with positive integers, like 4x8, not '16'"),
    (["--channels", "0x8"],
     "error: --channels must be C1xC2 with positive integers, like 4x8, not '0x8'"),
    (["--pe", "axb"], "error: --pe must be ROWSxCOLS with positive integers, like 16x16, "
                      "not 'axb'"),
    (["--json", ""], "sim.train_rtl: error: --json must name a file, not an empty string"),
])
def test_bad_arguments_give_one_line_and_exit_2(tmp_path, args, message):
    result = run_train(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == message
    assert result.stdout == ""


def test_floating_point_numerics_are_refused(tmp_path):
    """The accelerator multiplies integers only."""
    result = run_train("--numerics", "float", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: argument --numerics: invalid choice: 'float'")


def test_help_is_plain_text(tmp_path):
    result = run_train("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m sim.train_rtl")
    assert "``" not in result.stdout


def _side_by_side(accel_type=train_rtl.ModelAccel, *, channels=(4, 8), batch=2, numerics="int8",
                  density=0.5, iterations=3, grad_rounding="nearest", seed=0):
    width = NUMERICS[numerics]
    config = train_rtl.network_config(2, 3, width, train_rtl.network_specs(channels), batch)
    return train_rtl.train_side_by_side(
        accel_type(config), train_rtl.run_now, iterations=iterations, batch=batch,
        numerics_name=numerics, density=density, channels=channels, seed=seed,
        grad_rounding=grad_rounding)


@pytest.mark.parametrize("numerics, density, grad_rounding, channels, batch", [
    ("int8", 0.5, "nearest", (4, 8), 2),
    ("int16", 0.3, "stochastic", (3, 5), 3),
    ("int8", 0.0, "nearest", (2, 3), 1),     # keeps nothing past the first layer
    ("int8", 1.0, "stochastic", (16, 32), 2),
])
def test_host_driver_on_golden_accelerator_models_matches_golden_bit_for_bit(
        numerics, density, grad_rounding, channels, batch):
    """The accelerator run's host side (scaling to integers, im2col/col2im, tiling, partial
    sums, the selector's thresholds and the saved activations) with golden's models of the
    accelerator's commands in place of the simulation: the loss and every weight equal
    golden's integer run after every iteration, and the training moves."""
    report = _side_by_side(channels=channels, batch=batch, numerics=numerics, density=density,
                           grad_rounding=grad_rounding)
    assert report["match"], report["mismatch"]
    rows = report["iterations"]
    assert len(rows) == 3 and all(r["loss_match"] and r["weights_match"] for r in rows)
    assert rows[0]["loss"] != rows[1]["loss"]
    assert report["layer_densities"] == [1.0, density, density]


def test_golden_run_is_golden_trains_integer_run():
    """The golden side is golden.train's own training: the same model, batches and step give
    golden.train.train's loss after the same iterations, bit for bit."""
    report = _side_by_side(channels=(16, 32), batch=4, iterations=3)
    row = golden_train.train(0.5, epochs=1, batch=4, numerics="int8", channels=(16, 32),
                             iterations=3)
    assert row["final_loss"] == report["iterations"][-1]["golden_loss"]
    assert row["final_loss"] == report["iterations"][-1]["loss"]


def test_golden_train_figures_do_not_change_with_the_default_channels():
    """``channels`` and ``iterations`` leave golden.train's own network and figures alone."""
    data = golden_train.load_digits_split(0)
    subset = tuple(a[:200] for a in data)
    default = golden_train.train(0.5, epochs=1, data=subset, numerics="int8")
    explicit = golden_train.train(0.5, epochs=1, data=subset, numerics="int8",
                                  channels=(16, 32), iterations=None)
    assert default == explicit
    assert golden_train.DigitsCNN.shapes() == golden_train.DigitsCNN.weight_shapes


class _SelectorKeepingMore(train_rtl.ModelAccel):
    """An accelerator whose selector keeps a tenth of the tensor too many (integer tensors
    tie often, so one more would often change nothing)."""

    async def threshold(self, slot, x, k):
        return await super().threshold(slot, x, min(k + np.size(x) // 10, np.size(x)))


def test_a_wrong_selector_is_caught_in_the_first_iteration():
    report = _side_by_side(_SelectorKeepingMore, iterations=2)
    assert not report["match"]
    assert re.match(r"iteration 0: (loss .* on the accelerator, .* in golden|"
                    r"conv[12] weight: \d+ values differ, first at)", report["mismatch"]), \
        report["mismatch"]
    assert len(report["iterations"]) == 1


def test_network_config_fits_every_layer_and_every_saved_activation():
    specs = train_rtl.network_specs((16, 32))
    assert [(s.kind, s.cin, s.cout, s.stride, s.out_size) for s in specs] == [
        ("conv", 1, 16, 1, 8), ("conv", 16, 32, 2, 4), ("linear", 512, 10, 1, 1)]
    config = train_rtl.network_config(4, 4, 8, specs, 4)
    assert config.act_tensors == 3
    assert config.act_values >= sum(s.positions(4) * s.features for s in specs)
    assert config.tile_depth >= max(s.positions(4) for s in specs)
    assert config.pe_max_rows >= max(max(s.features, s.cout) for s in specs)


@pytest.mark.slow
@by_default_on("verilator")
def test_training_on_the_rtl_matches_golden_bit_for_bit(tmp_path, simulator):
    """Two iterations of golden.train's own network (16x32 channels, batch 4) with every top-K
    and product on the simulated accelerator (about 40 s on Verilator with its build, 80 s
    on Icarus)."""
    out = tmp_path / "train.json"
    result = run_train("--iterations", "2", "--sim", simulator, "--json", str(out),
                       cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "match golden's integer run bit for bit after every iteration" in result.stdout
    report = json.loads(out.read_text())
    assert report["match"] is True and report["mismatch"] is None
    rows = report["iterations"]
    assert [r["iteration"] for r in rows] == [0, 1]
    assert all(r["loss_match"] and r["weights_match"] for r in rows)
    assert all(r["loss"] == r["golden_loss"] for r in rows)
    assert rows[0]["loss"] != rows[1]["loss"]
    assert all(r["cycles"] > 0 for r in rows)
    assert re.search(rf"^sim\.train_rtl: building the simulation with {simulator} ",
                     result.stderr, re.M), result.stderr
