"""cocotb testbench of :class:`hw.top.SwatAccel`: what the PE array's banks hold, and kept zeros.

* ``saved_orders_at_bank_limit``: the same activations saved batch-major (read by columns) and
  feature-major (read by rows); the weight gradient of both, on banks sized at the exact limit
  the driver computes (:func:`golden.pe_array.bank_words`) or one entry below it (``fits``).
  At the limit both orders run and match golden; below it the driver refuses both before
  sending anything, and sent anyway the hardware flags ``bank_full`` and ends no result stream.
* ``kept_zeros_are_neither_stored_nor_multiplied``: post-ReLU activations and weights at a
  threshold of 0: SWAT's ``kept`` counts every element, ``nonzero`` and ``stored_bits`` only
  the non-zero ones, and ``macs`` the non-zero entries times the columns.

Parameters (``SWAT_TB_PARAMS``): ``config``, ``x`` (positions x features), ``dy`` (positions x
outputs), ``fits``.
"""

import cocotb
import numpy as np

from golden import topk

from ..drivers.accel import AccelDriver, JobTooLarge
from ..drivers.payload import unpack
from ..drivers.pe_array import expected_tiles
from .util import start_clock_and_reset, tb_params, tb_rng


async def _setup(dut, name):
    params = tb_params()
    rng = tb_rng(name)
    await start_clock_and_reset(dut)
    drv = AccelDriver(dut, params["config"], rng)
    x = np.array(params["x"], dtype=np.int64)
    dy = np.array(params["dy"], dtype=np.int64)
    return params, drv, x, dy


@cocotb.test()
async def saved_orders_at_bank_limit(dut):
    params, drv, x, dy = await _setup(dut, "orders")
    positions, features = x.shape
    assert (await drv.threshold(0, x, x.size))["error"] == 0  # density 1: threshold 0
    assert (await drv.save_act(0, 0, x))["error"] == 0        # batch-major: X
    assert (await drv.save_act(0, 1, x.T))["error"] == 0      # feature-major: X.T
    mask = topk.sent_mask(x, np.ones(x.shape, bool))
    want = expected_tiles(x.T, mask.T, dy, drv.cols, list(range(features)))
    for act_slot, feature_major in ((0, False), (1, True)):
        label = "feature-major" if feature_major else "batch-major"
        if params["fits"]:
            reply, got = await drv.gemm_saved(act_slot, features, dy,
                                              feature_major=feature_major)
            assert reply["error"] == 0, f"{label}: {reply}"
            assert got == want, f"{label}: weight gradient differs from golden"
            continue
        try:
            await drv.gemm_saved(act_slot, features, dy, feature_major=feature_major)
        except JobTooLarge as e:
            assert "bank words" in str(e), str(e)
        else:
            raise AssertionError(f"{label}: a job the banks cannot hold was not refused")
        drv.check_banks = False
        first = len(drv.result.received)
        reply, got = await drv.gemm_saved(act_slot, features, dy, feature_major=feature_major)
        drv.check_banks = True
        assert reply["error"] == 1 and reply["pe_error"]["bank_full"] == 1, f"{label}: {reply}"
        beats = [unpack(drv.model.pe_array.result_layout, p) for p in drv.result.received[first:]]
        assert not any(beat["last"] for beat in beats), f"{label}: a failed job ended its results"
        assert len(got) < len(want), f"{label}: a full result set from overflowing banks"


@cocotb.test()
async def kept_zeros_are_neither_stored_nor_multiplied(dut):
    params, drv, x, dy = await _setup(dut, "zeros")
    cfg = drv.config
    relu = np.maximum(x, 0)
    nonzero = int(np.count_nonzero(relu))
    assert (await drv.threshold(1, relu, relu.size))["threshold"] == 0
    reply = await drv.save_act(1, 0, relu)
    assert reply["error"] == 0
    assert reply["kept"] == relu.size, "SWAT keeps every element at threshold 0"
    assert reply["nonzero"] == nonzero
    assert reply["stored_bits"] == relu.size + nonzero * cfg.width
    positions, features = relu.shape
    n = dy.shape[1]
    cols, tiles = min(cfg.pe_cols, n), -(-n // cfg.pe_cols)
    reply, got = await drv.gemm_saved(0, features, dy)
    assert reply["error"] == 0, str(reply)
    mask = relu != 0
    assert got == expected_tiles(relu.T, mask.T, dy, drv.cols, list(range(features)))
    assert reply["macs"] == nonzero * cols * tiles, f"macs {reply['macs']}: kept zeros sent"
    # The forward product's weights through the same threshold: zeros kept, none sent.
    reply, got = await drv.gemm(relu.T, dy, slot=1)
    assert reply["error"] == 0, str(reply)
    assert reply["kept"] == relu.size and reply["nonzero"] == nonzero
    assert got == expected_tiles(relu.T, mask.T, dy, drv.cols, list(range(features)))
    assert reply["macs"] == nonzero * cols * tiles, f"macs {reply['macs']}: kept zeros sent"
    reply, elements = await drv.read_out(0)
    assert elements == [(r, c, int(relu[r, c])) for r in range(positions)
                        for c in range(features)]
