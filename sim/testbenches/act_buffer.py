"""cocotb testbench of :class:`hw.act_buffer.ActivationBuffer` against
:class:`golden.act_buffer.ActivationBuffer`.

Parameters (``SWAT_TB_PARAMS``): ``buffer`` (see :func:`sim.drivers.act_buffer.buffer_params`)
and ``cases`` (random operations).
"""

import cocotb
import numpy as np

from golden import topk
from golden.act_buffer import ActivationBuffer as GoldenBuffer
from hw.act_buffer import ActOp

from ..drivers.act_buffer import ActivationBufferDriver
from .util import start_clock_and_reset, tb_params, tb_rng


async def _setup(dut, name):
    params = tb_params()
    rng = tb_rng(name)
    await start_clock_and_reset(dut)
    p = params["buffer"]
    drv = ActivationBufferDriver(dut, p, rng)
    golden = GoldenBuffer(width=p["width"],
                          bitmap_capacity=drv.model.bitmap_words * p["word_bits"],
                          value_capacity=drv.model.value_words * p["lanes"],
                          max_tensors=p["max_tensors"])
    return params, drv, golden, np.random.default_rng(rng.getrandbits(32))


async def _check_reads(drv, golden, slot, label):
    kept = golden.table[slot].kept
    n = golden.table[slot].n
    for op, want in ((ActOp.READ_ROWS, golden.read_rows(slot)),
                     (ActOp.READ_COLS, golden.read_cols(slot))):
        result, got, lasts = await drv.read(slot, op, n_hint=3 * n)
        assert result["error"] == 0, f"{label} {op.name}: error"
        assert got == want, f"{label} {op.name}: elements differ"
        assert lasts == [0] * (len(got) - 1) + [1] * bool(got), f"{label} {op.name}: last flags"
        assert result["kept"] == kept and result["n"] == n
    result, got, lasts = await drv.read(slot, ActOp.READ_DENSE, n_hint=n)
    dense = golden.read_dense(slot)
    want = [(r, c, int(dense[r, c])) for r in range(dense.shape[0]) for c in range(dense.shape[1])]
    assert got == want, f"{label} READ_DENSE differs"
    assert lasts[-1] == 1 and sum(lasts) == 1


def _tensor(np_rng, width, max_rows, max_cols, density=None):
    rows = int(np_rng.integers(1, max_rows + 1))
    cols = int(np_rng.integers(1, max_cols + 1))
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    x = np_rng.choice([lo, hi, 0, 1, -1, int(np_rng.integers(lo, hi + 1))], size=(rows, cols)) \
        if np_rng.random() < 0.3 else np_rng.integers(lo, hi + 1, size=(rows, cols))
    d = float(np_rng.choice([0.0, 0.1, 0.5, 0.9, 1.0])) if density is None else density
    return x, topk.topk_mask(x, d)


@cocotb.test()
async def write_then_read_all_orders(dut):
    params, drv, golden, np_rng = await _setup(dut, "basic")
    p = params["buffer"]
    for slot, density in enumerate([0.0, 0.2, 1.0]):
        x, mask = _tensor(np_rng, p["width"], p["max_rows"], p["max_cols"], density)
        result = await drv.write(slot, x, mask)
        assert result["error"] == 0, f"write {slot} refused"
        golden.write(slot, x, mask)
        assert result["stored_bits"] == golden.stored_bits(slot)
        await _check_reads(drv, golden, slot, f"slot {slot} d={density}")
    # Interleaved: every stored tensor still reads back after the others were written.
    for slot in range(3):
        await _check_reads(drv, golden, slot, f"again slot {slot}")


@cocotb.test()
async def one_row_and_one_column(dut):
    """Edge shapes of the walks: a column read of one row revisits that row's cursor every
    element, a one-column tensor wraps at every row."""
    params, drv, golden, np_rng = await _setup(dut, "edges")
    p = params["buffer"]
    lo, hi = -(1 << (p["width"] - 1)), (1 << (p["width"] - 1)) - 1
    shapes = [(1, p["max_cols"]), (p["max_rows"], 1), (1, 1), (2, p["max_cols"])]
    for rows, cols in shapes:
        x = np_rng.integers(lo, hi + 1, size=(rows, cols))
        x[0, 0] = lo
        for density in (0.5, 1.0):
            mask = topk.topk_mask(x, density)
            assert (await drv.write(0, x, mask))["error"] == 0
            golden.write(0, x, mask)
            await _check_reads(drv, golden, 0, f"{rows}x{cols} d={density}")
            assert (await drv.free(0))["error"] == 0
            golden.free(0)


@cocotb.test()
async def random_operations(dut):
    """Writes, reads and frees in random order, including writes that do not fit."""
    params, drv, golden, np_rng = await _setup(dut, "random")
    p = params["buffer"]
    lanes = p["lanes"]
    used_words = {}  # slot -> (bitmap words, value words), the hardware's word-aligned sizes
    bitmap_top = value_top = 0
    order = []
    for case in range(params["cases"]):
        action = np_rng.choice(["write", "write", "read", "free"])
        live = [s for s in order if s not in golden.freed]
        if action == "write":
            free_slots = [s for s in range(p["max_tensors"]) if s not in golden.table]
            slot = int(np_rng.choice(free_slots)) if free_slots else 0
            x, mask = _tensor(np_rng, p["width"], p["max_rows"], p["max_cols"])
            words = (-(-x.size // p["word_bits"]), -(-int(mask.sum()) // lanes))
            fits = (slot not in golden.table
                    and bitmap_top + words[0] <= drv.model.bitmap_words
                    and value_top + words[1] <= drv.model.value_words)
            result = await drv.write(slot, x, mask)
            assert result["error"] == (not fits), f"case {case}: write error {result['error']}"
            if fits:
                golden.write(slot, x, mask)
                used_words[slot] = words
                bitmap_top += words[0]
                value_top += words[1]
                order.append(slot)
        elif action == "read" and live:
            slot = int(np_rng.choice(live))
            await _check_reads(drv, golden, slot, f"case {case} slot {slot}")
        elif action == "free" and live:
            slot = int(np_rng.choice(live))
            result = await drv.free(slot)
            assert result["error"] == 0
            golden.free(slot)
            while order and order[-1] not in golden.table:
                top = order.pop()
                bitmap_top -= used_words[top][0]
                value_top -= used_words[top][1]
        assert int(dut.bitmap_used.value) == bitmap_top * p["word_bits"], \
            f"case {case}: occupancy"
        assert int(dut.values_used.value) == value_top * lanes


@cocotb.test()
async def refusals_keep_contents(dut):
    params, drv, golden, np_rng = await _setup(dut, "refusals")
    p = params["buffer"]
    x, mask = _tensor(np_rng, p["width"], p["max_rows"], p["max_cols"], 0.5)
    assert (await drv.write(0, x, mask))["error"] == 0
    golden.write(0, x, mask)
    assert (await drv.write(0, x, mask))["error"] == 1, "a taken slot is not refused"
    short = x[:, :max(1, x.shape[1] - 1)]
    result = await drv.write(1, short, mask[:, :short.shape[1]], declared_shape=x.shape)
    assert result["error"] == 1, "a tensor shorter than declared is not refused"
    assert (await drv.free(3))["error"] == 1, "freeing an empty slot is not refused"
    result, _, _ = await drv.read(2, ActOp.READ_ROWS)
    assert result["error"] == 1, "reading an empty slot is not refused"
    # Fill the values: a dense tensor larger than the value capacity.
    big_rows = min(p["max_rows"], drv.model.value_words * p["lanes"] // p["max_cols"] + 1)
    big = np.ones((big_rows, p["max_cols"]), dtype=np.int64)
    if big.size > drv.model.value_words * p["lanes"] - golden.values_used:
        assert (await drv.write(1, big, np.ones(big.shape, bool)))["error"] == 1
    await _check_reads(drv, golden, 0, "after refusals")
