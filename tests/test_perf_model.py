import json

import numpy as np
import pytest

from golden.config import AccelConfig
from golden.perf_model import pe_array_job_cycles
from hw.pe_array import SparsePEArray

CONFIG = AccelConfig(pe_rows=4, pe_cols=4, width=8, tile_depth=64, pe_bank_entries=1024,
                     pe_max_rows=64, pe_max_tiles=6, pe_dense_lanes=4)


def test_dense_mode_is_rows_over_pe_rows_per_tile():
    # 8 rows of 32 on 4 PE rows: 64 cycles a tile once the first tile is loaded.
    one = pe_array_job_cycles(CONFIG, [0] * 8, 32, 1, dense=True)
    three = pe_array_job_cycles(CONFIG, [0] * 8, 32, 3, dense=True)
    assert abs((three - one) - 2 * 64) <= 1  # the result path's tail may differ by a cycle


def test_sparser_is_faster_and_balanced_order_helps():
    dense = pe_array_job_cycles(CONFIG, [0] * 40, 64, 6, dense=True)
    nnz = [1 + (i * 7) % 13 for i in range(40)]
    sparse = pe_array_job_cycles(CONFIG, sorted(nnz, reverse=True), 64, 6)
    assert sparse < dense / 4


@pytest.mark.slow
@pytest.mark.parametrize("dense_lanes", [4, 8], ids=["dense_row", "dense_rows2"])
def test_model_agrees_with_the_rtl(run_cocotb, simulator, tmp_path, dense_lanes):
    """Within 2 % on random tiles of 100 to 900 cycles (the benchmark's 168 layer tiles are
    checked in tests/test_model_vs_bench.py), with one dense row a beat and with two."""
    if simulator != "verilator":
        pytest.skip("cycle counts are the same on both simulators; one suffices")
    config = CONFIG.replace(pe_dense_lanes=dense_lanes)
    out = tmp_path / "model.json"
    run_cocotb(SparsePEArray.from_config(config), toplevel="pe_array",
               test_module="sim.testbenches.perf_model",
               params={"config": config.to_dict(), "jobs": 30, "tolerance": 0.02,
                       "out": str(out)})
    report = json.loads(out.read_text())
    assert len(report) == 30


@pytest.mark.slow
def test_model_agrees_with_the_rtl_on_short_rows(run_cocotb, simulator, tmp_path):
    """Within 2 % on rows of a few entries over 10 to 20 tiles (an input gradient over few
    outputs): the result slots set the pace, and PE rows drift up to two tiles apart, the
    results of different tiles competing for the slot they share."""
    if simulator != "verilator":
        pytest.skip("cycle counts are the same on both simulators; one suffices")
    config = CONFIG.replace(pe_max_tiles=20)
    out = tmp_path / "model.json"
    run_cocotb(SparsePEArray.from_config(config), toplevel="pe_array",
               test_module="sim.testbenches.perf_model",
               params={"config": config.to_dict(), "jobs": 30, "tolerance": 0.02,
                       "out": str(out), "short": True})
    report = json.loads(out.read_text())
    assert len(report) == 30 and max(r["tiles"] for r in report) >= 15


# The accelerator top: 8-bit with 32-bit bitmap words; 16-bit (two threshold passes) on a
# 2x4 array with one result slot, 8-bit bitmap words (a word boundary every 8 elements) and
# bank words of 8 entries, twice the selector's beats (the row packer gathers them).
TOP_CONFIGS = {
    "4x4_w8": AccelConfig(pe_rows=4, pe_cols=4, width=8, tile_depth=64, pe_bank_entries=1024,
                          pe_max_rows=64, pe_max_tiles=6, max_tensor_len=1 << 13,
                          act_bitmap_bits=1 << 13, act_values=1 << 12, act_tensors=2,
                          act_max_rows=64, act_max_cols=64),
    "2x4_w16": AccelConfig(pe_rows=2, pe_cols=4, width=16, tile_depth=48, pe_bank_entries=1024,
                           pe_sparse_lanes=8, pe_result_lanes=1, pe_max_rows=40, pe_max_tiles=5,
                           max_tensor_len=1 << 12, act_bitmap_bits=1 << 12, act_values=1 << 11,
                           act_tensors=2, act_max_rows=48, act_max_cols=48, act_scan_bits=8),
    # A 16-lane selector (N:M and slices split to 4 lanes) writing a 4-lane buffer through its
    # value queue, on a 4x4 array.
    "4x4_w8_lanes16": AccelConfig(pe_rows=4, pe_cols=4, width=8, tile_depth=64, topk_lanes=16,
                                  pe_bank_entries=1024, pe_max_rows=64, pe_max_tiles=6,
                                  max_tensor_len=1 << 13, act_bitmap_bits=1 << 13,
                                  act_values=1 << 12, act_tensors=2, act_max_rows=64,
                                  act_max_cols=64),
    # Dense beats of four rows (the layer-sized arrays' default is two or four).
    "4x4_w8_rows4": AccelConfig(pe_rows=4, pe_cols=4, width=8, tile_depth=64,
                                pe_dense_lanes=16, pe_bank_entries=1024, pe_max_rows=64,
                                pe_max_tiles=6, max_tensor_len=1 << 13, act_bitmap_bits=1 << 13,
                                act_values=1 << 12, act_tensors=2, act_max_rows=64,
                                act_max_cols=64),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", [
    "2x4_w16", "4x4_w8",
    pytest.param("4x4_w8_lanes16", marks=pytest.mark.long),
    pytest.param("4x4_w8_rows4", marks=pytest.mark.long)])
def test_top_model_agrees_with_the_rtl(run_cocotb, simulator, tmp_path, name):
    """Every command (threshold, save, GEMM sparse (rows in order and longest first) and dense,
    weight-gradient GEMM) within 2 %
    of the top's reply cycles, or 3 cycles for commands of a few dozen cycles (the worst in
    these runs: 1.0 % on commands over 100 cycles, 1 cycle in 65 below); and products sent back
    to back (:func:`golden.perf_model.product_sequence`) within 2 %, or 3 cycles for each
    product up to the reply."""
    if simulator != "verilator":
        pytest.skip("cycle counts are the same on both simulators; one suffices")
    from hw.top import SwatAccel

    config = TOP_CONFIGS[name]
    out = tmp_path / "top_model.json"
    run_cocotb(SwatAccel(config), toplevel="swat_accel", test_module="sim.testbenches.perf_top",
               params={"config": config.to_dict(), "jobs": 25, "tolerance": 0.02, "slack": 3,
                       "out": str(out)})
    report = json.loads(out.read_text())
    kinds = {r["kind"] for r in report}
    assert kinds == {"threshold", "save", "gemm", "gemm_longest_first", "gemm_dense",
                     "gemm_saved"}


def _conv_mask(shape, density, seed=0):
    import numpy as np

    return np.random.default_rng(seed).random(shape) < density


def test_conv_read_emits_every_im2col_element_once():
    import numpy as np

    from golden.layers import im2col
    from golden.perf_model import act_conv_read, conv_read_result_cycle

    config = AccelConfig()
    for shape, kernel, stride, padding in [((2, 3, 6, 5), 3, 1, 1), ((1, 2, 9, 9), 7, 2, 3),
                                           ((1, 1, 1, 1), 3, 1, 1)]:
        mask = _conv_mask(shape, 0.4)
        scan = act_conv_read(config, mask, kernel=kernel, stride=stride, padding=padding)
        kept = im2col(mask.astype(np.int64), kernel, stride, padding).sum(axis=0)
        assert sum(e for _, e, _ in scan) == kept.sum()
        # Each feature's elements in order: the rows emitted never go back.
        rows = [r for r, e, _ in scan if e]
        assert rows == sorted(rows)
        # A beat holds at most a beat's lanes.
        assert max(e for _, e, _ in scan) <= config.buffer_lanes * config.conv_read_words
        assert conv_read_result_cycle(scan) >= len(scan) + 2


def test_conv_read_cost_per_row_segment_on_small_maps():
    from golden.feature_maps import row_segments
    from golden.perf_model import act_conv_read, conv_read_result_cycle

    config = AccelConfig()
    shape = (8, 8, 4, 4)
    # At stride 1 ("same" padding) a feature's rows of an image are one segment: well under a
    # cycle per input row; at stride 2 a row is a segment, about a cycle each.
    for stride, most in ((1, 0.5), (2, 1.5)):
        scan = act_conv_read(config, _conv_mask(shape, 0.1), kernel=3, stride=stride,
                             padding=1)
        segments = sum(len(row_segments(shape, f, 3, stride, 1))
                       for f in [(c, ky, kx) for c in range(8) for ky in range(3)
                                 for kx in range(3)])
        assert conv_read_result_cycle(scan) / segments < most


@pytest.mark.parametrize("shape, kernel, padding", [((2, 3, 4, 4), 3, 1), ((3, 2, 5, 7), 1, 0),
                                                    ((2, 2, 3, 40), 3, 1), ((2, 1, 1, 1), 3, 1)])
def test_conv_read_spans_emit_the_partial_reads_elements(shape, kernel, padding):
    import numpy as np

    from golden.layers import im2col
    from golden.perf_model import act_conv_read

    config = AccelConfig()
    mask = _conv_mask(shape, 0.4, seed=3)
    rows = im2col(mask.astype(np.int64), kernel, 1, padding).T  # features x output pixels
    n, c, h, w = shape
    kk = kernel * kernel
    for c0, cc, r0, rc in [(0, c, 0, n * h), (1, c - 1, 1, n * h - 2), (c - 1, 1, h - 1, 2),
                           (0, 1, n * h - 1, 1)]:
        if cc < 1 or rc < 1:
            continue
        scan = act_conv_read(config, mask, kernel=kernel, stride=1, padding=padding,
                             first_channel=c0, channels=cc, first_out_row=r0, out_rows=rc)
        want = rows[c0 * kk:(c0 + cc) * kk, r0 * w:(r0 + rc) * w].sum()
        assert sum(e for _, e, _ in scan) == want, (c0, cc, r0, rc)


def test_gemm_saved_cycles_takes_a_conv_read():
    import numpy as np

    from golden.layers import im2col
    from golden.perf_model import act_conv_read, gemm_saved_cycles

    config = AccelConfig()
    mask = _conv_mask((1, 2, 5, 5), 0.3)
    features = im2col(mask.astype(np.int64), 3, 1, 1).T.astype(bool)
    plain = gemm_saved_cycles(config, features, 2)
    assert gemm_saved_cycles(config, features, 2, scan=None) == plain
    conv = gemm_saved_cycles(config, features, 2,
                             scan=act_conv_read(config, mask, kernel=3, stride=1, padding=1))
    assert conv > 0


@pytest.mark.parametrize("kwargs, message", [
    ({"kernel": 0}, "kernel must be a positive integer, not 0"),
    ({"stride": 3}, "stride must be 1 or 2, not 3"),
    ({"padding": 3}, r"padding must be from 0 to kernel - 1 \(2\), not 3"),
    ({"kernel": 7, "padding": 1}, "a 4x4 map padded by 1 is smaller than the 7x7 kernel"),
])
def test_conv_read_model_parameters_are_validated(kwargs, message):
    from golden.perf_model import act_conv_read

    args = {"kernel": 3, "stride": 1, "padding": 1, **kwargs}
    with pytest.raises(ValueError, match=f"^{message}$"):
        act_conv_read(AccelConfig(), _conv_mask((1, 1, 4, 4), 0.5), **args)
    with pytest.raises(ValueError, match=r"^mask must be \(N, C, H, W\), not shape \(4, 4\)$"):
        act_conv_read(AccelConfig(), _conv_mask((4, 4), 0.5), kernel=3, stride=1, padding=1)


def test_packer_counts_follow_the_mask_packer():
    from golden.perf_model import _packer_counts

    counts = lambda bits, lanes: _packer_counts(np.array(bits, dtype=bool), lanes)
    # A full word whenever `lanes` have gathered, the rest on the last beat...
    assert counts([1, 1, 1, 0, 1, 1, 1, 1, 1], 4) == [0, 4, 4]
    # ... and an extra beat when more than `lanes` remain; one beat for an empty tensor.
    assert counts([1] * 9, 4) == [4, 4, 1]
    assert counts([1] * 8, 4) == [4, 4]
    assert counts([0] * 3, 4) == [0]
    assert counts([1], 16) == [1]
    # The same as the beats the testbenches feed the buffer (checked against the RTL packer).
    from sim.drivers.topk import packer_beats

    rng = np.random.default_rng(3)
    for lanes in (1, 4, 16):
        for n in (1, lanes, lanes + 1, 5 * lanes + 2, 37):
            mask = rng.random(n) < rng.choice([0.0, 0.3, 1.0])
            x = np.ones(n, dtype=np.int64)
            want = [b["count"] for b in packer_beats(x, mask, lanes)]
            assert counts(mask, lanes) == want, (lanes, n)


def test_value_queue_delay():
    from golden.perf_model import _value_queue_delay

    # Without values the flush comes a cycle later than without the queue.
    assert _value_queue_delay([0, 0, 0], 4) == 1
    # A last word of 16 values in 4-value writes: written over 4 cycles after the beat.
    assert _value_queue_delay([0, 0, 16], 4) == 4
    # Words far enough apart never hold the stream; only the last one's writes show.
    assert _value_queue_delay([16, 0, 0, 0, 16, 0, 0, 0, 3], 4) == 1
    # Back-to-back words: each waits behind the one before, and holds the beats after it.
    assert _value_queue_delay([16, 16, 16], 4) == 3 * 4 - 3 + 1


def test_save_needs_the_sent_mask_when_the_buffer_is_narrower():
    from golden.config import AccelConfig
    from golden.perf_model import BUFFER_LOOKUP, SAVE_FIXED, save_act_cycles

    same = AccelConfig(pe_rows=4, pe_cols=4)
    assert save_act_cycles(same, 100) == save_act_cycles(same, 100, np.ones(100, bool))
    wide = AccelConfig()  # 16 selector lanes, 4 buffer lanes
    sparse = np.zeros(160, bool)
    sparse[::10] = True
    # Ten beats; the sixteen values arrive as one word on the last, written in four cycles.
    assert save_act_cycles(wide, 160, sparse) == 10 + SAVE_FIXED + BUFFER_LOOKUP + 4
    with pytest.raises(ValueError, match="sent is needed"):
        save_act_cycles(wide, 160)
