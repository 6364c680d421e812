"""WordPrefetch in Amaranth's simulator: every word once, in order, from any start, under any
pattern of pops; and the queue is as full as its docstring promises."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator

from hw.word_prefetch import WordPrefetch


def build(depth):
    m = Module()
    words = [(i * 37 + 5) % 256 for i in range(64)]
    m.submodules.mem = mem = Memory(shape=8, depth=64, init=words)
    m.submodules.pf = pf = WordPrefetch(width=8, addr_width=6, depth=depth)
    port = mem.read_port()
    m.d.comb += [port.addr.eq(pf.mem_addr), pf.mem_data.eq(port.data)]
    return m, pf, words


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_words_come_in_order_under_random_pops(depth):
    m, pf, words = build(depth)
    rng = random.Random(depth)
    log = []

    async def bench(ctx):
        for run in range(12):  # addresses wrap at the memory's end, like the port's
            start = rng.randrange(0, 40)
            ctx.set(pf.start_addr, start)
            ctx.set(pf.start, 1)
            await ctx.tick()
            ctx.set(pf.start, 0)
            want = start
            for cycle in range(40):
                count = ctx.get(pf.count)
                if cycle == 1:
                    assert count == 1
                if cycle >= 2 and depth == 4 and run % 2 == 0:
                    assert count >= 1  # popping every cycle never starves it
                head = ctx.get(pf.head)
                if count >= 2:
                    assert [int(head[0]), int(head[1])] == [words[want % 64],
                                                            words[(want + 1) % 64]]
                elif count == 1:
                    assert int(head[0]) == words[want % 64]
                pop = (run % 2 == 0 and cycle >= 1) or rng.random() < 0.5
                ctx.set(pf.pop, pop)
                if pop and count:
                    log.append((words[want % 64], int(head[0])))
                    want += 1
                await ctx.tick()
                assert ctx.get(pf.count) <= depth
            ctx.set(pf.pop, 0)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert log and all(a == b for a, b in log)


def test_full_queue_refills_at_full_rate():
    m, pf, words = build(4)

    async def bench(ctx):
        ctx.set(pf.start_addr, 3)
        ctx.set(pf.start, 1)
        await ctx.tick()
        ctx.set(pf.start, 0)
        await ctx.tick().repeat(6)
        assert ctx.get(pf.count) == 4
        want = 3
        ctx.set(pf.pop, 1)
        for _ in range(20):  # a word every cycle, two always at hand
            assert ctx.get(pf.count) >= 2
            assert int(ctx.get(pf.head)[0]) == words[want]
            want += 1
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("kwargs, message", [
    ({"width": 0, "addr_width": 4}, "width must be at least 1, not 0"),
    ({"width": 8, "addr_width": 4, "depth": 1}, "depth must be at least 2, not 1"),
])
def test_parameters_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        WordPrefetch(**kwargs)
