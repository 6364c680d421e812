"""cocotb testbench of :class:`hw.top.SwatAccel`: a SWAT linear layer's training step through
the host interface, every product checked bit for bit against golden.

Parameters (``SWAT_TB_PARAMS``): ``config`` (an :class:`golden.config.AccelConfig` dict),
``batch``, ``fan_in``, ``fan_out``, ``density``.
"""

import cocotb
import numpy as np

from golden import numerics, topk
from hw.top import AccelOp, RowMode

from ..drivers.accel import AccelDriver
from ..drivers.pe_array import expected_tiles
from .util import start_clock_and_reset, tb_params, tb_rng


async def _setup(dut, name):
    params = tb_params()
    rng = tb_rng(name)
    await start_clock_and_reset(dut)
    drv = AccelDriver(dut, params["config"], rng)
    return params, drv, np.random.default_rng(rng.getrandbits(32))


def _operand(np_rng, width, shape):
    lo, hi = numerics.operand_range(width)
    x = np_rng.integers(lo, hi + 1, size=shape)
    x[np_rng.random(shape) < 0.2] = 0  # some zeros, so threshold-0 ties occur
    return x.astype(np.int64)


def _check(label, got, s, mask, d, cols):
    want = expected_tiles(s, mask, d, cols, list(range(s.shape[0])))
    assert set(got) == set(want), f"{label}: results {sorted(set(want) ^ set(got))[:4]} differ"
    for key, values in want.items():
        assert got[key] == values, f"{label}: result {key} is {got[key]}, not {values}"


@cocotb.test()
async def linear_layer_step(dut):
    """Threshold refresh, activation save, forward, input gradient, weight gradient, read-out,
    free; then a reuse of the stored thresholds on new weights."""
    params, drv, np_rng = await _setup(dut, "step")
    cfg = drv.config
    w_ = cfg.width
    batch, fan_in, fan_out, density = (params[k] for k in ("batch", "fan_in", "fan_out",
                                                           "density"))
    w = _operand(np_rng, w_, (fan_out, fan_in))
    x = _operand(np_rng, w_, (batch, fan_in))
    dy = _operand(np_rng, w_, (batch, fan_out))
    w_mask = topk.topk_mask(w, density)
    x_mask = topk.topk_mask(x, density)

    reply = await drv.threshold(0, w, topk.topk_k(w.size, density))
    assert reply["error"] == 0
    assert reply["threshold"] == int(topk.kth_largest_magnitude(w, topk.topk_k(w.size, density)))
    assert (await drv.threshold(1, x, topk.topk_k(x.size, density)))["error"] == 0
    reply = await drv.save_act(1, 0, x)
    assert reply["error"] == 0 and reply["kept"] == int(x_mask.sum())
    assert reply["nonzero"] == int(topk.sent_mask(x, x_mask).sum())
    assert reply["stored_bits"] == x.size + reply["nonzero"] * w_

    reply, got = await drv.gemm(w, x.T)                       # forward: W~ @ X.T = Y.T
    assert reply["error"] == 0, str(reply)
    _check("forward", got, w, w_mask, x.T, drv.cols)
    assert reply["kept"] == int(w_mask.sum()), "SWAT's count, kept zeros included"
    assert reply["macs"] == int(topk.sent_mask(w, w_mask).sum()) * min(drv.cols, batch) \
        * -(-batch // drv.cols), "kept zeros reached the PE array"
    reply, got = await drv.gemm(w.T, dy.T)                    # input grad: W~.T @ dY.T
    assert reply["error"] == 0, str(reply)
    _check("input_grad", got, w.T, w_mask.T, dy.T, drv.cols)
    reply, got = await drv.gemm_saved(0, fan_in, dy)          # weight grad: X~.T @ dY
    assert reply["error"] == 0, str(reply)
    _check("weight_grad", got, x.T, x_mask.T, dy, drv.cols)

    # The same weight gradient from the activations saved feature-major (X.T), read by rows.
    assert (await drv.save_act(1, 1, x.T))["error"] == 0
    reply, got_rows = await drv.gemm_saved(1, fan_in, dy, feature_major=True)
    assert reply["error"] == 0, str(reply)
    assert got_rows == got, "feature-major weight gradient differs"
    assert (await drv.free(1))["error"] == 0

    reply, elements = await drv.read_out(0)
    assert reply["error"] == 0
    dense = np.where(x_mask, x, 0)
    assert elements == [(r, c, int(dense[r, c])) for r in range(batch) for c in range(fan_in)]
    assert (await drv.free(0))["error"] == 0

    # Top-K period: new weights, the stored threshold reused (no refresh).
    w2 = _operand(np_rng, w_, (fan_out, fan_in))
    stored = topk.kth_largest_magnitude(w, topk.topk_k(w.size, density))
    reply, got = await drv.gemm(w2, x.T)
    _check("reuse", got, w2, np.abs(w2) >= stored, x.T, drv.cols)


@cocotb.test()
async def dense_and_nm_modes(dut):
    params, drv, np_rng = await _setup(dut, "modes")
    cfg = drv.config
    s = _operand(np_rng, cfg.width, (params["fan_out"], params["fan_in"]))
    d = _operand(np_rng, cfg.width, (params["fan_in"], params["batch"]))
    reply, got = await drv.gemm(s, d, mode=RowMode.DENSE)
    assert reply["error"] == 0, str(reply)
    _check("dense", got, s, np.ones(s.shape, bool), d, drv.cols)
    assert reply["macs"] == s.size * min(drv.cols, d.shape[1]) * -(-d.shape[1] // drv.cols)
    n, m = 2, min(4, cfg.nm_max_m)
    drv.short = 0.0  # the selector's N:M mode takes full beats but a tensor's last
    reply, got = await drv.gemm(s, d, mode=RowMode.NM, nm=(n, m))
    assert reply["error"] == 0, str(reply)
    _check("nm", got, s, topk.nm_mask(s, n, m), d, drv.cols)


@cocotb.test()
async def refusals(dut):
    params, drv, np_rng = await _setup(dut, "refusals")
    cfg = drv.config
    s = _operand(np_rng, cfg.width, (2, 3))
    # A threshold slot never set: refused before anything is consumed.
    first = len(drv.result.received)
    drv._command(AccelOp.GEMM, slot=3, rows=2, depth=3, cols=1, tiles=1)
    reply = await drv._reply(10)
    assert reply["error"] == 1 and len(drv.result.received) == first
    # Reading an empty activation slot.
    reply, elements = await drv.read_out(1)
    assert reply["error"] == 1 and elements == []
    assert (await drv.threshold(0, s, 3))["error"] == 0
    # Rows shorter than the command's depth: flagged, and the command still ends.
    d = _operand(np_rng, cfg.width, (3, 2))
    command = drv._gemm_command(AccelOp.GEMM, rows=2, depth=3, n=2, slot=0)
    reply, _ = await drv.finish(drv._send_product(
        command, 2, d, lambda: sum(drv._send_tensor(row[:2]) for row in s)))
    assert reply["error"] == 1, "a short row is not flagged"
    # A saved tensor read with another shape than it has.
    assert (await drv.save_act(0, 0, s))["error"] == 0
    reply, _ = await drv.gemm_saved(0, 3, _operand(np_rng, cfg.width, (3, 2)))
    assert reply["error"] == 1, "a saved tensor of another shape is not flagged"
    assert (await drv.free(0))["error"] == 0
    # The engine still works.
    reply, got = await drv.gemm(s, d)
    assert reply["error"] == 0
    _check("after refusals", got, s, topk.topk_mask(s, 3 / 6), d, drv.cols)


@cocotb.test()
async def overlapping_commands(dut):
    """Products sent ahead of their replies, in random orders, with threshold refreshes, saves,
    read-outs and frees between them, every port stalling at random: every product against
    golden, every reply in command order."""
    params, drv, np_rng = await _setup(dut, "overlap")
    cfg = drv.config
    w_ = cfg.width
    batch, fan_in, fan_out, density = (params[k] for k in ("batch", "fan_in", "fan_out",
                                                           "density"))
    for round_ in range(4):
        w = _operand(np_rng, w_, (fan_out, fan_in))
        x = _operand(np_rng, w_, (batch, fan_in))
        dy = _operand(np_rng, w_, (batch, fan_out))
        assert (await drv.threshold(0, w, topk.topk_k(w.size, density)))["error"] == 0
        assert (await drv.threshold(1, x, topk.topk_k(x.size, density)))["error"] == 0
        assert (await drv.save_act(1, 0, x.T))["error"] == 0
        w_mask, x_mask = topk.topk_mask(w, density), topk.topk_mask(x, density)
        pending = []  # (label, product, s, mask, d)
        steps = ["forward", "input_grad", "weight_grad", "dense", "refresh", "read_out"]
        for step in np_rng.permutation(steps).tolist():
            if step == "forward":
                pending.append((step, drv.send_gemm(w, x.T, slot=0), w, w_mask, x.T))
            elif step == "input_grad":
                pending.append((step, drv.send_gemm(w.T, dy.T, slot=0), w.T, w_mask.T, dy.T))
            elif step == "weight_grad":
                pending.append((step, drv.send_gemm_saved(0, fan_in, dy, feature_major=True),
                                x.T, x_mask.T, dy))
            elif step == "dense":
                pending.append((step, drv.send_gemm(w, x.T, mode=RowMode.DENSE), w,
                                np.ones(w.shape, bool), x.T))
            elif step == "refresh":
                # A refresh of another slot while products are under way; its reply comes
                # after theirs.
                reply = await drv.threshold(2, dy, topk.topk_k(dy.size, density))
                assert reply["error"] == 0 and reply["op"] == AccelOp.THRESHOLD.value
                assert reply["threshold"] == int(topk.kth_largest_magnitude(
                    dy, topk.topk_k(dy.size, density)))
                assert all(drv.reply.cycles[p.index] <= drv.reply.cycles[-1]
                           for _, p, *_ in pending)
            else:
                # Read-out also waits for the products' replies; the saved slot is untouched.
                reply, elements = await drv.read_out(0)
                assert reply["error"] == 0
                kept = np.where(x_mask.T, x.T, 0)
                assert elements == [(r, c, int(kept[r, c])) for r in range(fan_in)
                                    for c in range(batch)]
        for label, product, s, mask, d in pending:
            reply, got = await drv.finish(product)
            assert reply["error"] == 0, f"round {round_} {label}: {reply}"
            _check(f"round {round_} {label}", got, s, mask, d, drv.cols)
        assert (await drv.free(0))["error"] == 0
