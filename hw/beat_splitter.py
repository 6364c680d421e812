"""Split a stream's wide beats into narrower ones, in order."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .layouts import tensor_beat
from .validate import check_int

__all__ = ["BeatSplitter"]


class BeatSplitter(wiring.Component):
    """Turn each beat of ``lanes`` elements into beats of ``out_lanes``: a beat of ``count``
    elements becomes ``ceil(count / out_lanes)`` beats (one, empty, for an empty beat), all
    full but the last, which keeps the beat's ``last``. A tensor whose beats are full but its
    last stays so.

    The beat is held in a register that shifts down by ``out_lanes`` lanes per beat sent, so
    the output is a fixed slice of a register (no lane multiplexer).

    Parameters
    ----------
    width : int
        Operand width (signed), at least 2.
    lanes : int
        Elements per input beat.
    out_lanes : int
        Elements per output beat; divides ``lanes``.

    Attributes
    ----------
    i : In(stream.Signature(tensor_beat(width, lanes)))
    o : Out(stream.Signature(tensor_beat(width, out_lanes)))
    """

    def __init__(self, *, width, lanes, out_lanes):
        check_int("width", width, 2)
        check_int("lanes", lanes, 1)
        check_int("out_lanes", out_lanes, 1)
        if lanes % out_lanes:
            raise ValueError(f"out_lanes must divide lanes ({lanes}), not {out_lanes}")
        self._width, self._lanes, self._out_lanes = width, lanes, out_lanes
        super().__init__({
            "i": In(stream.Signature(tensor_beat(width, lanes))),
            "o": Out(stream.Signature(tensor_beat(width, out_lanes))),
        })

    def elaborate(self, platform):
        m = Module()
        L, G = self._lanes, self._out_lanes
        held = Signal(tensor_beat(self._width, L))
        full = Signal()
        left = Signal(range(L + 1))  # elements of ``held`` not yet sent
        final = Signal()  # this output beat is the held beat's last
        m.d.comb += [
            final.eq(left <= G),
            self.o.valid.eq(full),
            self.o.payload.count.eq(Mux(final, left, G)),
            self.o.payload.last.eq(held.last & final),
            self.i.ready.eq(~full | (self.o.ready & final)),
        ]
        for lane in range(G):
            m.d.comb += self.o.payload.values[lane].eq(held.values[lane])
        with m.If(self.o.valid & self.o.ready):
            with m.If(final):
                m.d.sync += full.eq(0)
            with m.Else():
                m.d.sync += left.eq(left - G)
                for lane in range(L - G):
                    m.d.sync += held.values[lane].eq(held.values[lane + G])
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [held.eq(self.i.payload), left.eq(self.i.payload.count), full.eq(1)]
        return m
