"""cocotb testbench of :class:`hw.topk_selector.TopKSelector` against ``golden/``.

Parameters (``SWAT_TB_PARAMS``): ``selector`` (the constructor's arguments), ``random_cases``
(how many random tensors), ``large_n`` (length of the long tensor; 0 skips it).
"""

from fractions import Fraction

import cocotb
import numpy as np

from golden import topk

from .util import CycleCounter, start_clock_and_reset, tb_params, tb_rng
from ..drivers.topk import (TopKSelectorDriver, golden_apply, golden_nm, golden_slice_apply,
                          golden_slice_threshold, golden_threshold)


async def _setup(dut, name, **driver_options):
    """Clock, reset, a driver, a seeded NumPy generator and the operand range."""
    params = tb_params()
    rng = tb_rng(name)
    await start_clock_and_reset(dut)
    drv = TopKSelectorDriver(dut, params["selector"], rng, **driver_options)
    np_rng = np.random.default_rng(rng.getrandbits(32))
    lo, hi = -(1 << (drv.width - 1)), (1 << (drv.width - 1)) - 1
    return params, drv, np_rng, lo, hi


def _check_applied(got, want, label):
    assert got.error == 0, f"{label}: error flag set"
    assert got.n == want.n, f"{label}: n {got.n} != {want.n}"
    assert got.kept == want.kept, f"{label}: kept {got.kept} != {want.kept}"
    assert got.nonzero == want.nonzero, f"{label}: nonzero {got.nonzero} != {want.nonzero}"
    assert got.bitmap == want.bitmap, f"{label}: bitmap differs"
    assert got.indices == want.indices, f"{label}: indices differ"
    assert got.values == want.values, f"{label}: packed values differ"
    assert len(got.values) == got.nonzero, \
        f"{label}: emitted {len(got.values)}, reported {got.nonzero}"


async def _select_and_apply(drv, x, k, label):
    result = await drv.threshold(x, k)
    want_thr = golden_threshold(x, k)
    assert result["error"] == 0, f"{label}: error flag on a valid k"
    assert (result["threshold"], result["keep_none"]) == want_thr, \
        f"{label}: threshold {result['threshold']}/{result['keep_none']} != {want_thr} (k={k})"
    assert result["n"] == x.size, f"{label}: n {result['n']} != {x.size}"
    got = await drv.apply(x)
    _check_applied(got, golden_apply(x, want_thr[0], want_thr[1], drv.width), label)


def _edge_tensors(width, lanes, rng):
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    lengths = sorted({1, max(1, lanes - 1), lanes, lanes + 1, 2 * lanes + 1, 37})
    for n in lengths:
        yield f"random n={n}", rng.integers(lo, hi + 1, size=n)
        yield f"zeros n={n}", np.zeros(n, dtype=np.int64)
        yield f"all equal n={n}", np.full(n, rng.integers(lo, hi + 1))
        yield f"ties n={n}", rng.integers(-2, 3, size=n)
        yield f"extremes n={n}", rng.choice([lo, hi, 0, lo + 1, -hi], size=n)
        yield f"most negative first n={n}", np.concatenate([[lo], rng.integers(lo, hi, n - 1)])


@cocotb.test()
async def edge_tensors_all_k(dut):
    """Every edge tensor with k = 0, 1, a middle k and k = n: threshold, then apply."""
    _, drv, np_rng, _, _ = await _setup(dut, "edge")
    for label, x in _edge_tensors(drv.width, drv.lanes, np_rng):
        n = x.size
        for k in sorted({0, 1, (n + 1) // 2, n}):
            await _select_and_apply(drv, x, k, f"{label} k={k}")


@cocotb.test()
async def random_tensors_random_density(dut):
    params, drv, np_rng, lo, hi = await _setup(dut, "random")
    for case in range(params["random_cases"]):
        n = int(np_rng.integers(1, 400))
        spread = int(np_rng.choice([4, 64, hi + 1]))
        x = np.clip(np_rng.integers(-spread, spread + 1, size=n), lo, hi)
        density = float(np_rng.choice([0.05, 0.1, 0.2, 0.5, 0.8, np_rng.random()]))
        await _select_and_apply(drv, x, topk.topk_k(n, density), f"case {case} n={n} d={density}")


@cocotb.test()
async def stored_and_given_thresholds(dut):
    """SWAT's top-K period: a stored threshold cuts later tensors; a given one works too."""
    params, drv, np_rng, lo, hi = await _setup(dut, "period")
    first = np_rng.integers(lo, hi + 1, size=101)
    result = await drv.threshold(first, topk.topk_k(101, 0.2))
    stored = (result["threshold"], result["keep_none"])
    for i in range(3):
        later = np_rng.integers(lo, hi + 1, size=int(np_rng.integers(1, 150)))
        got = await drv.apply(later)
        _check_applied(got, golden_apply(later, *stored, drv.width), f"reuse {i}")
    for threshold, keep_none in [(0, 0), (0, 1), (hi + 1, 0), (hi, 0), (1, 0)]:
        x = np_rng.integers(lo, hi + 1, size=50)
        got = await drv.apply(x, threshold=threshold, keep_none=keep_none)
        _check_applied(got, golden_apply(x, threshold, keep_none, drv.width),
                       f"given {threshold}/{keep_none}")
    # The stored threshold survived the given ones.
    x = np_rng.integers(lo, hi + 1, size=77)
    _check_applied(await drv.apply(x), golden_apply(x, *stored, drv.width), "stored again")


@cocotb.test()
async def errors_are_flagged(dut):
    _, drv, _, _, _ = await _setup(dut, "errors")
    x = np.arange(10)
    got = await drv.apply(x)  # nothing stored since reset
    assert got.error == 1, "use_stored before any THRESHOLD is not flagged"
    result = await drv.threshold(x, 11)
    assert result["error"] == 1, "k > n is not flagged"
    result = await drv.threshold(x, 10)
    assert result["error"] == 0 and result["threshold"] == 0


@cocotb.test()
async def nm_groups(dut):
    """N:M on edge and random tensors, every N for several M (dividing the lanes or not)."""
    params, drv, np_rng, lo, hi = await _setup(dut, "nm")
    max_m = drv.model.max_nm_m
    for m in sorted({1, 2, 3, 4, max_m}):
        if m > max_m:
            continue
        for n in range(0, m + 1):
            length = int(np_rng.integers(0, 6 * m + 2 * drv.lanes))
            x = np_rng.choice([lo, hi, -2, -1, 0, 1, 2, 3], size=length) \
                if n % 2 else np_rng.integers(lo, hi + 1, size=length)
            got = await drv.nm(x, n, m)
            _check_applied(got, golden_nm(x, n, m, drv.width), f"{n}:{m} n={length}")
    for label, x in _edge_tensors(drv.width, drv.lanes, np_rng):
        got = await drv.nm(x, 2, 4 if max_m >= 4 else max_m)
        _check_applied(got, golden_nm(x, 2, 4 if max_m >= 4 else max_m, drv.width), label)
    if drv.lanes > 1:
        # A short beat before the last breaks the grouping: it is flagged.
        x = np_rng.integers(lo, hi + 1, size=8 * drv.lanes)
        got = await drv.nm(x, 1, 2, short=1.0)
        assert got.error == 1, "short beat in N:M mode not flagged"
    got = await drv.nm(np.arange(5), 1, 0)
    assert got.error == 1, "M = 0 not flagged"


async def _slice_select_and_apply(drv, w, k, slice_len, label):
    result = await drv.slice_threshold(w, k, slice_len)
    want = golden_slice_threshold(w, k, slice_len)
    assert result["error"] == 0, f"{label}: error flag"
    assert (result["threshold"], result["keep_none"]) == want, \
        f"{label}: norm threshold {result['threshold']}/{result['keep_none']} != {want} (k={k})"
    got = await drv.slice_apply(w, slice_len)
    _check_applied(got, golden_slice_apply(w, slice_len, *want, drv.width), label)
    return got


@cocotb.test()
async def kept_zeros_are_not_sent(dut):
    """A post-ReLU tensor (most elements zero) at densities whose threshold is 0: every element
    is kept (SWAT's count), only the non-zero ones are sent, in every mode that keeps zeros."""
    _, drv, np_rng, lo, hi = await _setup(dut, "kept_zeros")
    for n in (1, drv.lanes, 3 * drv.lanes + 1, 61):
        x = np.maximum(np_rng.integers(lo, hi + 1, size=n), 0)
        x[np_rng.random(n) < 0.5] = 0
        for k in sorted({n, max(1, n - 1), int(np.count_nonzero(x)) + 1} & set(range(1, n + 1))):
            label = f"relu n={n} k={k}"
            await _select_and_apply(drv, x, k, label)
        got = await drv.apply(x, threshold=0, keep_none=0)
        assert (got.kept, got.nonzero) == (n, int(np.count_nonzero(x))), \
            f"relu n={n}: kept {got.kept}, nonzero {got.nonzero}"
        want = golden_nm(x, 1, 2, drv.width)
        _check_applied(await drv.nm(x, 1, 2), want, f"relu n={n} 1:2")


@cocotb.test()
async def structured_slices(dut):
    """Structured SWAT: kernel slices ranked by L1 norm, whole slices kept."""
    params, drv, np_rng, lo, hi = await _setup(dut, "slices")
    max_slice = drv.model.max_slice
    for kh, kw in [(1, 1), (3, 3), (1, 3), (2, 2)]:
        slice_len = kh * kw
        if slice_len > max_slice:
            continue
        for cout, cin in [(1, 1), (3, 2), (4, 5)]:
            slices = cout * cin
            for kind in ("random", "ties", "extremes", "zeros"):
                shape = (cout, cin, kh, kw)
                w = {"random": lambda: np_rng.integers(lo, hi + 1, size=shape),
                     "ties": lambda: np_rng.integers(-1, 2, size=shape),
                     "extremes": lambda: np_rng.choice([lo, hi], size=shape),
                     "zeros": lambda: np.zeros(shape, np.int64)}[kind]()
                for k in sorted({0, 1, (slices + 1) // 2, slices}):
                    label = f"{kind} {shape} k={k}"
                    got = await _slice_select_and_apply(drv, w, k, slice_len, label)
                    if k and kind == "random":
                        # The same as golden's structured_mask at the density that gives k.
                        mask = topk.structured_mask(w, Fraction(k, slices)).reshape(-1)
                        sent = topk.sent_mask(w.reshape(-1), mask)
                        assert got.bitmap == sent.astype(int).tolist(), f"{label}: vs golden"
    # A stored norm threshold reused on a later weight, and a given one.
    w1 = np_rng.integers(lo, hi + 1, size=(4, 4, 3, 3))
    result = await drv.slice_threshold(w1, 5, 9)
    w2 = np_rng.integers(lo, hi + 1, size=(4, 4, 3, 3))
    got = await drv.slice_apply(w2, 9)
    _check_applied(got, golden_slice_apply(w2, 9, result["threshold"], result["keep_none"],
                                           drv.width), "reused norm threshold")
    got = await drv.slice_apply(w2, 9, threshold=3 * hi, keep_none=0)
    _check_applied(got, golden_slice_apply(w2, 9, 3 * hi, 0, drv.width), "given norm threshold")
    # The element threshold is stored apart from the norm threshold.
    x = np_rng.integers(lo, hi + 1, size=30)
    elem = await drv.threshold(x, 7)
    got = await drv.slice_apply(w2, 9)
    _check_applied(got, golden_slice_apply(w2, 9, result["threshold"], result["keep_none"],
                                           drv.width), "norm threshold kept apart")
    got = await drv.apply(x)
    _check_applied(got, golden_apply(x, elem["threshold"], elem["keep_none"], drv.width),
                   "element threshold kept apart")


@cocotb.test()
async def long_tensor_full_rate(dut):
    """A long tensor with no stalls: each pass runs at ``lanes`` elements per cycle."""
    if not tb_params()["large_n"]:
        return
    params, drv, np_rng, lo, hi = await _setup(dut, "large", stall=0.0, short=0.0)
    n = params["large_n"]
    x = np.clip(np.rint(np_rng.standard_normal(n) * hi / 4), lo, hi).astype(np.int64)
    counter = CycleCounter(dut.clk)
    await _select_and_apply(drv, x, topk.topk_k(n, 0.1), f"long n={n}")
    cycles = counter.count
    beats = -(-n // drv.lanes)
    ideal = beats * (drv.model.passes + 1)
    overhead = cycles - ideal
    dut._log.info(f"long tensor: n={n}, {cycles} cycles, ideal {ideal}")
    # Fixed costs only: the histogram clear after reset, a scan per pass, a few cycles per
    # command. Nothing grows with n.
    bins = 1 << 8
    assert overhead <= bins + drv.model.passes * (bins + 16) + 64, f"overhead {overhead} cycles"
