# amaranth: UnusedElaboratable=no
"""A cocotb driver for :class:`hw.pe_array.SparsePEArray`: operands in, results and counters out.

:func:`sparse_beats` and :func:`dense_beats` turn NumPy operands into the array's stream beats;
:class:`PEArrayDriver` sends a job through the five streams (with random stalls on every port),
collects its results and checks each (row, tile) arrives exactly once; :func:`expected_tiles`
says what ``golden/`` expects in the same form.
"""

import dataclasses

import numpy as np

from golden import pe_array as golden_pe
from golden.config import AccelConfig
from hw.layouts import dense_beats
from hw.pe_array import PEMode, SparsePEArray

from .payload import pack, unpack
from .streams import StreamSink, StreamSource

__all__ = ["build", "row_entries", "sparse_beats", "dense_beats", "expected_tiles",
           "PEArrayDriver", "JobResult"]


def build(config):
    """The array of an :class:`AccelConfig` (or its dict)."""
    if isinstance(config, dict):
        config = AccelConfig.from_dict(config)
    return SparsePEArray.from_config(config)


def row_entries(s, mask, mode, nm=None):
    """Each row's entries ``[(index field, value), ...]`` as ``mode`` sends them.

    ``SPARSE``: the kept non-zero elements with their column (a kept zero, which SWAT's ties at
    threshold 0 produce, adds nothing and is not sent). ``DENSE``: every element (index unused).
    ``NM``: the kept elements with their offset in the group of ``m``; every group must keep
    exactly ``min(n, group length)`` elements (what :func:`golden.topk.nm_mask` does).
    """
    s = np.asarray(s)
    mask = np.asarray(mask, dtype=bool)
    rows = []
    for i in range(s.shape[0]):
        if mode == PEMode.DENSE:
            rows.append([(0, int(v)) for v in s[i]])
        elif mode == PEMode.SPARSE:
            rows.append([(int(k), int(s[i, k])) for k in np.flatnonzero(mask[i] & (s[i] != 0))])
        else:
            n, m = nm
            entries = []
            for base in range(0, s.shape[1], m):
                kept = np.flatnonzero(mask[i, base:base + m])
                if len(kept) != min(n, s.shape[1] - base):
                    raise ValueError(f"row {i} group at {base} keeps {len(kept)}, not {n}")
                entries += [(int(k), int(s[i, base + k])) for k in kept]
            rows.append(entries)
    return rows


def sparse_beats(rows, lanes):
    """Beats (dicts of the sparse layout) of the rows' entries: ``lanes`` at a time, an empty row
    as one beat with none, ``row_last`` and ``last`` set."""
    beats = []
    for i, entries in enumerate(rows):
        chunks = [entries[p:p + lanes] for p in range(0, len(entries), lanes)] or [[]]
        for j, chunk in enumerate(chunks):
            pad = lanes - len(chunk)
            beats.append({
                "index": [k for k, _ in chunk] + [0] * pad,
                "value": [v for _, v in chunk] + [0] * pad,
                "count": len(chunk),
                "row_last": int(j == len(chunks) - 1),
                "last": int(i == len(rows) - 1 and j == len(chunks) - 1),
            })
    return beats


def expected_tiles(s, mask, d, cols, order):
    """``{(stream row, tile): [cols exact sums]}`` for ``(s * mask) @ d`` with rows sent in
    ``order``."""
    product = golden_pe.tile_product(np.where(mask, s, 0), d)
    n = product.shape[1]
    tiles = -(-n // cols)
    padded = np.zeros((product.shape[0], tiles * cols), dtype=product.dtype)
    padded[:, :n] = product
    return {(i, t): [int(v) for v in padded[row, t * cols:(t + 1) * cols]]
            for i, row in enumerate(order) for t in range(tiles)}


@dataclasses.dataclass
class JobResult:
    """What one job returned: results by ``(row, tile)``, the ``done`` beat, the rows' entries
    as sent, the number of dense tiles, and the order the rows were sent in."""
    tiles: dict
    done: dict
    rows: list
    n_tiles: int
    order: list


class PEArrayDriver:
    """Runs jobs on the array under cocotb. ``stall`` applies to every port."""

    def __init__(self, dut, config, rng, *, stall=0.3):
        self.config = AccelConfig.from_dict(config) if isinstance(config, dict) else config
        self.model = build(self.config)
        self.cols = self.model.cols
        self.cmd = StreamSource(dut, "cmd", dut.clk, rng=rng, stall=stall)
        self.sparse = StreamSource(dut, "sparse", dut.clk, rng=rng, stall=stall)
        self.dense = StreamSource(dut, "dense", dut.clk, rng=rng, stall=stall)
        self.result = StreamSink(dut, "result", dut.clk, rng=rng, stall=stall)
        self.done = StreamSink(dut, "done", dut.clk, rng=rng, stall=stall)

    def command(self, mode, rows, depth, cols, tiles, nm=(0, 0)):
        return pack(self.model.cmd_layout, {"mode": mode.value, "rows": rows, "depth": depth,
                                            "cols": cols, "tiles": tiles, "nm_n": nm[0],
                                            "nm_m": nm[1]})

    async def run_raw(self, command, sparse, dense, *, timeout):
        """Send packed payloads; return ``(results, done)`` decoded, one dict per row result
        (``last`` on the job's last one). Checks the stream rules."""
        [(results, done)] = await self.run_raw_many([(command, sparse, dense)], timeout=timeout)
        return results, done

    async def run_raw_many(self, jobs, *, timeout):
        """Send the packed payloads of several jobs ``[(command, sparse, dense)]`` at once (the
        array takes a command while the one before computes); return each job's
        ``(results, done)``. A job's results are those that leave after the job before it is
        done and before it is (the array computes one job at a time)."""
        first_result, first_done = len(self.result.received), len(self.done.received)
        for command, sparse, dense in jobs:
            self.cmd.send([command])
            self.sparse.send(sparse)
            self.dense.send(dense)
        await self.done.wait_for(first_done + len(jobs), timeout_cycles=timeout)
        for sink in (self.result, self.done):
            sink.check()
        done_cycles = self.done.cycles[first_done:]
        beats = list(zip(self.result.received[first_result:], self.result.cycles[first_result:]))
        replies = []
        for j, done_cycle in enumerate(done_cycles):
            after = done_cycles[j - 1] if j else -1
            results = []
            for payload, cycle in beats:
                if not after < cycle < done_cycle:
                    continue
                beat = unpack(self.model.result_layout, payload)
                slots = [slot for slot in beat["slots"] if slot["valid"]]
                assert slots, "a result beat with no result"
                for k, slot in enumerate(slots):
                    results.append(dict(slot, last=int(beat["last"] and k == len(slots) - 1)))
            replies.append((results, unpack(self.model.done_layout,
                                            self.done.received[first_done + j])))
        assert sum(1 for _, cycle in beats if cycle > done_cycles[-1]) == 0, \
            "a result came after the last job was done"
        return replies

    def job(self, mode, s, mask, d, *, nm=None, order=None):
        """A job's packed payloads ``(command, sparse, dense)`` and what to check it against:
        a :class:`JobResult` without ``tiles`` and ``done``, and a timeout in cycles."""
        s = np.asarray(s)
        mask = np.ones(s.shape, bool) if mask is None else np.asarray(mask, bool)
        order = list(range(s.shape[0])) if order is None else list(order)
        rows = row_entries(s[order], mask[order], mode, nm)
        depth, n = np.asarray(d).shape
        cols = min(self.cols, n)
        tiles = -(-n // self.cols)
        sparse = [pack(self.model.sparse_layout, b) for b in sparse_beats(rows, self.model.lanes)]
        dense = [pack(self.model.dense_layout, b)
                 for b in dense_beats(d, self.cols, self.model.dense_lanes)]
        command = self.command(mode, len(rows), depth, cols, tiles, nm or (0, 0))
        work = sum(golden_pe.row_cost(len(r)) for r in rows) * tiles
        timeout = 20 * (len(sparse) + len(dense) + work + len(rows) * tiles) + 500
        return ((command, sparse, dense),
                JobResult(tiles=None, done=None, rows=rows, n_tiles=tiles, order=order), timeout)

    @staticmethod
    def collect(job, results, done):
        """``job`` (from :meth:`job`) with its results by ``(row, tile)`` and its ``done``;
        raises ``AssertionError`` if a result is missing, duplicated or out of range, or the
        ``last`` flags are wrong."""
        got = {}
        rows, tiles = len(job.rows), job.n_tiles
        for i, r in enumerate(results):
            key = (r["row"], r["tile"])
            assert key not in got, f"result {key} came twice"
            assert r["row"] < rows and r["tile"] < tiles, f"result {key} is out of range"
            assert r["last"] == (i == len(results) - 1), f"result {i}: last={r['last']}"
            got[key] = r["values"]
        return dataclasses.replace(job, tiles=got, done=done)

    async def run(self, mode, s, mask, d, *, nm=None, order=None, timeout=None):
        """Run ``(s * mask) @ d`` in ``mode``; rows are sent in ``order`` (default: as they are).

        Returns a :class:`JobResult`; raises ``AssertionError`` if a (row, tile) result is
        missing, duplicated or out of range, or the ``last`` flags are wrong.
        """
        payloads, job, cycles = self.job(mode, s, mask, d, nm=nm, order=order)
        results, done = await self.run_raw(*payloads, timeout=timeout or cycles)
        return self.collect(job, results, done)
