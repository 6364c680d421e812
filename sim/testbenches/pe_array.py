"""cocotb testbench of :class:`hw.pe_array.SparsePEArray` against ``golden/``, bit-exact.

Parameters (``SWAT_TB_PARAMS``): ``config`` (an :class:`golden.config.AccelConfig` dict) and
``cases`` (random jobs).
"""

import cocotb
import numpy as np

from golden import numerics, pe_array as golden_pe, topk
from golden.layers import SwatLinear
from hw.pe_array import PEMode

from ..drivers.pe_array import PEArrayDriver, dense_beats, expected_tiles, sparse_beats
from ..drivers.payload import pack
from .util import start_clock_and_reset, tb_params, tb_rng


async def _setup(dut, name, stall=0.3):
    params = tb_params()
    rng = tb_rng(name)
    await start_clock_and_reset(dut)
    drv = PEArrayDriver(dut, params["config"], rng, stall=stall)
    return params, drv, np.random.default_rng(rng.getrandbits(32))


async def _check(drv, label, mode, s, mask, d, *, nm=None, order=None):
    """Run one job and compare everything it returns with golden."""
    s = np.asarray(s, dtype=np.int64)
    mask = np.ones(s.shape, bool) if mask is None else np.asarray(mask, bool)
    job = await drv.run(mode, s, mask, d, nm=nm, order=order)
    return _verify(drv, label, job, s, mask, d)


def _verify(drv, label, job, s, mask, d):
    """Compare a job's results and counters with golden."""
    cocotb.log.info(f"{label}: {len(job.tiles)} results, done {job.done}")
    assert job.done["error"] == {k: 0 for k in job.done["error"]}, \
        f"{label}: error flags {job.done['error']}"
    want = expected_tiles(s, mask, d, drv.cols, job.order)
    missing = sorted(set(want) - set(job.tiles))
    assert not missing, f"{label}: results {missing[:5]} missing"
    for key, values in want.items():
        assert job.tiles[key] == values, f"{label}: result {key} is {job.tiles[key]}, not {values}"
    entries = sum(len(r) for r in job.rows)
    work = sum(golden_pe.row_cost(len(r)) for r in job.rows) * job.n_tiles
    cols = min(drv.cols, np.asarray(d).shape[1])
    assert job.done["busy"] == work, f"{label}: busy {job.done['busy']}, not {work}"
    assert job.done["macs"] == entries * cols * job.n_tiles, f"{label}: macs"
    assert job.done["cycles"] >= -(-work // drv.model.rows), f"{label}: cycles below the ideal"
    return job


def _operand(np_rng, width, shape, kind="random"):
    lo, hi = numerics.operand_range(width)
    if kind == "extreme":
        return np_rng.choice([lo, hi, lo, 0, 1, -1], size=shape).astype(np.int64)
    return np_rng.integers(lo, hi + 1, size=shape).astype(np.int64)


def _random_job(np_rng, cfg):
    """``(mode, s, mask, d, nm, order)`` of a random job: mode, shape, density, row order."""
    rows = int(np_rng.integers(1, 3 * cfg.pe_rows + 2))
    depth = int(np_rng.integers(1, cfg.tile_depth + 1))
    n = int(np_rng.integers(1, 3 * cfg.pe_cols + 1))
    kind = "extreme" if np_rng.random() < 0.3 else "random"
    s = _operand(np_rng, cfg.width, (rows, depth), kind)
    d = _operand(np_rng, cfg.width, (depth, n), kind)
    mode = PEMode(int(np_rng.choice([0, 1, 1, 2])))
    order = nm = mask = None
    if mode == PEMode.SPARSE:
        density = float(np_rng.choice([0.0, 0.05, 0.2, 0.5, 0.9, 1.0]))
        mask = topk.topk_mask(s, density)
        if np_rng.random() < 0.5:
            order = golden_pe.longest_first(mask.sum(axis=1))
    elif mode == PEMode.NM:
        m = int(np_rng.integers(1, cfg.nm_max_m + 1))
        nm = (int(np_rng.integers(1, m + 1)), m)
        mask = topk.nm_mask(s, *nm)
    mask = np.ones(s.shape, bool) if mask is None else mask
    return mode, s, mask, d, nm, order


@cocotb.test()
async def edge_cases(dut):
    params, drv, np_rng = await _setup(dut, "edges")
    cfg = drv.config
    R, C, K, w = cfg.pe_rows, cfg.pe_cols, cfg.tile_depth, cfg.width
    lo, _ = numerics.operand_range(w)
    rows, n = R + 1, C + 1  # not multiples of the array
    d = _operand(np_rng, w, (K, n), "extreme")
    # k = 0: every row is empty, every result zero.
    s = _operand(np_rng, w, (rows, K))
    await _check(drv, "k=0", PEMode.SPARSE, s, topk.topk_mask(s, 0.0), d)
    # k = n, and the dense mode: every element, longest reduction, most negative operands.
    s = np.full((rows, K), lo, dtype=np.int64)
    dm = np.full((K, n), lo, dtype=np.int64)
    await _check(drv, "k=n most negative", PEMode.SPARSE, s, topk.topk_mask(s, 1.0), dm)
    await _check(drv, "dense most negative", PEMode.DENSE, s, None, dm)
    # Ties at the threshold are all kept; all-zero rows and columns.
    s = np.zeros((rows, K), dtype=np.int64)
    s[::2, ::3] = 5
    s[1, 0] = -5
    d0 = d.copy()
    d0[:, 0] = 0
    d0[K // 2, :] = 0
    await _check(drv, "ties", PEMode.SPARSE, s, topk.topk_mask(s, 0.01), d0)
    await _check(drv, "zero rows dense", PEMode.DENSE, s, None, d0)
    # A single non-zero in the whole operand, at the last index.
    s = np.zeros((rows, K), dtype=np.int64)
    s[rows - 1, K - 1] = lo
    await _check(drv, "single", PEMode.SPARSE, s, s != 0, d)
    # One row, one column.
    await _check(drv, "1x1", PEMode.SPARSE, s[-1:], s[-1:] != 0, d[:, :1])


@cocotb.test()
async def random_jobs(dut):
    """Random modes, shapes, densities (golden's per-tensor top-K) and row orders."""
    params, drv, np_rng = await _setup(dut, "random")
    cfg = drv.config
    for case in range(params["cases"]):
        mode, s, mask, d, nm, order = _random_job(np_rng, cfg)
        await _check(drv, f"case {case} {mode.name} {s.shape[0]}x{s.shape[1]}x{d.shape[1]}",
                     mode, s, mask, d, nm=nm, order=order)


@cocotb.test()
async def overlapping_jobs(dut):
    """Commands sent back to back: the next job's rows load while this one computes. Random
    jobs, with faulty ones among them (a malformed command, an index out of range, a row too
    many), each answered in order with its own results and flags."""
    params, drv, np_rng = await _setup(dut, "overlap")
    cfg = drv.config
    model = drv.model
    L = model.lanes
    for batch in range(max(1, params["cases"] // 10)):
        jobs, checks, timeout = [], [], 0
        for j in range(int(np_rng.integers(3, 9))):
            fault = np_rng.choice(["", "", "", "command", "index", "rows"])
            mode, s, mask, d, nm, order = _random_job(np_rng, cfg)
            payloads, job, cycles = drv.job(mode, s, mask, d, nm=nm, order=order)
            command, sparse, dense = payloads
            depth, cols = s.shape[1], min(drv.cols, d.shape[1])
            index_top = (1 << model.sparse_layout["index"].shape.elem_shape.width) - 1
            if fault == "index" and index_top < depth:
                fault = "rows"  # no index field is out of range
            if fault == "command":
                payloads = (drv.command(PEMode.SPARSE, 0, depth, cols, job.n_tiles), [], [])
            elif fault == "index":  # on the first beat: the job computes nothing
                bad = [[(index_top, 1)]] + [[] for _ in range(s.shape[0] - 1)]
                payloads = (drv.command(PEMode.SPARSE, s.shape[0], depth, cols, job.n_tiles),
                            [pack(model.sparse_layout, b) for b in sparse_beats(bad, L)], dense)
            elif fault == "rows":  # a row short: seen at the last beat, no result is the last
                payloads = (drv.command(mode, s.shape[0] + 1, depth, cols, job.n_tiles, nm
                                        or (0, 0)), sparse, dense)
            jobs.append(payloads)
            checks.append((fault, job, mode, s, mask, d))
            timeout += cycles
        replies = await drv.run_raw_many(jobs, timeout=timeout)
        for j, ((fault, job, mode, s, mask, d), (results, done)) in enumerate(
                zip(checks, replies)):
            label = f"batch {batch} job {j} {mode.name} {fault or 'good'}"
            if fault:
                assert not any(r["last"] for r in results), f"{label}: a failed job ended"
                assert done["error"][fault] == 1, f"{label}: not flagged ({done['error']})"
            else:
                _verify(drv, label, drv.collect(job, results, done), s, mask, d)
        # The array took commands while the job before was still computing.
        taken = drv.cmd.cycles[-len(jobs):]
        dones = drv.done.cycles[-len(jobs):]
        overlapped = sum(t < d for t, d in zip(taken[1:], dones[:-1]))
        cocotb.log.info(f"batch {batch}: {overlapped} of {len(jobs) - 1} commands taken "
                        "before the job ahead was done")
        assert overlapped, f"batch {batch}: no command overlapped the job ahead"


@cocotb.test()
async def swat_three_products(dut):
    """A SWAT linear layer's forward, input-gradient and weight-gradient products, taken from
    golden's layer (its sparse operand is always the right-hand one) and run transposed:
    ``(a @ b).T = b.T @ a.T`` with ``b.T`` the compressed rows."""
    params, drv, np_rng = await _setup(dut, "swat")
    cfg = drv.config
    products = []

    def record(a, b):
        products.append((np.asarray(a), np.asarray(b)))
        return np.asarray(a) @ np.asarray(b)

    batch, fan_in, fan_out = cfg.pe_cols + 2, min(cfg.tile_depth, 2 * cfg.pe_rows + 3), \
        cfg.pe_rows + 3
    w = _operand(np_rng, cfg.width, (fan_out, fan_in)).astype(float)
    layer = SwatLinear(w, density=0.3, gemm=record, needs_input_grad=True)
    x = _operand(np_rng, cfg.width, (batch, fan_in)).astype(float)
    layer.forward(x)
    layer.backward(_operand(np_rng, cfg.width, (batch, fan_out)).astype(float))
    assert len(products) == 3
    for name, (a, b) in zip(["forward", "weight_grad", "input_grad"], products):
        s = b.T.astype(np.int64)
        d = a.T.astype(np.int64)
        if d.shape[0] > cfg.tile_depth:
            continue  # the weight gradient reduces over the batch: fits here by construction
        job = await _check(drv, name, PEMode.SPARSE, s, s != 0, d)
        want = numerics.gemm(a.astype(np.int64), b.astype(np.int64), cfg.width).T
        got = np.array([job.tiles[(i, t)][:min(drv.cols, d.shape[1] - t * drv.cols)]
                        for i in range(s.shape[0]) for t in range(-(-d.shape[1] // drv.cols))],
                       dtype=object)
        flat = np.concatenate([np.asarray(g, dtype=np.int64) for g in got]).reshape(
            s.shape[0], -1)
        assert (flat == want).all(), f"{name}: differs from golden's product"


@cocotb.test()
async def faults_are_flagged(dut):
    params, drv, np_rng = await _setup(dut, "faults")
    cfg = drv.config
    model = drv.model
    L = model.lanes
    s = _operand(np_rng, cfg.width, (3, 4))
    d = _operand(np_rng, cfg.width, (4, 2))
    rows = [[(0, 1)], [(1, 2), (3, 3)], []]
    good_sparse = [pack(model.sparse_layout, b) for b in sparse_beats(rows, L)]
    good_dense = [pack(model.dense_layout, b) for b in dense_beats(d, drv.cols, model.dense_lanes)]

    async def expect(label, flag, command, sparse, dense):
        results, done = await drv.run_raw(command, sparse, dense, timeout=5000)
        assert not any(r["last"] for r in results), f"{label}: a failed job ended its results"
        assert done["error"][flag] == 1, f"{label}: {flag} not flagged ({done['error']})"

    cmd = drv.command
    await expect("rows 0", "command", cmd(PEMode.SPARSE, 0, 4, 2, 1), [], [])
    await expect("n > m", "command", cmd(PEMode.NM, 3, 4, 2, 1, (3, 2)), [], [])
    await expect("depth 0", "command", cmd(PEMode.SPARSE, 3, 0, 2, 1), [], [])
    await expect("too few rows", "rows", cmd(PEMode.SPARSE, 4, 4, 2, 1), good_sparse, good_dense)
    await expect("too many rows", "rows", cmd(PEMode.SPARSE, 2, 4, 2, 1), good_sparse, good_dense)
    bad_index = [pack(model.sparse_layout, b) for b in sparse_beats([[(4, 1)], [], []], L)]
    await expect("index", "index", cmd(PEMode.SPARSE, 3, 4, 2, 1), bad_index, good_dense)
    short_dense = [pack(model.sparse_layout, b)
                   for b in sparse_beats([[(0, 1)] * 3, [(0, 1)] * 4, [(0, 1)] * 4], L)]
    await expect("dense row length", "rows", cmd(PEMode.DENSE, 3, 4, 2, 1), short_dense,
                 good_dense)
    wrong_last = [pack(model.dense_layout, dict(b, last=0))
                  for b in dense_beats(d, drv.cols, model.dense_lanes)]
    _, done = await drv.run_raw(cmd(PEMode.SPARSE, 3, 4, 2, 1), good_sparse, wrong_last,
                                timeout=5000)
    assert done["error"]["dense_last"] == 1, "a missing dense last is not flagged"
    # A tile too large for the banks: every row dense, more entries than all banks hold.
    capacity = model.bank_words * L * model.rows
    big_rows = -(-(capacity + 1) // cfg.tile_depth)
    if big_rows <= model.max_rows:
        big = [[(k, 1) for k in range(cfg.tile_depth)] for _ in range(big_rows)]
        dd = dense_beats(np.ones((cfg.tile_depth, 1), dtype=np.int64), drv.cols, model.dense_lanes)
        await expect("bank full", "bank_full",
                     cmd(PEMode.SPARSE, big_rows, cfg.tile_depth, 1, 1),
                     [pack(model.sparse_layout, b) for b in sparse_beats(big, L)],
                     [pack(model.dense_layout, b) for b in dd])
    # The array still works after every fault.
    await _check(drv, "after faults", PEMode.SPARSE, s, s != 0, d)
