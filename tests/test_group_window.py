"""GroupWindow in Amaranth's simulator against golden/ (the selector's cocotb tests cover it
on Icarus and Verilator too)."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.topk import nm_mask
from hw.group_window import GroupMode, GroupWindow, slice_norm_width


def run_window(dut, cases):
    """Stream each (x, mode, n, group, threshold) case; return the keep bits and group sums."""
    lanes = dut.lanes
    results, done = [], [0]

    async def producer(ctx):
        for i, (x, mode, n, group, threshold) in enumerate(cases):
            ctx.set(dut.mode, mode)
            ctx.set(dut.n, n)
            ctx.set(dut.group, group)
            ctx.set(dut.threshold, threshold)
            beats = [x[j:j + lanes] for j in range(0, len(x), lanes)] or [x[:0]]
            for b, beat in enumerate(beats):
                ctx.set(dut.i.payload.values, [int(v) for v in beat] + [0] * (lanes - len(beat)))
                ctx.set(dut.i.payload.count, len(beat))
                ctx.set(dut.i.payload.last, b == len(beats) - 1)
                ctx.set(dut.i.valid, 1)
                await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
            while done[0] <= i:  # hold the parameters until the tensor is out
                await ctx.tick()

    async def consumer(ctx):
        ctx.set(dut.o.ready, 1)
        for _ in cases:
            keep, ends = [], []
            while True:
                *_, count, mask, sums, end, last = await ctx.tick().sample(
                    dut.o.payload.count, dut.o.payload.keep, dut.o.payload.sums,
                    dut.o.payload.ends, dut.o.payload.last).until(dut.o.valid)
                keep += [(mask >> lane) & 1 for lane in range(count)]
                ends += [int(sums[lane]) for lane in range(count) if (end >> lane) & 1]
                if last:
                    break
            results.append((keep, ends))
            done[0] += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    return results


@pytest.mark.parametrize("lanes, max_m", [(1, 4), (4, 8), (3, 5)])
def test_nm_matches_golden(lanes, max_m):
    rng = np.random.default_rng(lanes)
    dut = GroupWindow(width=8, lanes=lanes, max_nm_m=max_m, max_slice=1)
    cases = []
    for m in sorted({1, 2, 3, max_m}):
        for n in range(m + 1):
            x = rng.integers(-4, 4, size=int(rng.integers(0, 5 * m + 3)))
            cases.append((x, GroupMode.NM, n, m, 0))
    for (x, _, n, m, _), (keep, _) in zip(cases, run_window(dut, cases)):
        want = nm_mask(x, n, m).astype(int).tolist() if x.size else []
        assert keep == want, (x.tolist(), n, m)


@pytest.mark.parametrize("lanes", [1, 4])
def test_slice_norms_and_keep_match_golden(lanes):
    rng = np.random.default_rng(7)
    dut = GroupWindow(width=8, lanes=lanes, max_nm_m=1, max_slice=9)
    cases = []
    for slice_len in (1, 2, 4, 9):
        x = rng.integers(-128, 128, size=slice_len * int(rng.integers(1, 6)) + int(rng.integers(0, 2)))
        cases.append((x, GroupMode.SLICE, 0, slice_len, int(rng.integers(0, 128 * slice_len))))
    for (x, _, _, slice_len, threshold), (keep, ends) in zip(cases, run_window(dut, cases)):
        mags = np.abs(x.astype(np.int64))
        norms = [int(mags[i:i + slice_len].sum()) for i in range(0, x.size, slice_len)]
        assert ends == norms
        want = np.repeat(np.array(norms) >= threshold, slice_len)[:x.size].astype(int).tolist()
        assert keep == want


def test_norm_width():
    assert slice_norm_width(8, 9) == 11
    assert slice_norm_width(16, 9) == 19
    assert slice_norm_width(8, 1) == 8
