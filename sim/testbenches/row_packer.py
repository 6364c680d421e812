"""cocotb testbench of :class:`hw.row_packer.RowPacker` against :func:`golden.pe_array.pack_row`.

Stimulus is a stream of jobs; a job is a list of rows, a row a list of input beats, a beat a
list of ``(index, value)`` entries. The scoreboard expects each row's entries, in order, in
words of the sizes ``pack_row`` gives, ``row_last`` on each row's last word and ``last`` on each
job's last word. With no stalls the transfer cycles of both ports are checked against the
timing contract too (:func:`contract_cycles`).

Parameters (``SWAT_TB_PARAMS``): ``lanes`` (entries a word), ``in_lanes`` (entries an input
beat carries at most), ``index_bits`` and ``width`` (entry field widths, as in the PE array's
sparse layout) and ``count`` (input beats per random test, about).
"""

import cocotb
from amaranth.hdl import signed, unsigned
from amaranth.lib import data
from cocotb.triggers import ClockCycles

from golden.pe_array import pack_row

from ..drivers.payload import pack, unpack
from ..drivers.streams import StreamSink, StreamSource
from .util import start_clock_and_reset, tb_params, tb_rng

__all__ = ["sparse_layout", "contract_cycles"]


def sparse_layout(lanes, index_bits, width):
    """The PE array's sparse port layout (:attr:`hw.pe_array.SparsePEArray.sparse_layout`) for
    these sizes: the packer's ports, rebuilt here to pack and unpack payloads."""
    return data.StructLayout({
        "index": data.ArrayLayout(unsigned(index_bits), lanes),
        "value": data.ArrayLayout(signed(width), lanes),
        "count": range(lanes + 1),
        "row_last": 1,
        "last": 1,
    })


class _Sizes:
    def __init__(self, params):
        self.lanes = params["lanes"]
        self.in_lanes = params["in_lanes"]
        self.index_bits = params["index_bits"]
        self.width = params["width"]
        self.layout = sparse_layout(self.lanes, self.index_bits, self.width)

    def value(self, rng):
        """A random entry value, the extremes (most negative above all) often."""
        lo, hi = -(1 << (self.width - 1)), (1 << (self.width - 1)) - 1
        pick = rng.random()
        if pick < 0.15:
            return lo
        if pick < 0.2:
            return hi
        return rng.randint(lo, hi)

    def entry(self, rng):
        return rng.getrandbits(self.index_bits), self.value(rng)

    def split(self, rng, n):
        """``n`` entries' beat sizes, each 1..in_lanes (an empty row is one empty beat)."""
        sizes = []
        while n:
            size = rng.randint(1, min(n, self.in_lanes))
            sizes.append(size)
            n -= size
        return sizes or [0]

    def row(self, rng, sizes):
        """A row of beats of the given sizes, with random entries."""
        return [[self.entry(rng) for _ in range(size)] for size in sizes]

    def random_row(self, rng):
        n = 0 if rng.random() < 0.12 else rng.randint(0, 3 * self.lanes + 2)
        return self.row(rng, self.split(rng, n))


def _random_jobs(sizes, rng, beats):
    """Jobs of 1..8 random rows, about ``beats`` input beats in all."""
    jobs, total = [], 0
    while total < beats:
        job = [sizes.random_row(rng) for _ in range(rng.randint(1, 8))]
        total += sum(len(row) for row in job)
        jobs.append(job)
    return jobs


def _edge_jobs(sizes, rng):
    """The corner cases, one job each, and all of them again as one job."""
    L, N = sizes.lanes, sizes.in_lanes
    shapes = {
        "single-entry beats": [[1] * (2 * L + 1), [1] * L, [1]],
        "rows of exactly lanes entries": [[1] * L, sizes.split(rng, L), [min(N, L)] * (L // N)
                                          + ([L % N] if L % N else [])],
        "consecutive empty rows": [[0], [0], [0], [1], [0], [0]],
        "one-entry rows": [[1]] * 5,
        "one empty row": [[0]],
        "one one-entry row": [[1]],
    }
    if N >= 2:
        # fill + count > lanes on a row's last beat: it leaves two words.
        shapes["last beat crosses a word"] = [
            [1] * (L - 1) + [N],
            [1] * (2 * L - 1) + [2],
            sizes.split(rng, L - 1) + [N],
            [N] * (L // N + 1),
            [1] * (L - 1) + [2], [0], [1] * (L - 1) + [N],
        ]
    jobs = [(name, [sizes.row(rng, row) for row in rows]) for name, rows in shapes.items()]
    jobs.append(("all of them in one job", [row for _, job in jobs for row in job]))
    return jobs


def _payloads(sizes, rng, jobs):
    """The input beats of ``jobs`` as packed integers; lanes past ``count`` hold garbage."""
    out = []
    for job in jobs:
        for r, row in enumerate(job):
            for b, beat in enumerate(row):
                entries = beat + [sizes.entry(rng) for _ in range(sizes.lanes - len(beat))]
                row_last = b == len(row) - 1
                out.append(pack(sizes.layout, {
                    "index": [i for i, _ in entries], "value": [v for _, v in entries],
                    "count": len(beat), "row_last": int(row_last),
                    "last": int(row_last and r == len(job) - 1)}))
    return out


def _expected_words(lanes, jobs, names=None):
    """``(label, entries, row_last, last)`` of every output word, in order, from ``pack_row``."""
    words = []
    for j, job in enumerate(jobs):
        job_name = f"job {j}" + (f" ({names[j]})" if names else "")
        for r, row in enumerate(job):
            entries = [e for beat in row for e in beat]
            word_sizes = pack_row([len(beat) for beat in row], lanes)
            pos = 0
            for w, size in enumerate(word_sizes):
                row_last = w == len(word_sizes) - 1
                words.append((f"{job_name} row {r} word {w}", entries[pos:pos + size],
                              int(row_last), int(row_last and r == len(job) - 1)))
                pos += size
            assert pos == len(entries)
    return words


def contract_cycles(lanes, jobs, start):
    """Transfer cycles of every input beat and output word with no stalls on either side.

    A beat that completes a word or ends its row leaves its word in the cycle it is taken; a
    row's last beat that leaves two words sends the second the next cycle and holds the input
    then. Returns ``(accept, words, two_word_rows)``, the first beat being taken in ``start``.
    """
    accept, words, two_word_rows = [], [], 0
    cycle = start
    for job in jobs:
        for row in job:
            fill = 0
            for b, beat in enumerate(row):
                row_last = b == len(row) - 1
                total = fill + len(beat)
                accept.append(cycle)
                if total >= lanes:
                    words.append(cycle)
                    fill = total - lanes
                    if row_last and fill:
                        cycle += 1
                        words.append(cycle)
                        two_word_rows += 1
                elif row_last:
                    words.append(cycle)
                else:
                    fill = total
                if row_last:
                    fill = 0
                cycle += 1
    return accept, words, two_word_rows


def _check_words(sizes, received, expected):
    """Compare received output words with ``expected`` (:func:`_expected_words`)."""
    for k, (bits, (label, entries, row_last, last)) in enumerate(zip(received, expected)):
        word = unpack(sizes.layout, bits)
        n = word["count"]
        got = list(zip(word["index"][:n], word["value"][:n]))
        flags = (word["row_last"], word["last"])
        assert (got, flags) == (entries, (row_last, last)), (
            f"output word {k} ({label}): {n} entries {got} row_last/last {flags}, "
            f"expected {len(entries)} entries {entries} row_last/last {(row_last, last)}")
    assert len(received) == len(expected), (
        f"{len(received)} output words, expected {len(expected)} (extra from word "
        f"{len(expected)}: {[unpack(sizes.layout, b) for b in received[len(expected):][:3]]})")


async def _run(dut, rng, jobs, in_stall, out_stall, names=None):
    """Send ``jobs`` through the packer and scoreboard the words; returns the source and sink.

    Once a test: it starts the clock."""
    sizes = _Sizes(tb_params())
    await start_clock_and_reset(dut)
    source = StreamSource(dut, "i", dut.clk, rng=rng, stall=in_stall)
    sink = StreamSink(dut, "o", dut.clk, rng=rng, stall=out_stall)
    beats = _payloads(sizes, rng, jobs)
    expected = _expected_words(sizes.lanes, jobs, names)
    source.send(beats)
    await sink.wait_for(len(expected), timeout_cycles=50 * len(beats) + 50)
    await ClockCycles(dut.clk, 10)  # an extra or duplicated word would show up here
    sink.check()
    assert source.sent == len(beats), f"{source.sent} of {len(beats)} input beats taken"
    _check_words(sizes, sink.received, expected)
    return source, sink


async def _check_throughput(dut, rng, jobs, label, names=None):
    """No stalls: every transfer in exactly the cycle the timing contract says."""
    source, sink = await _run(dut, rng, jobs, 0.0, 0.0, names)
    lanes = tb_params()["lanes"]
    accept, words, two_word_rows = contract_cycles(lanes, jobs, source.cycles[0])
    assert source.cycles == accept, (
        f"{label}: input beats taken in cycles {_first_difference(source.cycles, accept)}")
    assert sink.cycles == words, (
        f"{label}: output words in cycles {_first_difference(sink.cycles, words)}")
    beats = len(accept)
    span = sink.cycles[-1] - source.cycles[0] + 1
    assert span == beats + two_word_rows, (
        f"{label}: {beats} beats and {two_word_rows} two-word rows took {span} cycles")
    cocotb.log.info(f"{label}: {beats} beats, {len(words)} words, {two_word_rows} two-word "
                    f"rows in {span} cycles")


def _first_difference(got, want):
    k = next((k for k, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    return f"{got[k:k + 4]} from transfer {k}, expected {want[k:k + 4]} (relative to the first " \
           f"beat: {[c - want[0] for c in got[k:k + 4]]} vs {[c - want[0] for c in want[k:k + 4]]})"


async def _random(dut, name, in_stall, out_stall):
    params = tb_params()
    rng = tb_rng(name)
    jobs = _random_jobs(_Sizes(params), rng, params["count"])
    await _run(dut, rng, jobs, in_stall, out_stall)


@cocotb.test()
@cocotb.parametrize(stalls=[(0.3, 0.3), (0.8, 0.1), (0.1, 0.8)])
async def random_rows_random_stalls(dut, stalls):
    """Both sides stalling, a slow producer, a slow consumer."""
    await _random(dut, f"stalls_{stalls}", *stalls)


@cocotb.test()
async def random_rows_no_stalls_full_throughput(dut):
    """B beats take B cycles plus one for each row whose last beat leaves two words."""
    params = tb_params()
    rng = tb_rng("throughput")
    jobs = _random_jobs(_Sizes(params), rng, params["count"])
    await _check_throughput(dut, rng, jobs, "random rows")


@cocotb.test()
async def edge_cases_no_stalls(dut):
    """The corner cases, one job each, back to back: words and timing."""
    rng = tb_rng("edge_no_stalls")
    names, jobs = zip(*_edge_jobs(_Sizes(tb_params()), rng))
    await _check_throughput(dut, rng, list(jobs), "edge cases", names)


@cocotb.test()
@cocotb.parametrize(stalls=[(0.5, 0.5), (0.0, 0.7), (0.7, 0.0)])
async def edge_cases_random_stalls(dut, stalls):
    rng = tb_rng(f"edge_stalls_{stalls}")
    names, jobs = zip(*_edge_jobs(_Sizes(tb_params()), rng))
    await _run(dut, rng, list(jobs), *stalls, names)
