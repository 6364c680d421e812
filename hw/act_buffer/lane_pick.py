"""The kept elements a row scan's beat takes from a bitmap segment."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..validate import check_int

__all__ = ["LanePick"]


class LanePick(wiring.Component):
    """Picks the first ``lanes`` set bits of a bitmap segment, one lane each (combinational).

    Each bit's rank (the set bits before it, saturated at ``lanes + 1``) comes from a parallel
    prefix: ``log2(word_bits)`` levels of small adders, not a chain.

    Parameters
    ----------
    word_bits : int
        Bits of the segment.
    lanes : int
        Lanes of a beat.

    Attributes
    ----------
    segment : Signal(word_bits), in
        The bits of the current row in the bitmap word being scanned.
    one_hot : Signal(ArrayLayout(word_bits, lanes)), out
        Lane ``i``'s element as a one-hot position (no bit set if the segment has fewer).
    taken : Signal(word_bits), out
        The bits the lanes take.
    take : Signal(range(lanes + 1)), out
        How many they are.
    more : Signal, out
        The segment holds more set bits than the lanes take.

    Raises
    ------
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, *, word_bits, lanes):
        check_int("word_bits", word_bits, 1)
        check_int("lanes", lanes, 1)
        self.word_bits, self.lanes = word_bits, lanes
        super().__init__({
            "segment": In(word_bits),
            "one_hot": Out(data.ArrayLayout(word_bits, lanes)),
            "taken": Out(word_bits),
            "take": Out(range(lanes + 1)),
            "more": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        word_bits, lanes, segment = self.word_bits, self.lanes, self.segment
        saturate = lanes + 1
        level = [segment[j] for j in range(word_bits)]
        most = [1] * word_bits  # the largest value each entry of ``level`` can take
        step = 1
        while step < word_bits:
            nxt = []
            for j in range(word_bits):
                if j < step:
                    nxt.append(level[j])
                    continue
                total = Signal(range(saturate + 1), name=f"prefix{step}_{j}")
                wide = level[j] + level[j - step]
                # Saturate only where the sum can pass the cap (else the compare is constant).
                capped = most[j] + most[j - step] > saturate
                m.d.comb += total.eq(Mux(wide > saturate, saturate, wide) if capped else wide)
                nxt.append(total)
            most = [most[j] if j < step else min(saturate, most[j] + most[j - step])
                    for j in range(word_bits)]
            level, step = nxt, step * 2
        # ranks[j]: set bits before position j.
        ranks = [Signal(range(saturate + 1), name=f"rank{j}") for j in range(word_bits + 1)]
        m.d.comb += ranks[0].eq(0)
        for j in range(word_bits):
            m.d.comb += ranks[j + 1].eq(level[j])
        for i in range(lanes):
            for j in range(word_bits):
                m.d.comb += self.one_hot[i][j].eq(segment[j] & (ranks[j] == i))
        for j in range(word_bits):
            m.d.comb += self.taken[j].eq(segment[j] & (ranks[j] < lanes))
        m.d.comb += [self.more.eq(ranks[word_bits] == lanes + 1),
                     self.take.eq(Mux(ranks[word_bits] > lanes, lanes, ranks[word_bits]))]
        return m
