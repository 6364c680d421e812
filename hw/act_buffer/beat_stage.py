"""The output stage of the compressed-activation buffer's row scan."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BeatStage"]


class BeatStage(wiring.Component):
    """Registers a row scan's beat, and emits it with its lanes' columns.

    The scan gives each lane's element as a one-hot position in its bitmap word; here, out of
    the scan's loop, each position is encoded (an OR tree) and moved to its column (an adder).
    The stage takes a beat when it is empty or when its beat leaves in the same cycle.

    Parameters
    ----------
    geometry : :class:`hw.act_buffer.BufferGeometry`

    Attributes
    ----------
    i : In(stream.Signature(positions_layout))
        ``row``, ``count``, ``last``, ``col_bias`` (a bit's column minus its position),
        ``one_hot`` and ``value`` (``lanes`` each).
    o : Out(stream.Signature(rdata_layout))
        The beat, with ``col`` for ``one_hot``.
    """

    def __init__(self, geometry):
        self.geometry = g = geometry
        self.positions_layout = data.StructLayout({
            "row": range(g.max_rows + 1),
            "count": range(g.lanes + 1),
            "last": 1,
            "col_bias": range(g.max_cols),
            "one_hot": data.ArrayLayout(g.word_bits, g.lanes),
            "value": data.ArrayLayout(signed(g.width), g.lanes),
        })
        super().__init__({
            "i": In(stream.Signature(self.positions_layout)),
            "o": Out(stream.Signature(g.rdata_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geometry
        held = Signal(self.positions_layout)  # the beat, its lanes still as positions
        beat = self.o.payload
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [self.o.valid.eq(1), held.eq(self.i.payload)]
        m.d.comb += [beat.row.eq(held.row), beat.count.eq(held.count), beat.last.eq(held.last)]
        for i in range(g.lanes):
            hits = [Mux(held.one_hot[i][j], j, 0) for j in range(1, g.word_bits)]
            while len(hits) > 1:
                hits = [hits[k] | hits[k + 1] if k + 1 < len(hits) else hits[k]
                        for k in range(0, len(hits), 2)]
            pick = hits[0] if hits else 0
            m.d.comb += [beat.col[i].eq(held.col_bias + pick), beat.value[i].eq(held.value[i])]
        return m
