"""The element-by-element reads of the compressed-activation buffer."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .geometry import MemoryWriteSignature

__all__ = ["ElementWalk"]


class ElementWalk(wiring.Component):
    """Walks a stored tensor element by element: column by column, or densely in row order.

    Each element takes two cycles: one reads its value word (and, a cycle ahead, the bitmap
    word of the element after it), the next emits it, one a beat. A column walk (``dense``
    low) keeps a cursor per row in the cursor memory, filled beforehand by a first pass of
    :class:`RowScan`: it emits only the kept elements and moves the cursor of each one's row
    on, so nothing is expanded to dense. A dense walk emits every element, dropped ones as
    zeros, its values in row order.

    No state logic reaches a memory's address: the bitmap address and the value cursor are
    registers, and the cursor memory's output goes only to a register.

    Parameters
    ----------
    geometry : :class:`hw.act_buffer.BufferGeometry`

    Attributes
    ----------
    start : Signal, in
        Begin a walk of the tensor of ``desc`` from its first element.
    dense : Signal, in
        Every element in row order (else the kept elements in column order), held.
    desc, desc_n : Signal, in
        The tensor's descriptor and its ``n``, held.
    bitmap_addr, bitmap_data : Signal, out, in
        The bitmap memory's read port.
    value_addr, value_en, value_data : Signal, out, out, in
        The value memory's read port: the word of ``value_en``'s cycle stays on ``value_data``
        until the next ``value_en``.
    value_owned : Signal, out
        ``value_addr`` drives the value port (from the walk's start to its end).
    cursor_addr, cursor_data : Signal, out, in
        The cursor memory's read port.
    cursor_write : Out(MemoryWriteSignature(...))
        The cursor memory's write port.
    o : Out(stream.Signature(rdata_layout))
        The elements, one a beat.
    busy : Signal, out
        The walk runs (from the cycle after ``start`` to ``done``).
    done : Signal, out
        The walk ends in this cycle (its last beat taken).
    """

    def __init__(self, geometry):
        self.geometry = g = geometry
        super().__init__({
            "start": In(1),
            "dense": In(1),
            "desc": In(g.descriptor_layout),
            "desc_n": In(g.descriptor_layout["n"].shape),
            "bitmap_addr": Out(g.bitmap_addr_width),
            "bitmap_data": In(g.word_bits),
            "value_addr": Out(g.value_addr_width),
            "value_en": Out(1),
            "value_data": In(g.lanes * g.width),
            "value_owned": Out(1),
            "cursor_addr": Out(g.cursor_addr_width),
            "cursor_data": In(g.cursor_shape),
            "cursor_write": Out(MemoryWriteSignature(g.cursor_addr_width, g.cursor_shape.width)),
            "o": Out(stream.Signature(g.rdata_layout)),
            "busy": Out(1),
            "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geometry
        desc, dense, beat = self.desc, self.dense, self.o.payload
        wb = (g.word_bits - 1).bit_length()  # bits of an element's position in its word
        lane_bits = (g.lanes - 1).bit_length()
        row = Signal(range(g.max_rows + 1))
        col = Signal(range(g.max_cols + 1))
        flat = Signal(range(g.max_rows * g.max_cols + 1))
        flat_next = Signal.like(flat)  # the position the walk moves to
        to_emit = Signal(g.count_shape)  # kept elements still to send
        m.d.comb += flat_next.eq(flat)
        m.d.sync += flat.eq(flat_next)
        # The bitmap word of ``flat`` is read from a register: the address of the position
        # the walk moves to is computed a cycle ahead, so the word is there when needed.
        bitmap_addr = Signal.like(self.bitmap_addr)
        m.d.sync += bitmap_addr.eq(desc.bitmap_base + (flat_next >> wb))
        m.d.comb += self.bitmap_addr.eq(bitmap_addr)
        bit = Signal()
        m.d.comb += bit.eq(self.bitmap_data.bit_select(flat[:wb] if wb else 0, 1))

        # ``cursor`` is the walk's next value: an index into the whole value memory, so that
        # a cursor read from the cursor memory needs no adder. Its word is on the port from
        # the next cycle, for ``held_ptr``.
        cursor = Signal(g.cursor_shape)
        value_start = Signal(g.count_shape)  # the tensor's first value, as a cursor
        held_ptr = Signal(g.count_shape)
        m.d.comb += [value_start.eq(desc.value_base << lane_bits),
                     self.value_addr.eq(cursor >> lane_bits)]
        with m.If(self.value_en):
            m.d.sync += held_ptr.eq(cursor)
        walk_value = Signal(signed(g.width))
        m.d.comb += walk_value.eq(self.value_data.word_select(
            held_ptr[:lane_bits] if lane_bits else 0, g.width))

        out_row = Signal.like(row)
        out_col = Signal.like(col)
        out_kept = Signal()
        out_last = Signal()
        # The row a column walk moves to, whose cursor is read for the next element.
        walk_row_next = Signal.like(row)
        m.d.comb += [walk_row_next.eq(Mux(row + 1 == desc.rows, 0, row + 1)),
                     self.cursor_addr.eq(row)]

        with m.If(self.start):
            m.d.sync += [row.eq(0), col.eq(0), to_emit.eq(desc.kept), cursor.eq(value_start),
                         self.value_owned.eq(1)]
            m.d.comb += flat_next.eq(0)

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.next = "FIRST_VALUE"

            with m.State("FIRST_VALUE"):
                # The bitmap word of the first element is read in this cycle, and its value.
                m.d.comb += self.value_en.eq(1)
                m.next = "VALUE"

            with m.State("VALUE"):
                m.d.comb += [self.value_en.eq(1), self.cursor_addr.eq(walk_row_next)]
                m.d.sync += [out_row.eq(row), out_col.eq(col), out_kept.eq(bit),
                             out_last.eq(Mux(dense, flat + 1 == self.desc_n, to_emit == 1))]
                # The walk moves on whatever the bit is, and the bit goes only to a register
                # (``out_kept``): the bitmap's output, the slowest signal here, reaches no
                # address, write enable or state; OUT acts on it a cycle later.
                with m.If(~dense):
                    with m.If(row + 1 == desc.rows):
                        m.d.sync += [row.eq(0), col.eq(col + 1)]
                        m.d.comb += flat_next.eq(col + 1)
                    with m.Else():
                        m.d.sync += row.eq(row + 1)
                        m.d.comb += flat_next.eq(flat + desc.cols)
                with m.Else():
                    m.d.comb += flat_next.eq(flat + 1)
                    with m.If(col + 1 == desc.cols):
                        m.d.sync += [col.eq(0), row.eq(row + 1)]
                    with m.Else():
                        m.d.sync += col.eq(col + 1)
                m.next = "OUT"

            with m.State("OUT"):
                # The value word read in VALUE is on the port (held: en is low). A column walk
                # passes an element not kept in this cycle, with no beat.
                send = out_kept | dense
                m.d.comb += [
                    self.o.valid.eq(send),
                    beat.row.eq(out_row),
                    beat.count.eq(1),
                    beat.col[0].eq(out_col),
                    beat.value[0].eq(Mux(out_kept, walk_value, 0)),
                    beat.last.eq(out_last),
                ]
                with m.If(~dense & out_kept):
                    # The kept element's row cursor moves on (the same write while the beat
                    # waits).
                    m.d.comb += [self.cursor_write.en.eq(1), self.cursor_write.addr.eq(out_row),
                                 self.cursor_write.data.eq(held_ptr + 1)]
                with m.If(~send | self.o.ready):
                    m.d.sync += to_emit.eq(to_emit - out_kept)
                    # The next element's value: a column walk's is the cursor memory's (read
                    # with the row the walk moved to, which ``row`` now holds), or for a
                    # one-row tensor this element's cursor moved on (the write above is too
                    # late for a read); a dense walk's is the next in row order.
                    m.d.sync += cursor.eq(Mux(~dense & (desc.rows != 1), self.cursor_data,
                                              held_ptr + out_kept))
                    with m.If(send & out_last):
                        m.d.comb += self.done.eq(1)
                        m.d.sync += self.value_owned.eq(0)
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "VALUE"
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        return m
