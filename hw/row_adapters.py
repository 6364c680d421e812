"""Adapters that turn the compressed streams of the top-K selector and the activation buffer into
the PE array's sparse rows (:attr:`hw.pe_array.SparsePEArray.sparse`).

The PE array wants every row of a job, in order, each ending with ``row_last`` (an empty row
as one beat with no entries), and ``last`` on the job's final beat.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .validate import check_int

__all__ = ["entry_beat", "EntriesToRows", "ElementsToRows"]


def entry_beat(width, lanes, index_bits):
    """Input of :class:`EntriesToRows`: ``lanes`` ``(index, value)`` entries, ``count`` of
    them valid, and ``row_end`` on a row's final beat (which may carry none)."""
    return data.StructLayout({
        "index": data.ArrayLayout(unsigned(index_bits), lanes),
        "value": data.ArrayLayout(signed(width), lanes),
        "count": range(lanes + 1),
        "row_end": 1,
    })


class EntriesToRows(wiring.Component):
    """Rows of entries, one producer beat at a time, into PE-array row beats.

    Beats with no entries inside a row are dropped; the latest beat with entries is held back
    one beat so that the row's end, which may come on an empty beat, marks it ``row_last``. A row
    with no entries at all becomes one empty beat. ``rows`` (set with ``start``) says how many
    rows the job has; the last one's final beat carries ``last``.

    Parameters
    ----------
    width : int
        Value width.
    in_lanes, out_lanes : int
        Entries per input beat and per output beat (``out_lanes >= in_lanes``).
    index_bits : int
        Index width (the same in and out).
    max_rows : int
        Most rows in a job.
    sparse_layout : Layout
        The PE array's ``sparse`` payload layout.
    """

    def __init__(self, *, width, in_lanes, out_lanes, index_bits, max_rows, sparse_layout):
        check_int("in_lanes", in_lanes, 1)
        check_int("out_lanes", out_lanes, in_lanes)
        self.in_layout = entry_beat(width, in_lanes, index_bits)
        self._in_lanes = in_lanes
        super().__init__({
            "start": In(1),
            "rows": In(range(max_rows + 1)),
            "i": In(stream.Signature(self.in_layout)),
            "o": Out(stream.Signature(sparse_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        held = Signal(self.in_layout)
        held_valid = Signal()
        held_ends = Signal()     # the held beat is its row's last
        rows_done = Signal.like(self.rows)
        beat = self.i.payload
        out = self.o.payload

        def emit(src, row_last):
            stmts = [out.count.eq(src.count), out.row_last.eq(row_last),
                     out.last.eq(row_last & (rows_done + 1 == self.rows))]
            for lane in range(self._in_lanes):
                stmts += [out.index[lane].eq(src.index[lane]), out.value[lane].eq(src.value[lane])]
            return stmts

        with m.If(self.start):
            m.d.sync += [rows_done.eq(0), held_valid.eq(0)]
        with m.Elif(held_valid & held_ends):
            # Finish the held row before taking anything else.
            m.d.comb += [self.o.valid.eq(1), *emit(held, 1)]
            with m.If(self.o.ready):
                m.d.sync += [held_valid.eq(0), rows_done.eq(rows_done + 1)]
        with m.Elif(self.i.valid):
            with m.If(beat.count == 0):
                with m.If(~beat.row_end):
                    m.d.comb += self.i.ready.eq(1)  # nothing to carry
                with m.Elif(held_valid):
                    m.d.comb += [self.o.valid.eq(1), *emit(held, 1), self.i.ready.eq(self.o.ready)]
                    with m.If(self.o.ready):
                        m.d.sync += [held_valid.eq(0), rows_done.eq(rows_done + 1)]
                with m.Else():
                    # A row with no entries: one empty beat.
                    m.d.comb += [self.o.valid.eq(1), *emit(beat, 1), self.i.ready.eq(self.o.ready)]
                    with m.If(self.o.ready):
                        m.d.sync += rows_done.eq(rows_done + 1)
            with m.Else():
                with m.If(held_valid):
                    m.d.comb += [self.o.valid.eq(1), *emit(held, 0), self.i.ready.eq(self.o.ready)]
                with m.Else():
                    m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.ready):
                    m.d.sync += [held.eq(beat), held_valid.eq(1), held_ends.eq(beat.row_end)]
        return m


class ElementsToRows(wiring.Component):
    """Kept elements in row-major order of the PE array's rows (the activation buffer's
    ``rdata``: beats of up to ``lanes`` elements of one buffer row, ``row``, ``col[i]``,
    ``value[i]``), into PE-array row beats of the same entries.

    ``feature`` selects the PE-array row of an element and ``index`` its column: with
    ``transpose`` the buffer's column is the row (a column-order read of ``X~``, one element a
    beat, gives the rows of ``X~`` transposed). Rows with no element become empty beats. The
    element stream gives no sign of a tensor with no elements at all, so the producer's
    completion comes as ``end`` (a pulse); then, once no beat is offered (beats the producer
    sent before it may still be in a register slice in front), the remaining rows are
    closed. ``rows`` (set with ``start``) is the job's row count. One beat passes a cycle.
    """

    def __init__(self, *, width, element_layout, sparse_layout, index_bits, max_features):
        self._index_bits = index_bits
        self._lanes = element_layout["col"].shape.length
        super().__init__({
            "start": In(1),
            "transpose": In(1),
            "rows": In(range(max_features + 1)),
            "end": In(1),
            "i": In(stream.Signature(element_layout)),
            "o": Out(stream.Signature(sparse_layout)),
            "done": Out(1),
        })
        self._max_features = max_features
        self._width = width

    def elaborate(self, platform):
        m = Module()
        lanes = self._lanes
        feature = Signal(range(self._max_features + 1))  # the row being assembled
        held_valid = Signal()
        held_count = Signal(range(lanes + 1))
        held_index = [Signal(self._index_bits, name=f"held_index{i}") for i in range(lanes)]
        held_value = [Signal(signed(self._width), name=f"held_value{i}") for i in range(lanes)]
        ended = Signal()
        e = self.i.payload
        e_feature = Signal(range(max(self._max_features, 1 << len(e.row), 1 << len(e.col[0]))))
        m.d.comb += e_feature.eq(Mux(self.transpose, e.col[0], e.row))
        out = self.o.payload
        is_last_row = Signal()
        over = Signal()  # the producer has ended and its last beat has been taken
        m.d.comb += [is_last_row.eq(feature + 1 == self.rows),
                     over.eq(ended & ~self.i.valid),
                     self.done.eq(ended & (feature == self.rows) & ~held_valid)]

        def emit_held(row_last):
            stmts = [self.o.valid.eq(1), out.count.eq(held_count)]
            for i in range(lanes):
                stmts += [out.index[i].eq(held_index[i]), out.value[i].eq(held_value[i])]
            if row_last:
                stmts += [out.row_last.eq(1), out.last.eq(is_last_row)]
            return stmts

        with m.If(self.start):
            m.d.sync += [feature.eq(0), held_valid.eq(0), ended.eq(0)]
        with m.Else():
            with m.If(self.end):
                m.d.sync += ended.eq(1)
            with m.If(held_valid & ((self.i.valid & (e_feature != feature)) | over)):
                # The held beat is its row's last.
                m.d.comb += emit_held(True)
                with m.If(self.o.ready):
                    m.d.sync += [held_valid.eq(0), feature.eq(feature + 1)]
            with m.Elif(~held_valid & (feature < self.rows)
                        & ((self.i.valid & (e_feature > feature)) | over)):
                # A row with no kept element.
                m.d.comb += [self.o.valid.eq(1), out.count.eq(0), out.row_last.eq(1),
                             out.last.eq(is_last_row)]
                with m.If(self.o.ready):
                    m.d.sync += feature.eq(feature + 1)
            with m.Elif(self.i.valid):
                with m.If(held_valid):
                    m.d.comb += [*emit_held(False), self.i.ready.eq(self.o.ready)]
                with m.Else():
                    m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.ready):
                    m.d.sync += [held_valid.eq(1), held_count.eq(e.count)]
                    for i in range(lanes):
                        m.d.sync += [
                            held_index[i].eq(Mux(self.transpose, e.row, e.col[i])),
                            held_value[i].eq(e.value[i]),
                        ]
        return m
