"""Small arithmetic and data-movement helpers shared by the blocks."""

from amaranth.hdl import Mux, Signal, Value, signed

__all__ = ["magnitude", "logic_product", "popcount", "prefix_counts", "shift_up", "sum_tree",
           "times_constant"]


def magnitude(value):
    """``|value|`` of a signed value, as an unsigned value of the same width.

    The most negative value ``-2**(w-1)`` has magnitude ``2**(w-1)``, which still fits in
    ``w`` unsigned bits, so no width is lost.
    """
    value = Value.cast(value)
    width = len(value)
    return Mux(value[-1], -value, value)[:width]


def sum_tree(terms):
    """The sum of ``terms`` as a balanced tree of adders (``log2`` levels, not a chain)."""
    terms = list(terms) or [Value.cast(0)]
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]


def popcount(bits):
    """The set bits of ``bits``, as a balanced tree of adders (``log2`` levels, not a chain)."""
    bits = Value.cast(bits)
    return sum_tree(bits[i] for i in range(len(bits)))


def prefix_counts(bits):
    """``[popcount(bits[:i]) for i in range(len(bits) + 1)]`` as a parallel prefix of adders
    (``log2`` levels, each count a sum of the level before), not a chain of ``len(bits)``."""
    bits = Value.cast(bits)
    counts = [Value.cast(0)] + [bits[i] for i in range(len(bits))]
    step = 1
    while step < len(counts):
        counts = [counts[i] + counts[i - step] if i > step else counts[i]
                  for i in range(len(counts))]
        step *= 2
    return counts


def times_constant(value, constant):
    """``value * constant`` for a constant ``constant >= 0``, as a balanced tree of adders of
    ``value`` shifted by ``constant``'s set bits: no multiplier (synthesis would put a
    constant product in a DSP, with no register around it)."""
    value = Value.cast(value)
    return sum_tree(value << i for i in range(constant.bit_length()) if constant >> i & 1)


def shift_up(m, items, amount, levels, *, name):
    """``items`` (signals of one layout) moved up by ``amount`` places, zeros below: a list as
    long as ``items``, built from ``levels`` levels of 2:1 multiplexers (one bit of ``amount``
    each, lowest first), not an ``amount``-way choice per place. ``amount`` must be below
    ``2 ** levels``; the signals are named ``{name}{level}_{place}``."""
    for level in range(levels):
        step = 1 << level
        moved = []
        for j, item in enumerate(items):
            slot = Signal.like(item, name=f"{name}{level}_{j}")
            m.d.comb += slot.eq(Mux(amount[level], items[j - step], item) if j >= step
                                else Mux(amount[level], 0, item))
            moved.append(slot)
        items = moved
    return items


def logic_product(m, a, b, *, name="product", keep=True):
    """``a * b`` of two signed values, built from partial products and an adder tree.

    Synthesis maps a ``*`` to a DSP multiplier; this sum of shifted partial products is
    mapped to LUTs and carry chains instead, for arrays with more products than the part has
    multipliers. The result is exact: a signed value of ``len(a) + len(b)`` bits.

    Each partial sum is a signal of ``m`` (named ``{name}_sum{i}``) that synthesis must keep:
    otherwise Yosys merges the whole tree into one multi-operand sum and builds it as a
    carry-save tree of LUTs, which for 8x8 bits on the ECP5 takes 2.4 times the logic cells
    (309 LUT4 + 8 CCU2C against 65 LUT4 + 36 CCU2C; ``python -m sim.bench_logic_product``).
    ``keep=False`` leaves the sums unmarked, for that comparison.
    """
    a, b = Value.cast(a).as_signed(), Value.cast(b).as_signed()
    width = len(a) + len(b)
    # b = -b[n-1] * 2**(n-1) + sum(b[i] * 2**i): the sign bit's partial product is subtracted.
    terms = [Mux(b[i], a, 0) << i for i in range(len(b) - 1)]
    terms.append(-(Mux(b[-1], a, 0) << (len(b) - 1)))
    sums = 0

    def partial_sum(left, right):
        nonlocal sums
        # Sums are exact modulo 2**width, so no partial sum needs more bits than the product.
        total = left + right
        kept = Signal(signed(min(len(total), width)), name=f"{name}_sum{sums}",
                      attrs={"keep": 1} if keep else None)
        sums += 1
        m.d.comb += kept.eq(total)
        return kept

    while len(terms) > 1:  # a balanced tree: log2(n) adders deep
        terms = [partial_sum(terms[i], terms[i + 1]) if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0][:width].as_signed()
