import numpy as np
import pytest

from golden.config import AccelConfig
from hw.bist import SwatBist, bist_vectors

# 2x2 and 3x4 arrays, 8- and 16-bit, small memories; and the 1x1 board configuration of
# tests/test_rtl_gen_board.py.
CONFIGS = {
    "1x1_w8": AccelConfig(pe_rows=1, pe_cols=1, width=8, tile_depth=8, topk_lanes=1,
                          pe_bank_entries=16, pe_max_rows=4, pe_max_tiles=2, max_tensor_len=64,
                          nm_max_m=2, max_kernel_slice=1, act_bitmap_bits=64, act_values=32,
                          act_tensors=1, act_max_rows=8, act_max_cols=8),
    "2x2_w8": AccelConfig(pe_rows=2, pe_cols=2, width=8, tile_depth=16, topk_lanes=2,
                          pe_bank_entries=64, pe_max_rows=8, pe_max_tiles=2, max_tensor_len=256,
                          act_bitmap_bits=64, act_values=64, act_tensors=1, act_max_rows=16,
                          act_max_cols=16),
    "3x4_w16": AccelConfig(pe_rows=3, pe_cols=4, width=16, tile_depth=16, topk_lanes=4,
                           pe_bank_entries=64, pe_max_rows=8, pe_max_tiles=2,
                           max_tensor_len=256, act_bitmap_bits=64, act_values=64, act_tensors=1,
                           act_max_rows=16, act_max_cols=16),
}


def test_vectors_cover_edges():
    config = CONFIGS["2x2_w8"]
    w, mask, d, k, expected = bist_vectors(config)
    assert w.shape == (5, 12) and d.shape == (12, 3)
    assert w.min() == -128 and d.min() == -128 and mask.sum() >= k
    assert expected.shape == (5, 4) and not expected[:, 3].any()  # the padded column
    assert np.array_equal(expected[:, :3], np.where(mask, w, 0) @ d)


@pytest.mark.parametrize("name, corrupt", [("1x1_w8", False), ("2x2_w8", False),
                                           ("2x2_w8", True), ("3x4_w16", False),
                                           ("3x4_w16", True)])
def test_self_test_on_the_rtl(run_cocotb, name, corrupt):
    run_cocotb(SwatBist(CONFIGS[name], corrupt=corrupt), toplevel="swat_bist",
               test_module="sim.tb_bist",
               params={"expect": "fail" if corrupt else "pass", "timeout": 5000})
