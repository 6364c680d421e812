"""Pack a row's short beats into full words of the PE array's sparse port."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .arith import shift_up
from .validate import check_int

__all__ = ["RowPacker"]


class RowPacker(wiring.Component):
    """Gather the entries of each sparse row into words of ``lanes`` entries.

    A PE row's bank stores one beat per word, so a row sent in beats of fewer than ``lanes``
    entries (the selector's lanes, a bitmap scan's segments, a column walk's single
    elements) would fill a word per beat. The packer keeps the entries of the row under way in
    a register and emits a word as soon as ``lanes`` entries have gathered, and the rest of the
    row with ``row_last``. Every word of a row but its last is then full: a row of ``n``
    entries takes ``max(1, ceil(n / lanes))`` words (:func:`golden.pe_array.packed_words`).
    The beat's entries are moved behind the held ones by ``log2(lanes)`` levels of 2:1
    multiplexers, so the packer grows as ``lanes x log2(lanes)``.

    Timing: a beat that completes a word (or ends its row) leaves in the cycle it arrives; a
    beat that only adds to the register is taken without waiting for the output. When a row's
    last beat leaves more than one word, the second leaves the next cycle, in which no beat is
    taken. ``o`` is meant to feed a register slice (:class:`hw.skid_buffer.SkidBuffer`).

    Parameters
    ----------
    layout : data.StructLayout
        The PE array's ``sparse`` layout (``index``, ``value``, ``count``, ``row_last``,
        ``last``), for both sides.
    in_lanes : int
        Entries an input beat can carry (lanes ``0 .. in_lanes - 1`` of ``i``), at most the
        layout's lanes.

    Attributes
    ----------
    i : In(stream.Signature(layout))
        Row beats of up to ``in_lanes`` entries; a row ends with ``row_last`` (an empty row is
        one beat with no entries), the job with ``last``.
    o : Out(stream.Signature(layout))
        The same rows and entries, in order, in full words but each row's last.
    """

    def __init__(self, layout, *, in_lanes):
        lanes = layout["index"].shape.length
        check_int("in_lanes", in_lanes, 1, lanes)
        self._layout = layout
        self.lanes = lanes
        self.in_lanes = in_lanes
        super().__init__({
            "i": In(stream.Signature(layout)),
            "o": Out(stream.Signature(layout)),
        })

    def elaborate(self, platform):
        m = Module()
        L, N = self.lanes, self.in_lanes
        beat, out = self.i.payload, self.o.payload
        held = Signal(self._layout)  # the row's gathered entries, ``fill`` of them
        fill = Signal(range(max(L, 2)))  # never zero bits wide (Verilog has no such vector)
        flush = Signal()       # ``held`` is a row's last word, left over: it goes next
        flush_last = Signal()  # ... and the job's last

        total = Signal(range(L + N + 1))
        m.d.comb += total.eq(fill + beat.count)
        # The beat's entries moved up by ``fill`` (0 to L - 1) into L + N slots, by levels of
        # 2:1 multiplexers (one bit of ``fill`` each), not one ``fill``-way choice per lane.
        entry = data.StructLayout({"index": beat.index.shape().elem_shape,
                                   "value": beat.value.shape().elem_shape})
        placed = []
        for j in range(L + N):
            slot = Signal(entry, name=f"incoming{j}")
            if j < N:
                m.d.comb += [slot.index.eq(beat.index[j]), slot.value.eq(beat.value[j])]
            placed.append(slot)
        placed = shift_up(m, placed, fill, (L - 1).bit_length(), name="shifted")
        merged = Signal(self._layout)  # the held entries, then the beat's, from lane ``fill``
        for j in range(L):
            m.d.comb += [merged.index[j].eq(placed[j].index), merged.value[j].eq(placed[j].value)]
            if j < L - 1:  # (``fill`` is at most L - 1)
                with m.If(fill > j):
                    m.d.comb += [merged.index[j].eq(held.index[j]),
                                 merged.value[j].eq(held.value[j])]

        full = Signal()
        m.d.comb += full.eq(total >= L)
        with m.If(flush):
            m.d.comb += [self.o.valid.eq(1), out.eq(held), out.count.eq(fill),
                         out.row_last.eq(1), out.last.eq(flush_last)]
            with m.If(self.o.ready):
                m.d.sync += [fill.eq(0), flush.eq(0)]
        with m.Elif(self.i.valid):
            m.d.comb += [out.index.eq(merged.index), out.value.eq(merged.value)]
            with m.If(full):
                ends_here = total == L
                m.d.comb += [self.o.valid.eq(1), out.count.eq(L),
                             out.row_last.eq(beat.row_last & ends_here),
                             out.last.eq(beat.last & ends_here),
                             self.i.ready.eq(self.o.ready)]
                with m.If(self.o.ready):
                    # The beat's entries past the word start the next one.
                    m.d.sync += fill.eq(total - L)
                    for j in range(min(N, L - 1)):
                        m.d.sync += [held.index[j].eq(placed[L + j].index),
                                     held.value[j].eq(placed[L + j].value)]
                    with m.If(beat.row_last & ~ends_here):
                        m.d.sync += [flush.eq(1), flush_last.eq(beat.last)]
            with m.Elif(beat.row_last):
                m.d.comb += [self.o.valid.eq(1), out.count.eq(total), out.row_last.eq(1),
                             out.last.eq(beat.last), self.i.ready.eq(self.o.ready)]
                with m.If(self.o.ready):
                    m.d.sync += fill.eq(0)
            with m.Else():
                m.d.comb += self.i.ready.eq(1)
                m.d.sync += [fill.eq(total), held.index.eq(merged.index),
                             held.value.eq(merged.value)]
        return m
