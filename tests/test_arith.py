"""hw.arith in Amaranth's simulator: exhaustive on small widths, random and extreme on wide
ones."""

import random

import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator

from hw.arith import logic_product, magnitude, times_constant


def simulate(width, build, cases):
    """Drive ``a``, ``b`` (signed ``width``) through ``build(m, a, b)`` (``m`` the module it
    may add signals to); check each expected value."""
    m = Module()
    a, b = Signal(signed(width)), Signal(signed(width))
    out = build(m, a, b)
    result = Signal.like(out)
    m.d.comb += result.eq(out)
    seen = []

    async def bench(ctx):
        for x, y, want in cases:
            ctx.set(a, x)
            ctx.set(b, y)
            got = ctx.get(result)
            assert got == want, (width, x, y, got, want)
            seen.append(got)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return seen


@pytest.mark.parametrize("width", [2, 3, 5, 6])
def test_logic_product_is_exact_on_every_pair(width):
    values = range(-(1 << width - 1), 1 << width - 1)
    cases = [(x, y, x * y) for x in values for y in values]
    assert len(simulate(width, logic_product, cases)) == len(cases)


@pytest.mark.parametrize("width", [8, 11, 16])
def test_logic_product_wide_operands(width):
    rng = random.Random(width)
    lo, hi = -(1 << width - 1), (1 << width - 1) - 1
    pairs = [(lo, lo), (lo, hi), (hi, hi), (lo, -1), (-1, -1), (0, lo), (hi, 1)]
    pairs += [(rng.randint(lo, hi), rng.randint(lo, hi)) for _ in range(400)]
    simulate(width, logic_product, [(x, y, x * y) for x, y in pairs])
    assert len(logic_product(Module(), Signal(signed(width)), Signal(signed(width)))) == 2 * width


def test_magnitude_of_the_most_negative_value_fits():
    cases = [(x, 0, abs(x)) for x in range(-128, 128)]
    simulate(8, lambda m, a, b: magnitude(a), cases)


@pytest.mark.parametrize("width", [1, 5, 32])
def test_popcount_counts_the_set_bits(width):
    from hw.arith import popcount

    rng = random.Random(width)
    values = [0, (1 << width) - 1] + [rng.getrandbits(width) for _ in range(20)]
    bits = Signal(width)
    count = Signal(range(width + 1))
    m = Module()
    m.d.comb += count.eq(popcount(bits))
    sim = Simulator(m)

    async def bench(ctx):
        for value in values:
            ctx.set(bits, value)
            assert ctx.get(count) == bin(value).count("1"), value

    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("width", [1, 2, 3, 5, 16])
def test_prefix_counts_count_the_set_bits_below_each_place(width):
    from hw.arith import prefix_counts

    rng = random.Random(width)
    values = [0, (1 << width) - 1] + [rng.getrandbits(width) for _ in range(20)]
    bits = Signal(width)
    m = Module()
    counts = [Signal(range(width + 1), name=f"count{i}") for i in range(width + 1)]
    for count, value in zip(counts, prefix_counts(bits), strict=True):
        m.d.comb += count.eq(value)
    sim = Simulator(m)

    async def bench(ctx):
        for value in values:
            ctx.set(bits, value)
            want = [bin(value & ((1 << i) - 1)).count("1") for i in range(width + 1)]
            assert [ctx.get(count) for count in counts] == want, value

    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("constant", [0, 1, 2, 8, 12, 24, 31, 255])
def test_times_constant_is_exact(constant):
    m = Module()
    value = Signal(6)
    result = Signal(16)
    m.d.comb += result.eq(times_constant(value, constant))

    async def bench(ctx):
        for x in range(64):
            ctx.set(value, x)
            assert ctx.get(result) == x * constant, (x, constant)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
