"""cocotb testbench of :class:`hw.act_buffer.ActivationBuffer` against
:class:`golden.act_buffer.ActivationBuffer`.

Parameters (``SWAT_TB_PARAMS``): ``buffer`` (see :func:`sim.drivers.act_buffer.buffer_params`),
``cases`` (random operations) and ``suite``: ``"matrix"`` (the default: writes, row, column and
dense reads), ``"conv"`` (feature maps with a directory and conv reads, interleaved with row
reads) or ``"no_conv"`` (a buffer built without the conv read: directory writes and conv reads
refused); a test of another suite passes at once.
"""

import cocotb
from amaranth.hdl import Shape
import numpy as np

from golden import topk
from golden.act_buffer import ActivationBuffer as GoldenBuffer
from hw.act_buffer import ActOp

from ..drivers.act_buffer import ActivationBufferDriver
from .util import start_clock_and_reset, tb_params, tb_rng


async def _setup(dut, name, suite="matrix", stall=0.3):
    params = tb_params()
    if params.get("suite", "matrix") != suite:
        dut._log.info(f"{name}: not in suite {params.get('suite', 'matrix')}")
        return None
    rng = tb_rng(name)
    await start_clock_and_reset(dut)
    p = params["buffer"]
    drv = ActivationBufferDriver(dut, p, rng, stall=stall)
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
    setup = await _setup(dut, "basic")
    if setup is None:
        return
    params, drv, golden, np_rng = setup
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
    setup = await _setup(dut, "edges")
    if setup is None:
        return
    params, drv, golden, np_rng = setup
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
    setup = await _setup(dut, "random")
    if setup is None:
        return
    params, drv, golden, np_rng = setup
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
    setup = await _setup(dut, "refusals")
    if setup is None:
        return
    params, drv, golden, np_rng = setup
    p = params["buffer"]
    x, mask = _tensor(np_rng, p["width"], p["max_rows"], p["max_cols"], 0.5)
    assert (await drv.write(0, x, mask))["error"] == 0
    golden.write(0, x, mask)
    assert (await drv.write(0, x, mask))["error"] == 1, "a taken slot is not refused"
    short = x[:, :max(1, x.shape[1] - 1)]
    result = await drv.write(1, short, mask[:, :short.shape[1]], declared_shape=x.shape)
    assert result["error"] == 1, "a tensor shorter than declared is not refused"
    assert (await drv.free(3))["error"] == 1, "freeing an empty slot is not refused"
    # A slot code past the last slot (the field has more codes than slots) names no tensor,
    # not the slot addressed last.
    bad = p["max_tensors"]
    if bad < 1 << Shape.cast(drv.model.cmd_layout["slot"].shape).width:
        assert (await drv.write(bad, x, mask))["error"] == 1, "a slot past the last is not refused"
        result, _, _ = await drv.read(bad, ActOp.READ_ROWS)
        assert result["error"] == 1, "reading a slot past the last is not refused"
        assert (await drv.free(bad))["error"] == 1, "freeing a slot past the last is not refused"
    result, _, _ = await drv.read(2, ActOp.READ_ROWS)
    assert result["error"] == 1, "reading an empty slot is not refused"
    # Fill the values: a dense tensor larger than the value capacity.
    big_rows = min(p["max_rows"], drv.model.value_words * p["lanes"] // p["max_cols"] + 1)
    big = np.ones((big_rows, p["max_cols"]), dtype=np.int64)
    if big.size > drv.model.value_words * p["lanes"] - golden.values_used:
        assert (await drv.write(1, big, np.ones(big.shape, bool)))["error"] == 1
    await _check_reads(drv, golden, 0, "after refusals")


# -- Conv reads ------------------------------------------------------------------------------

def _golden_conv_buffer(drv, p):
    g = drv.model.geometry
    return GoldenBuffer(width=p["width"], bitmap_capacity=g.bitmap_words * p["word_bits"],
                        value_capacity=g.value_words * p["lanes"],
                        max_tensors=p["max_tensors"], word_bits=p["word_bits"],
                        count_bits=g.cursor_shape.width,
                        directory_capacity=g.directory_words, max_rows=p["max_rows"],
                        max_cols=p["max_cols"], conv_read=p.get("conv_read", True))


def _maps(np_rng, width, shape, density):
    """``X~`` of ``shape`` (N, C, H, W) and its keep mask, with kept zeros and extreme values."""
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    x = np_rng.integers(lo, hi + 1, size=shape)
    x[np_rng.random(shape) < 0.2] = 0
    x.flat[0] = lo
    return x, np_rng.random(shape) < density


def _stored(x, max_rows, max_cols):
    """``X~``'s planes in (channel, image) order, as the matrix written: rows of ``W``, or
    of the fewest elements that fit when that is too many rows."""
    n = x.size
    flat = x.transpose(1, 0, 2, 3).reshape(-1)
    for cols in [x.shape[3]] + list(range(1, max_cols + 1)):
        if cols <= max_cols and n % cols == 0 and n // cols <= max_rows:
            return flat.reshape(n // cols, cols)
    return None


def _conv_args(shape, kernel, stride, padding):
    from golden.layers import conv_out_size

    n, c, h, w = shape
    out_h, out_w = (conv_out_size(h, kernel, stride, padding),
                    conv_out_size(w, kernel, stride, padding))
    return dict(images=n, height=h, width=w, out_h=out_h, out_w=out_w, kernel=kernel,
                stride=stride, padding=padding, first_channel=0, channels=c, first_out_row=0,
                out_rows=n * out_h)


def _chunks(args, max_rows, max_cols, np_rng):
    """The reads covering a layer's rows within the read's limits: channel groups of at most
    ``max_rows`` features, output row groups of at most ``max_cols`` columns (random sizes)."""
    kk = args["kernel"] ** 2
    most_c = max(1, max_rows // kk)
    most_r = max(1, max_cols // args["out_w"])
    c = 0
    while c < args["channels"]:
        cc = int(np_rng.integers(1, min(most_c, args["channels"] - c) + 1))
        r = 0
        while r < args["out_rows"]:
            rc = int(np_rng.integers(1, min(most_r, args["out_rows"] - r) + 1))
            yield {**args, "first_channel": c, "channels": cc, "first_out_row": r,
                   "out_rows": rc}
            r += rc
        c += cc


async def _check_conv(drv, golden, slot, conv, label):
    want = golden.read_conv(slot, **conv)
    result, got, lasts = await drv.read_conv(slot, conv, n_hint=len(want) + 8 * conv["channels"]
                                             * conv["kernel"] ** 2 * conv["out_rows"])
    assert result["error"] == 0, f"{label}: refused {conv}"
    assert got == want, f"{label}: elements differ for {conv}"
    assert not any(lasts), f"{label}: last set"
    d = golden.table[slot]
    assert (result["n"], result["kept"]) == (d.n, d.kept)
    assert result["stored_bits"] == golden.stored_bits(slot)
    return len(want)


# (N, C, H, W): one pixel, one channel, maps smaller than a 7x7 kernel, odd sizes, a row wider
# than a word.
CONV_SHAPES = [(1, 1, 1, 1), (1, 1, 2, 2), (2, 1, 3, 3), (1, 2, 5, 7), (2, 2, 4, 4),
               (1, 1, 9, 9), (2, 3, 6, 5), (1, 1, 3, 20), (3, 1, 5, 3)]
CONV_KERNELS = [(1, 1, 0), (3, 1, 1), (3, 2, 1), (3, 1, 0), (7, 2, 3), (7, 1, 3), (3, 2, 2),
                (1, 2, 0), (5, 1, 2), (3, 1, 2)]


async def _write_maps(drv, golden, p, x, mask, shape):
    """Write maps ``x`` (kept where ``mask``) with a directory to slot 0, and to ``golden``."""
    sx, smask = _stored(x, p["max_rows"], p["max_cols"]), _stored(mask, p["max_rows"],
                                                                      p["max_cols"])
    assert (await drv.write(0, sx, smask, directory=True))["error"] == 0, shape
    golden.write(0, sx, smask, directory=True)


@cocotb.test()
async def conv_reads_against_golden(dut):
    """Feature maps written with a directory, read as im2col rows in every geometry that fits
    them, split into reads of the limits' size, between row reads of the same tensor."""
    setup = await _setup(dut, "conv", "conv")
    if setup is None:
        return
    params, drv, _, np_rng = setup
    p = params["buffer"]
    golden = _golden_conv_buffer(drv, p)
    shapes = CONV_SHAPES[:params.get("conv_shapes", len(CONV_SHAPES))]
    elements = reads_run = 0
    for case, shape in enumerate(shapes):
        density = float(np_rng.choice([0.0, 0.2, 0.5, 1.0])) if case > 1 else [0.0, 1.0][case]
        await _write_maps(drv, golden, p, *_maps(np_rng, p["width"], shape, density), shape)
        for kernel, stride, padding in CONV_KERNELS:
            h, w = shape[2:]
            if h + 2 * padding < kernel or w + 2 * padding < kernel:
                continue
            args = _conv_args(shape, kernel, stride, padding)
            reads = list(_chunks(args, p["max_rows"], p["max_cols"], np_rng))
            for conv in reads[:3]:
                elements += await _check_conv(drv, golden, 0, conv, f"{shape} d={density}")
                reads_run += 1
        await _check_reads(drv, golden, 0, f"{shape} after conv reads")
        assert (await drv.free(0))["error"] == 0
        golden.free(0)
    dut._log.info(f"{reads_run} conv reads, {elements} elements")
    assert elements > 100


# Maps for the spans of "same" stride-1 convs (a feature's rows of an image in one segment):
# one pixel, rows shorter than a word (their columns filtered by a periodic pattern), rows as
# long as a 8-bit word, and rows longer than a 32-bit word (two rows meet in a word).
SPAN_SHAPES = [(2, 2, 1, 1), (2, 2, 2, 3), (2, 3, 4, 4), (1, 2, 5, 7), (2, 2, 8, 8),
               (1, 2, 3, 33), (1, 2, 3, 40)]


def _span_reads(args, max_rows, max_cols, np_rng, count):
    """Reads of a layer within the limits: from its first row, then random channel groups
    (some after the first channel) and output-row ranges (starting and ending inside images)."""
    kk = args["kernel"] ** 2
    most_c = max_rows // kk
    most_r = max_cols // args["out_w"]
    total = args["images"] * args["out_h"]
    reads = [{**args, "channels": min(args["channels"], most_c),
              "out_rows": min(total, most_r)}]
    for _ in range(count):
        c0 = int(np_rng.integers(0, args["channels"]))
        r0 = int(np_rng.integers(0, total))
        reads.append({**args, "first_channel": c0,
                      "channels": int(np_rng.integers(1, min(most_c, args["channels"] - c0) + 1)),
                      "first_out_row": r0,
                      "out_rows": int(np_rng.integers(1, min(most_r, total - r0) + 1))})
    return reads


@cocotb.test()
async def conv_spans_against_golden(dut):
    """Same stride-1 convs (kernel 1 padding 0, kernel 3 padding 1), whose reads take a
    segment per image and filter its columns, on maps from 1x1 to rows wider than a word, at
    densities 0, 1 and sparse, over whole reads and partial channel and output-row ranges."""
    setup = await _setup(dut, "conv_spans", "conv")
    if setup is None:
        return
    params, drv, _, np_rng = setup
    p = params["buffer"]
    golden = _golden_conv_buffer(drv, p)
    elements = reads_run = 0
    for shape in SPAN_SHAPES:
        for density in (0.0, 1.0, 0.3):
            await _write_maps(drv, golden, p, *_maps(np_rng, p["width"], shape, density),
                              shape)
            for kernel, padding in ((1, 0), (3, 1)):
                args = _conv_args(shape, kernel, 1, padding)
                if kernel ** 2 > p["max_rows"] or args["out_w"] > p["max_cols"]:
                    continue
                for conv in _span_reads(args, p["max_rows"], p["max_cols"], np_rng, 3):
                    elements += await _check_conv(drv, golden, 0, conv,
                                                  f"{shape} d={density}")
                    reads_run += 1
            assert (await drv.free(0))["error"] == 0
            golden.free(0)
    dut._log.info(f"{reads_run} span reads, {elements} elements")
    assert elements > 100


@cocotb.test()
async def conv_reads_are_refused(dut):
    """Bad geometries and slots without a directory: ``error``, no beats, contents intact."""
    from golden.act_buffer import ReadRefused

    setup = await _setup(dut, "conv_refusals", "conv")
    if setup is None:
        return
    params, drv, _, np_rng = setup
    p = params["buffer"]
    golden = _golden_conv_buffer(drv, p)
    shape = (2, 2, 4, 4)
    x, mask = _maps(np_rng, p["width"], shape, 0.5)
    sx, smask = _stored(x, p["max_rows"], p["max_cols"]), _stored(mask, p["max_rows"],
                                                                      p["max_cols"])
    assert (await drv.write(0, sx, smask, directory=True))["error"] == 0
    golden.write(0, sx, smask, directory=True)
    assert (await drv.write(1, sx, smask))["error"] == 0
    golden.write(1, sx, smask)
    base = {**_conv_args(shape, 3, 1, 1), "channels": 1, "out_rows": 2}
    bad = [(1, {}), (2, {}), (0, {"kernel": 0}), (0, {"stride": 0}), (0, {"stride": 3}),
           (0, {"padding": 3}), (0, {"channels": 0}), (0, {"out_rows": 0}),
           (0, {"out_w": 5}), (0, {"out_h": 3}), (0, {"first_channel": 2}),
           (0, {"first_out_row": 7}), (0, {"images": 0}), (0, {"height": 9, "out_h": 9, "channels": 1}),
           (0, {"channels": 2, "first_channel": 1}),
           (0, {"kernel": 7, "padding": 3, "channels": 2})]
    for slot, change in bad:
        conv = {**base, **change}
        try:
            golden.read_conv(slot, **conv)
            raise AssertionError(f"golden accepts {change}")
        except ReadRefused:
            pass
        result, got, _ = await drv.read_conv(slot, conv)
        assert result["error"] == 1 and got == [], f"slot {slot} {change} not refused"
    await _check_conv(drv, golden, 0, base, "after refusals")
    await _check_reads(drv, golden, 0, "after refusals")


@cocotb.test()
async def without_conv_read(dut):
    """A buffer built without the conv read: a write with a directory is refused (its stream
    consumed, nothing stored), a conv read is refused with no beats, and tensors written
    without a directory read back as golden's, before and after the refusals."""
    from golden.act_buffer import BufferFull, ReadRefused

    setup = await _setup(dut, "no_conv", "no_conv")
    if setup is None:
        return
    params, drv, _, np_rng = setup
    p = params["buffer"]
    golden = _golden_conv_buffer(drv, p)
    assert not golden.conv_read and drv.model.geometry.directory_words == 0
    shape = (2, 2, 4, 4)
    x, mask = _maps(np_rng, p["width"], shape, 0.5)
    sx, smask = _stored(x, p["max_rows"], p["max_cols"]), _stored(mask, p["max_rows"],
                                                                      p["max_cols"])
    conv = {**_conv_args(shape, 3, 1, 1), "channels": 1, "out_rows": 2}
    for slot in (0, 1):  # into an empty buffer, then above a stored tensor
        result = await drv.write(slot, sx, smask, directory=True)
        assert result["error"] == 1, f"slot {slot}: a write with a directory is not refused"
        try:
            golden.write(slot, sx, smask, directory=True)
            raise AssertionError("golden accepts a directory")
        except BufferFull:
            pass
        assert int(dut.bitmap_used.value) == golden.bitmap_used and slot not in golden.table
        # Its stream was consumed: a plain write of the same tensor follows.
        result = await drv.write(slot, sx, smask)
        assert result["error"] == 0, f"slot {slot}: the plain write after it is refused"
        golden.write(slot, sx, smask)
        assert result["stored_bits"] == golden.stored_bits(slot)
        result, got, _ = await drv.read_conv(slot, conv)
        assert result["error"] == 1 and got == [], f"slot {slot}: a conv read is not refused"
        try:
            golden.read_conv(slot, **conv)
            raise AssertionError("golden reads a conv")
        except ReadRefused:
            pass
        for s in golden.stack:
            await _check_reads(drv, golden, s, f"slot {s} after refusals")
    x, mask = _tensor(np_rng, p["width"], p["max_rows"], p["max_cols"], 0.3)
    assert (await drv.free(1))["error"] == 0
    golden.free(1)
    assert (await drv.write(1, x, mask))["error"] == 0
    golden.write(1, x, mask)
    await _check_reads(drv, golden, 1, "a matrix after the refusals")
    await _check_reads(drv, golden, 0, "the first tensor at the end")


@cocotb.test()
async def directory_writes_and_frees(dut):
    """Directory space is a third stack: plain writes take none of it, a write whose
    directory does not fit is refused, frees return it."""
    setup = await _setup(dut, "directory", "conv")
    if setup is None:
        return
    params, drv, _, np_rng = setup
    p = params["buffer"]
    golden = _golden_conv_buffer(drv, p)
    g = drv.model.geometry
    entries = {}
    for case in range(params.get("cases", 20)):
        live = [s for s in golden.stack if s not in golden.freed]
        free_slots = [s for s in range(p["max_tensors"]) if s not in golden.table]
        if free_slots and (not live or np_rng.random() < 0.6):
            slot = int(np_rng.choice(free_slots))
            shape = (int(np_rng.integers(1, 3)), int(np_rng.integers(1, 3)),
                     int(np_rng.integers(1, 6)), int(np_rng.integers(1, 6)))
            x, mask = _maps(np_rng, p["width"], shape, float(np_rng.choice([0.0, 0.3, 1.0])))
            sx = _stored(x, p["max_rows"], p["max_cols"])
            smask = _stored(mask, p["max_rows"], p["max_cols"])
            with_dir = bool(np_rng.random() < 0.7)
            words = -(-x.size // p["word_bits"])
            need = (words, -(-int(mask.sum()) // p["lanes"]), -(-words // 2) * with_dir)
            used = [sum(entries[s][i] for s in golden.stack) for i in range(3)]
            fits = (used[0] + need[0] <= g.bitmap_words and used[1] + need[1] <= g.value_words
                    and used[2] + need[2] <= g.directory_words)
            result = await drv.write(slot, sx, smask, directory=with_dir)
            assert result["error"] == (not fits), f"case {case}: write error"
            if fits:
                golden.write(slot, sx, smask, directory=with_dir)
                entries[slot] = need
                assert result["stored_bits"] == golden.stored_bits(slot)
                if with_dir:
                    conv = _conv_args(shape, 3, 1, 1)
                    conv["channels"] = min(shape[1], p["max_rows"] // 9)
                    conv["out_rows"] = min(conv["out_rows"], p["max_cols"] // conv["out_w"])
                    await _check_conv(drv, golden, slot, conv, f"case {case}")
        elif live:
            slot = int(np_rng.choice(live))
            result = await drv.free(slot)
            assert result["error"] == 0 and result["stored_bits"] == golden.stored_bits(slot)
            golden.free(slot)
        assert int(dut.bitmap_used.value) == sum(entries[s][0] for s in golden.stack) \
            * p["word_bits"], f"case {case}: occupancy"


@cocotb.test()
async def conv_read_cycles(dut):
    """Conv reads without stalls take the cycles :func:`golden.perf_model.act_conv_read`
    gives, within 2 % or 3 cycles, on random geometries and densities."""
    import types

    from golden import perf_model

    from ..drivers.streams import current_cycle

    setup = await _setup(dut, "conv_cycles", "conv", stall=0.0)
    if setup is None:
        return
    params, drv, _, np_rng = setup
    p = params["buffer"]
    golden = _golden_conv_buffer(drv, p)
    config = types.SimpleNamespace(act_scan_bits=p["word_bits"], buffer_lanes=p["lanes"],
                                   conv_read_words=p.get("conv_words", 1))
    shapes = [(2, 2, 8, 8), (1, 3, 5, 7), (2, 1, 12, 12), (4, 2, 4, 4), (1, 1, 1, 1),
              (1, 2, 3, 40)]
    worst = 0.0
    for shape in shapes:
        density = float(np_rng.choice([0.1, 0.3, 0.7, 1.0]))
        x, mask = _maps(np_rng, p["width"], shape, density)
        sx, smask = _stored(x, p["max_rows"], p["max_cols"]), _stored(mask, p["max_rows"],
                                                                          p["max_cols"])
        assert (await drv.write(0, sx, smask, directory=True))["error"] == 0
        golden.write(0, sx, smask, directory=True)
        for kernel, stride, padding in [(3, 1, 1), (3, 2, 1), (1, 1, 0), (7, 2, 3)]:
            if min(shape[2:]) + 2 * padding < kernel:
                continue
            args = _conv_args(shape, kernel, stride, padding)
            for conv in list(_chunks(args, p["max_rows"], p["max_cols"], np_rng))[:2]:
                want = golden.read_conv(0, **conv)
                sent = len(drv.cmd.cycles)
                result, got, _ = await drv.read_conv(0, conv, n_hint=len(want) + 400)
                assert result["error"] == 0 and got == want
                offset = current_cycle() - drv.result.cycle
                cycles = drv.result.cycles[-1] + offset - drv.cmd.cycles[sent]
                model = perf_model.act_conv_read(
                    config, mask, kernel=kernel, stride=stride, padding=padding,
                    first_channel=conv["first_channel"], channels=conv["channels"],
                    first_out_row=conv["first_out_row"], out_rows=conv["out_rows"])
                assert sum(step[1] for step in model) == len(want)
                predicted = perf_model.conv_read_result_cycle(model)
                dut._log.info(f"{shape} k{kernel} s{stride} p{padding} d={density} "
                              f"c{conv['first_channel']}+{conv['channels']} "
                              f"r{conv['first_out_row']}+{conv['out_rows']}: "
                              f"{len(want)} elements, {cycles} cycles, model {predicted}")
                worst = max(worst, abs(cycles - predicted) / cycles)
                assert abs(cycles - predicted) <= max(3, 0.02 * cycles), \
                    f"{conv}: {cycles} cycles, model {predicted}"
        assert (await drv.free(0))["error"] == 0
        golden.free(0)
    dut._log.info(f"worst model error {worst:.1%}")


@cocotb.test()
async def conv_read_rate(dut):
    """Whole-layer conv reads without stalls (parameter ``rate``: ``[N, C, H, W, kernel,
    stride, padding, density, most]`` each): cycles, row segments (one per feature and output
    row whose input row lies in the map) and words, against the model; at most ``most``
    cycles per row segment."""
    import types

    from golden import perf_model
    from golden.feature_maps import row_segments

    from ..drivers.streams import current_cycle

    setup = await _setup(dut, "conv_rate", "conv_rate", stall=0.0)
    if setup is None:
        return
    params, drv, _, np_rng = setup
    p = params["buffer"]
    golden = _golden_conv_buffer(drv, p)
    config = types.SimpleNamespace(act_scan_bits=p["word_bits"], buffer_lanes=p["lanes"],
                                   conv_read_words=p.get("conv_words", 1))
    for n, c, h, w, kernel, stride, padding, density, most in params["rate"]:
        shape = (n, c, h, w)
        x, mask = _maps(np_rng, p["width"], shape, density)
        sx, smask = _stored(x, p["max_rows"], p["max_cols"]), _stored(mask, p["max_rows"],
                                                                          p["max_cols"])
        assert (await drv.write(0, sx, smask, directory=True))["error"] == 0
        golden.write(0, sx, smask, directory=True)
        conv = _conv_args(shape, kernel, stride, padding)
        want = golden.read_conv(0, **conv)
        sent = len(drv.cmd.cycles)
        result, got, _ = await drv.read_conv(0, conv, n_hint=len(want) + 100 * n * c * h)
        assert result["error"] == 0 and got == want
        cycles = drv.result.cycles[-1] + current_cycle() - drv.result.cycle - drv.cmd.cycles[sent]
        segments = words = 0
        for feature in np.ndindex(c, kernel, kernel):
            for seg in row_segments(shape, feature, kernel, stride, padding):
                last = seg.start + (seg.count - 1) * seg.stride
                segments += 1
                words += last // p["word_bits"] - seg.start // p["word_bits"] + 1
        model = perf_model.conv_read_result_cycle(perf_model.act_conv_read(
            config, mask, kernel=kernel, stride=stride, padding=padding))
        dut._log.info(f"RATE {shape} k{kernel} s{stride} p{padding} d={density}: {len(want)} "
                      f"elements, {segments} row segments, {words} words, {cycles} cycles "
                      f"({cycles / segments:.2f} per segment, {cycles / words:.2f} per word, "
                      f"{len(want) / cycles:.2f} elements per cycle); model {model}")
        assert abs(cycles - model) <= max(3, 0.02 * cycles)
        assert cycles <= most * segments, f"{shape}: {cycles / segments:.2f} cycles a segment"
        assert (await drv.free(0))["error"] == 0
        golden.free(0)
