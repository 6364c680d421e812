import numpy as np
import pytest

from golden.config import AccelConfig
from hw.bist import SwatBist, bist_vectors

from configs import ONE_PE, by_default_on, tiny_config

# 2x2 and 3x4 arrays, 8- and 16-bit, with the tiny configuration's memories; and the 1x1 board
# configuration of tests/test_rtl_gen_board.py.
CONFIGS = {
    "1x1_w8": AccelConfig(**ONE_PE),
    "2x2_w8": tiny_config(pe_rows=2, pe_cols=2),
    "3x4_w16": tiny_config(pe_rows=3, pe_cols=4, width=16, topk_lanes=4),
}


def test_vectors_cover_edges():
    config = CONFIGS["2x2_w8"]
    w, mask, d, k, expected = bist_vectors(config)
    assert w.shape == (5, 12) and d.shape == (12, 3)
    assert w.min() == -128 and d.min() == -128 and mask.sum() >= k
    assert expected.shape == (5, 4) and not expected[:, 3].any()  # the padded column
    assert np.array_equal(expected[:, :3], np.where(mask, w, 0) @ d)


# Each case is its own design; on Verilator (a minute's compile each) three of five run by
# default.


@pytest.mark.parametrize("name, corrupt", [
    pytest.param("1x1_w8", False, marks=by_default_on("icarus")), ("2x2_w8", False),
    pytest.param("2x2_w8", True, marks=by_default_on("icarus")), ("3x4_w16", False),
    ("3x4_w16", True)])
def test_self_test_on_the_rtl(run_cocotb, name, corrupt):
    run_cocotb(SwatBist(CONFIGS[name], corrupt=corrupt), toplevel="swat_bist",
               test_module="sim.testbenches.bist",
               params={"expect": "fail" if corrupt else "pass", "timeout": 5000})
