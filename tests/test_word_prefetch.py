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


@pytest.mark.parametrize("seed", range(4))
def test_bounded_reads_only_written_words_and_goes_round_again(seed):
    """A memory filled while it is read (like a PE row's bank): the queue holds only words
    already written (the memory starts with other values), passes repeat the words in order,
    and a word written in cycle t is queued in cycle t + 3 at the earliest."""
    rng = random.Random(seed)
    m = Module()
    m.submodules.mem = mem = Memory(shape=8, depth=16, init=[0xEE] * 16)
    m.submodules.pf = pf = WordPrefetch(width=8, addr_width=4, bounded=True)
    wp, rp = mem.write_port(), mem.read_port()
    m.d.comb += [rp.addr.eq(pf.mem_addr), pf.mem_data.eq(rp.data)]
    log = []

    async def bench(ctx):
        for job in range(6):
            n = [0, 1, 2, 5, 16, rng.randrange(1, 17)][job]
            words = [rng.randrange(0, 0xEE) for _ in range(n)]
            ctx.set(pf.start, 1)
            ctx.set(pf.limit, 0)  # the writer's count is cleared with the start
            ctx.set(pf.wrap, 0)
            await ctx.tick()
            ctx.set(pf.start, 0)
            written, written_at, want, cycle, passes = 0, {}, 0, 0, 0
            while cycle < 200 and (passes < 3 if n else cycle < 20):
                count = ctx.get(pf.count)
                if count:
                    head = int(ctx.get(pf.head)[0])
                    assert head == words[want % n], (job, cycle, want)
                    assert cycle >= written_at[want % n] + 3  # WORD_READY of a PE row: 3
                else:
                    assert n or cycle < 20
                pop = rng.random() < 0.7
                ctx.set(pf.pop, pop)
                if pop and count:
                    log.append(head)
                    want += 1
                    passes = want // max(n, 1)
                write = written < n and rng.random() < 0.5
                ctx.set(wp.en, write)
                if write:
                    ctx.set(wp.addr, written)
                    ctx.set(wp.data, words[written])
                    written_at[written] = cycle
                await ctx.tick()
                cycle += 1
                if write:
                    written += 1
                ctx.set(pf.limit, written)
                ctx.set(pf.wrap, written == n)
            assert passes >= 3 or n == 0, (job, passes)
            ctx.set(pf.pop, 0)
            ctx.set(wp.en, 0)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(log) > 50 and 0xEE not in log
