import random

import pytest
from amaranth.sim import Simulator

from hw.beat_splitter import BeatSplitter


def test_parameters_are_validated():
    with pytest.raises(ValueError, match=r"^out_lanes must divide lanes \(8\), not 3$"):
        BeatSplitter(width=8, lanes=8, out_lanes=3)


@pytest.mark.parametrize("lanes, out_lanes", [(4, 4), (8, 4), (16, 4), (6, 2), (4, 1)])
def test_beats_split_in_order_under_stalls(lanes, out_lanes):
    """Every element once, in order; pieces full but a beat's last; ``last`` on the tensor's
    final piece; an empty beat is one empty piece; random stalls on both sides."""
    rng = random.Random(lanes * 10 + out_lanes)
    dut = BeatSplitter(width=8, lanes=lanes, out_lanes=out_lanes)
    beats = []
    for _ in range(40):
        count = rng.choice([lanes, lanes, 0, 1, out_lanes, lanes - 1, rng.randrange(lanes + 1)])
        beats.append(([rng.randrange(-128, 128) for _ in range(count)], rng.random() < 0.3))
    want = []
    for values, last in beats:
        pieces = [values[p:p + out_lanes] for p in range(0, len(values), out_lanes)] or [[]]
        want += [(piece, int(last and k == len(pieces) - 1)) for k, piece in enumerate(pieces)]
    got = []

    async def producer(ctx):
        for values, last in beats:
            while rng.random() < 0.3:
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
            ctx.set(dut.i.payload.values, values + [0] * (lanes - len(values)))
            ctx.set(dut.i.payload.count, len(values))
            ctx.set(dut.i.payload.last, last)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        while len(got) < len(want):
            ready = rng.random() < 0.7
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if ready and valid:
                assert payload.count <= out_lanes
                got.append(([int(v) for v in payload.values][:payload.count], int(payload.last)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run_until(2e-3)
    assert got == want
