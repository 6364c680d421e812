import json
import re

import numpy as np
import pytest

from cli_run import run_module

from sim import swat_step

from configs import by_default_on


def run_step(*args, cwd):
    return run_module("sim.swat_step", *args, cwd=cwd)


@pytest.mark.parametrize("args, message", [
    (["--layer", "linear:0x4"], "error: --layer sizes must be positive, not 'linear:0x4'"),
    (["--layer", "dense:4"], "error: --layer must be linear:OUTxIN or conv:CINxCOUTxKxSIZE, "
                             "not 'dense:4'"),
    (["--layer", "conv:2x2x2x4"], "error: --layer conv needs positive sizes, an odd kernel no "
                                  "larger than the input, not 'conv:2x2x2x4'"),
    (["--layer", "linear:2x2", "--pe", "axb"],
     "error: --pe must be ROWSxCOLS with positive integers, like 16x16, not 'axb'"),
    (["--layer", "linear:2x2", "--density", "1.5"],
     "error: --density must be between 0 and 1, not 1.5"),
    (["--layer", "linear:2x2", "--width", "1"], "error: --width must be between 2 and 16, not 1"),
    (["--layer", "conv:2x2x3x5", "--stride", "4"],
     "error: --stride must be between 1 and the kernel (3), not 4"),
    (["--layer", "conv:2x2x3x5", "--padding", "3"],
     "error: --padding must be between 0 and the kernel minus 1 (2), not 3"),
    (["--layer", "linear:2x2", "--stride", "2"],
     "error: --stride and --padding apply to conv layers only"),
    (["--layer", "linear:2x2", "--json", ""], "sim.swat_step: error: --json must name a file, "
                                             "not an empty string"),
    (["--layer", "linear:2x2", "--batch", "20", "--tile-depth", "16"],
     "error: --tile-depth must be at least batch x positions (20): the weight gradient "
     "reduces over them in one job"),
    (["--pe", "4x4", "--layer", "conv:2x2x3x5", "--act-conv-words", "2"],
     "error: --act-conv-words 2 needs pe_sparse_lanes of at least 8 (the activation buffer's 4 "
     "lanes a word, and the PE array takes its beats whole), not 4"),
    (["--layer", "conv:2x2x3x5", "--act-conv-words", "3"],
     "error: --act-conv-words must be between 0 and 2, not 3"),
    (["--layer", "conv:2x2x3x5", "--act-conv-read", "2"],
     "error: --act-conv-read must be between 0 and 1, not 2"),
])
def test_bad_arguments_give_one_line_and_exit_2(tmp_path, args, message):
    result = run_step(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == message


def test_compare_names_what_differs():
    a = np.arange(6).reshape(2, 3)
    good = (a, a, a)
    assert swat_step.compare(good, good) == []
    bad = (a, a.copy(), a)
    bad[1][1, 2] += 1
    problems = swat_step.compare(good, bad)
    assert problems == ["input gradient: 1 values differ, first at (1, 2): 6, not 5"]


@pytest.mark.slow
@pytest.mark.parametrize("layer, density, extra", [
    pytest.param("linear:6x10", 0.3, [], marks=pytest.mark.long),
    ("conv:2x4x3x4", 0.25, []),
    # A tile depth shorter than the forward reduction (40): the driver splits it in three.
    pytest.param("linear:5x40", 0.2, ["--tile-depth", "16"],
                 marks=by_default_on("icarus")),
])
def test_step_matches_golden_on_the_rtl(tmp_path, simulator, layer, density, extra):
    result = run_step("--pe", "2x3", "--layer", layer, "--batch", "3", "--density",
                      str(density), "--sim", simulator, *extra, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "match golden bit for bit" in result.stdout
    # The long step says what it is doing, with the time so far.
    assert re.search(rf"^sim\.swat_step: building the simulation with {simulator} .* "
                     r"\(\d+\.\d s\)$", result.stderr, re.M), result.stderr
    rows = re.findall(r"^\| ([a-z ]+) \| (\d+) \| (\d+) \|$", result.stdout, re.M)
    phases = {name: (int(rtl), int(model)) for name, rtl, model in rows}
    assert set(phases) == {"weight threshold", "activation threshold", "save activations",
                           "forward", "input gradient", "weight gradient", "total"}
    # The cycle model predicts every phase of the step on the RTL.
    for name, (rtl, model) in phases.items():
        assert abs(model - rtl) <= max(3, 0.02 * rtl), f"{name}: model {model}, RTL {rtl}"


# An accelerator without the conv read: the conv layer's im2col matrix is saved and its rows
# read back as saved (one case, on Verilator).
@pytest.mark.slow
def test_conv_step_without_the_conv_read(tmp_path):
    from sim.runner import simulator_missing

    reason = simulator_missing("verilator")
    if reason:
        pytest.skip(reason)
    out = tmp_path / "step.json"
    result = run_step("--pe", "2x3", "--layer", "conv:2x4x3x4", "--batch", "3", "--density",
                      "0.25", "--act-conv-read", "0", "--json", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "match golden bit for bit" in result.stdout
    report = json.loads(out.read_text())
    assert report["config"]["act_conv_read"] == 0 and report["match"]
    # The im2col matrix's bitmap alone (18 features by 48 positions), far more than X's 96
    # elements.
    assert report["stored_bits"] >= 18 * 48
    for name, phase in report["phases"].items():
        assert abs(phase["model"] - phase["cycles"]) <= max(3, 0.02 * phase["cycles"]), name


# The large arrays at their derived lanes (16 top-K lanes into a 4-lane activation buffer): a
# small layer's step bit-exact, every phase within the model's tolerance (Verilator only).
@pytest.mark.slow
@pytest.mark.parametrize("pe, layer", [("16x16", "conv:4x16x3x6"),
                                       pytest.param("32x32", "conv:4x32x3x6",
                                                    marks=pytest.mark.long)])
def test_large_array_steps_match_golden(tmp_path, pe, layer):
    from sim.runner import simulator_missing

    reason = simulator_missing("verilator")
    if reason:
        pytest.skip(reason)
    out = tmp_path / "step.json"
    result = run_step("--pe", pe, "--layer", layer, "--batch", "2", "--density", "0.25",
                      "--json", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert report["match"] is True
    config = report["config"]
    assert (config["topk_lanes"], config["act_lanes"]) == (0, 0)
    for name, phase in report["phases"].items():
        assert abs(phase["model"] - phase["cycles"]) <= max(3, 0.02 * phase["cycles"]), name


@pytest.mark.slow
@pytest.mark.parametrize("layer, stride, padding, density", [
    ("conv:2x3x3x5", 2, 1, 0.3),
    pytest.param("conv:1x2x3x4", 2, 0, 1.0, marks=by_default_on("icarus")),
    pytest.param("conv:3x2x1x5", 1, 0, 0.0, marks=by_default_on("icarus")),
])
def test_strided_conv_steps_match_golden_and_write_json(tmp_path, simulator, layer, stride,
                                                         padding, density):
    out = tmp_path / "step.json"
    result = run_step("--pe", "2x2", "--layer", layer, "--stride", str(stride), "--padding",
                      str(padding), "--batch", "2", "--density", str(density), "--sim",
                      simulator, "--json", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert report["match"] is True
    assert report["layer"]["stride"] == stride and report["layer"]["padding"] == padding
    cin, _, _, size = (int(v) for v in layer.split(":")[1].split("x"))
    assert report["dense_bits"] == 2 * cin * size * size * 8
    assert 0 < report["stored_bits"]
    for name, phase in report["phases"].items():
        assert abs(phase["model"] - phase["cycles"]) <= max(3, 0.02 * phase["cycles"]), name


@pytest.mark.slow
@pytest.mark.parametrize("pe, layer, batch, tile_depth, density", [
    pytest.param("2x2", "linear:3x5", 1, 1, 0.5, marks=pytest.mark.long),
    pytest.param("1x1", "linear:3x5", 1, 1, 1.0, marks=pytest.mark.long),
    ("2x3", "linear:11x13", 2, 2, 0.5),
])
def test_small_tile_depths_run_every_phase(tmp_path, simulator, pe, layer, batch, tile_depth,
                                           density):
    """Tile depths down to 1: every reduction is split into one- or two-deep jobs, so each
    sparse row keeps at most one or two entries yet takes a bank word; the banks are sized for
    that (:func:`golden.pe_array.bank_words_bound`) and every job runs."""
    result = run_step("--pe", pe, "--layer", layer, "--batch", str(batch), "--tile-depth",
                      str(tile_depth), "--density", str(density), "--sim", simulator,
                      cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "match golden bit for bit" in result.stdout
