import json

import numpy as np
import pytest

from cli_run import run_module

from golden import networks
from golden.config import AccelConfig
from sim import network


@pytest.mark.parametrize("args, message", [
    (["--networks", "vgg"], "error: --networks: unknown network 'vgg' (known: "
                            "resnet18-cifar10, resnet50-imagenet)"),
    (["--pe", "3"], "error: --pe must be ROWSxCOLS with positive integers, like 16x16, not '3'"),
    (["--batch", "0"], "error: --batch must be at least 1, not 0"),
    (["--sweep-lanes", "3"], "error: --sweep-lanes: topk_lanes must be a power of two, not 3"),
    (["--sweep-periods", "a"], "error: --sweep-periods must be comma-separated integers, "
                               "not 'a'"),
])
def test_bad_arguments_give_one_line_and_exit_2(tmp_path, args, message):
    result = run_module("sim.network", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == message


def test_im2col_positions_match_golden_im2col():
    from golden.layers import im2col

    rng = np.random.default_rng(0)
    layer = networks.ConvShape("c", 3, 4, 3, 2, 1, 7)
    x = rng.integers(-5, 6, size=(2, 3, 7, 7))
    full = im2col(x, 3, 2, 1).T
    assert np.array_equal(network._im2col_positions(x, layer, 5, 20), full[:, 5:25])


def test_sampling_scales_to_every_job():
    """With as many samples as jobs, the product's cycles add up its jobs sent back to back: the
    first one's own cycles, then each later one's distance from the reply before, as after a
    job like it (:func:`golden.perf_model.product_sequence`)."""
    from golden import perf_model
    from golden.pe_array import longest_first

    config = AccelConfig(pe_rows=4, pe_cols=4, tile_depth=16, pe_max_rows=8, pe_max_tiles=2)
    mask = np.random.default_rng(1).random((12, 40)) < 0.3
    sparse, dense = network._product_cycles(config, mask, 20, samples=10, dense_cache={})
    want = {False: 0, True: 0}
    first = True
    for r0 in (0, 8):
        for k0 in (0, 16, 32):
            job = mask[r0:r0 + 8, k0:k0 + 16]
            for tiles, count in ((2, 2), (1, 1)):  # two jobs of 8 columns, one of 4
                for dense_mode in (False, True):
                    # The sparse jobs' rows go longest first.
                    sent = job if dense_mode else job[longest_first(job.sum(axis=1))]
                    one, two = perf_model.product_sequence(
                        config, [("gemm", sent, tiles, dense_mode)] * 2)
                    want[dense_mode] += (one + (count - 1) * (two - one) if first
                                         else count * (two - one))
                first = False
    assert (sparse, dense) == (want[False], want[True])
    # Sent back to back, the jobs take less than one at a time.
    alone = sum(perf_model.gemm_cycles(config, mask[r0:r0 + 8, k0:k0 + 16], tiles) * count
                for r0 in (0, 8) for k0 in (0, 16, 32) for tiles, count in ((2, 2), (1, 1)))
    assert sparse < alone


def test_product_sequence_of_one_is_the_product_alone():
    from golden import perf_model

    config = AccelConfig(pe_rows=4, pe_cols=4, tile_depth=16)
    mask = np.random.default_rng(2).random((9, 16)) < 0.4
    assert perf_model.product_sequence(config, [("gemm", mask, 3, False)]) == [
        perf_model.gemm_cycles(config, mask, 3)]
    assert perf_model.product_sequence(config, [("gemm_saved", mask, 2, None)]) == [
        perf_model.gemm_saved_cycles(config, mask, 2)]


def test_summary_against_the_ideal_dense_array():
    """An ideal dense array does R*C MACs a cycle: 6400 MACs on 16 PEs are 400 cycles."""
    totals = network._Totals(threshold=100.0, save=50.0, forward=40.0, input_grad=20.0,
                             weight_grad=30.0, dense_forward=300.0, dense_input_grad=200.0,
                             dense_weight_grad=250.0, macs=6400.0, forward_macs=3200.0,
                             sparse_macs=640.0, act_dense_bits=800.0, act_swat_bits=200.0,
                             act_stored_bits=240.0, act_to_accelerator_bytes=99.6)
    r = network.summarize(totals, 10, 16)
    assert r["forward_cycles"] == 100 and r["backward_cycles"] == 50
    assert r["ideal_dense_cycles"] == 400
    assert r["forward_speedup_vs_ideal_dense"] == 200 / 100
    assert r["backward_speedup_vs_ideal_dense"] == 200 / 50
    assert r["training_speedup_vs_ideal_dense"] == 400 / 150
    assert r["training_speedup"] == 750 / 150
    assert r["iteration_cycles"] == 150
    assert r["dense_mode_utilization"] == 400 / 750
    assert r["stored_vs_dense"] == 0.3
    assert r["offchip_bytes"] == {"to_accelerator": 100, "to_host": 0}


@pytest.mark.slow
def test_network_results_end_to_end(tmp_path):
    result = run_module("sim.network", "--pe", "4x4", "--networks", "resnet18-cifar10",
                        "--batch", "1", "--samples", "1", "--sweep-pes", "4x4",
                        "--sweep-periods", "1,100", "--sweep-lanes", "4", "--out", "res",
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "res"
    assert sorted(p.name for p in out.iterdir()) == ["network.json", "network.md",
                                                     "network.png"]
    report = json.loads((out / "network.json").read_text())
    results = report["results"]
    assert [(r["scheme"], r["sparsity"]) for r in results] == network.SCHEMES
    for r in results:
        for key in ("forward_speedup", "backward_speedup", "training_speedup",
                    "flop_reduction", "activation_memory_saving", "stored_vs_dense",
                    "training_speedup_vs_ideal_dense", "forward_speedup_vs_ideal_dense",
                    "backward_speedup_vs_ideal_dense", "iteration_cycles",
                    "dense_mode_utilization"):
            assert key in r
        assert 0 < r["dense_mode_utilization"] <= 1
        assert set(r["offchip_bytes"]) == {"to_accelerator", "to_host"}
        assert all("offchip_bytes" in layer for layer in r["layers"])
        # The dense mode pays feeding costs an ideal dense array does not.
        assert r["training_speedup_vs_ideal_dense"] < r["training_speedup"]
        assert r["backward_speedup"] > 1.5 and r["forward_speedup"] > 1.0
        assert len(r["layers"]) == len(networks.resnet18_cifar())
    u8, u9 = results[0], results[1]
    # Sparser trains faster, with fewer FLOPs and less saved memory; SWAT-U keeps conv1 dense.
    assert u9["training_speedup"] > u8["training_speedup"]
    assert 0.75 < u8["flop_reduction"] < u9["flop_reduction"] < 0.9
    assert u9["activation_memory_vs_dense"] < u8["activation_memory_vs_dense"] < 0.5
    assert u8["layers"][0]["density"] == 1.0
    # Recomputing the thresholds less often only removes threshold passes.
    (point,) = report["array_size_sweep"]
    assert point["pe"] == "4x4" and point["iteration_cycles"] > 0
    assert "training_speedup_vs_ideal_dense" in point
    p1, p100 = report["period_sweep"]
    assert p100["forward_speedup"] > p1["forward_speedup"]
    assert p100["threshold_share"] < p1["threshold_share"]
    assert "| SWAT-U | 0.9 |" in (out / "network.md").read_text()


def test_sampling_by_length_weighs_each_length_by_its_count():
    chunks = [(0, 8), (8, 8), (16, 3), (19, 8), (27, 8), (35, 3)]
    picked = network._sample_by_length(chunks, 2)
    assert picked == [((0, 8), 2.0), ((27, 8), 2.0), ((16, 3), 1.0), ((35, 3), 1.0)]
    assert sum(w * c[1] for c, w in picked) == sum(c[1] for c in chunks)


def test_a_conv_layer_saves_its_maps_once():
    """A 3x3 conv layer's X~ is saved as feature maps: X streamed once (not k*k copies), the
    stored bits those of golden.feature_maps, every job's read modelled."""
    from golden.feature_maps import FeatureMapFormat

    config = AccelConfig(pe_rows=4, pe_cols=4, tile_depth=64, act_bitmap_bits=1 << 12,
                         act_values=1 << 10)
    layer = networks.ConvShape("c", 3, 8, 3, 1, 1, 8)
    rng = np.random.default_rng(2)
    x_mask = rng.random((4, 3, 8, 8)) < 0.2
    save, weight_grad, stored, streamed = network._feature_map_weight_grad(
        config, layer, x_mask, tiles=2, samples=100)
    assert streamed == x_mask.size * config.width / 8
    fmt = FeatureMapFormat(8, count_bits=11)
    assert stored == fmt.stored_bits(x_mask.size, int(x_mask.sum()))  # one chunk holds it
    assert save == network.perf_model.save_act_cycles(config, x_mask.size)
    assert weight_grad > 0


def test_without_the_conv_read_a_conv_layer_saves_its_im2col_matrix():
    """With ``act_conv_read=0`` a 3x3 conv layer is modelled as saving its im2col matrix
    (k*k copies of X~ streamed and stored), not its feature maps."""
    layer = networks.ConvShape("c", 3, 8, 3, 1, 1, 8)
    results = {}
    for conv_read in (1, 0):
        config = AccelConfig(pe_rows=4, pe_cols=4, tile_depth=64, act_bitmap_bits=1 << 12,
                             act_values=1 << 10, act_conv_read=conv_read)
        per_layer, _ = network.evaluate(config, [layer], [0.2], 4, samples=2,
                                        rng=np.random.default_rng(2))
        results[conv_read] = per_layer[0]
    with_maps, im2col = results[1], results[0]
    assert im2col["act_stored_bits"] == im2col["act_im2col_bits"]
    assert im2col["act_stored_bits"] > 4 * with_maps["act_stored_bits"]
    assert im2col["act_to_accelerator_bytes"] > 4 * with_maps["act_to_accelerator_bytes"]
    assert with_maps["act_stored_bits"] < with_maps["act_im2col_bits"]


def test_a_phase_streamed_is_close_to_its_job_by_job_sequence():
    """Each job costed as after a job like it (what sampling needs) stays within 5 % of the
    sequence of the actual jobs, in the host's order (2.7 % above it here)."""
    import math

    from golden import perf_model, topk

    config = AccelConfig(pe_rows=4, pe_cols=4, tile_depth=32, pe_max_rows=16, pe_max_tiles=4)
    w = np.rint(np.random.default_rng(3).standard_normal((40, 100)) * 30).astype(int)
    mask = topk.sent_mask(w, topk.topk_mask(w, 0.1))
    sparse, _ = network._product_cycles(config, mask, 40, samples=100, dense_cache={})
    jobs = [("gemm", mask[r0:r0 + r_len, k0:k0 + k_len], math.ceil(n / config.pe_cols), False)
            for r0, r_len in network._chunks(40, config.pe_max_rows)
            for k0, k_len in network._chunks(100, config.tile_depth)
            for n, count in network._column_groups(40, config.pe_max_tiles * config.pe_cols)
            for _ in range(count)]
    exact = perf_model.product_sequence(config, jobs)[-1]
    assert abs(sparse - exact) <= 0.05 * exact


def test_the_array_size_sweep_has_a_table_per_network():
    row = {"scheme": "SWAT-U", "sparsity": 0.9, "batch": 4, "forward_speedup": 2.0,
           "backward_speedup": 3.0, "training_speedup": 2.5,
           "training_speedup_vs_ideal_dense": 2.4}
    sweep = [{**row, "network": net, "pe": pe} for net in ("resnet18-cifar10",
                                                          "resnet50-imagenet")
             for pe in ("4x4", "8x8")]
    text = network.format_tables([], sweep, [], [])
    assert "Array size (resnet18-cifar10, SWAT-U 0.9, batch 4)" in text
    assert "Array size (resnet50-imagenet, SWAT-U 0.9, batch 4)" in text
    assert text.count("| 8x8 |") == 2
