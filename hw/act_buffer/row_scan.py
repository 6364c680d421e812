"""The row scan of the compressed-activation buffer."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..word_prefetch import WordPrefetch
from .beat_stage import BeatStage
from .geometry import MemoryWriteSignature
from .lane_pick import LanePick

__all__ = ["RowScan"]


class RowScan(wiring.Component):
    """Scans a stored tensor's bitmap in row order, a word a cycle, with its kept values.

    A beat holds up to ``lanes`` kept elements of one row: a cycle per word and row segment, or
    ``ceil(kept / lanes)`` cycles for a segment holding more kept elements than that; the scan
    ends at the last kept element. The scan's loop works from registers only, so that no memory
    and no address adder sit in it: the bitmap word being scanned (the bits a beat has taken
    cleared), the bits of the current row in it, and words read ahead by two
    :class:`hw.word_prefetch.WordPrefetch` queues (the values through a two-word window). A
    word the loop takes leaves its queue a cycle later, from a register: the loop reads past
    it meanwhile, so the queues' shifting is not part of the loop.

    A column read's first pass scans the same way without emitting: it reports where each
    row's values start, for the column walk's cursors, and ends after the last row.

    Parameters
    ----------
    geometry : :class:`hw.act_buffer.BufferGeometry`

    Attributes
    ----------
    prime : Signal, in
        Point at the tensor of ``desc``, from its first element, and read its first words.
    start : Signal, in
        With ``prime``: scan (else the scan stays idle).
    first_pass : Signal, in
        With ``prime``: this is a column read's first pass.
    desc : Signal(descriptor_layout), in
        The tensor's descriptor, held while the scan runs.
    bitmap_addr, bitmap_data, value_addr, value_data : Signal
        The read ports of the bitmap and value memories (``bitmap_addr`` and ``value_addr``
        out, the data in, a cycle after the address).
    busy : Signal, out
        The scan runs (from the cycle after ``start`` to ``done``).
    reading : Signal, out
        The scan reads the memories in this cycle (``prime`` or ``busy``): its addresses drive
        their ports, and the value port is enabled.
    o : Out(stream.Signature(rdata_layout))
        A row read's beats.
    row_start : Out(MemoryWriteSignature(...))
        A first pass's cursor writes: a row's index and its first value's.
    done : Signal, out
        The scan ends in this cycle (its last beat taken, or the first pass's last row).
    """

    def __init__(self, geometry):
        self.geometry = g = geometry
        super().__init__({
            "prime": In(1),
            "start": In(1),
            "first_pass": In(1),
            "desc": In(g.descriptor_layout),
            "bitmap_addr": Out(g.bitmap_addr_width),
            "bitmap_data": In(g.word_bits),
            "value_addr": Out(g.value_addr_width),
            "value_data": In(g.lanes * g.width),
            "busy": Out(1),
            "reading": Out(1),
            "o": Out(stream.Signature(g.rdata_layout)),
            "row_start": Out(MemoryWriteSignature(g.cursor_addr_width, g.cursor_shape.width)),
            "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geometry
        lanes, width, word_bits, desc = g.lanes, g.width, g.word_bits, self.desc
        # Five entries: a word taken stays queued a cycle more (until its pop), and the queues
        # still keep up with a word a cycle.
        m.submodules.bitmap_ahead = bitmap_ahead = WordPrefetch(
            width=word_bits, addr_width=g.bitmap_addr_width, depth=5)
        m.submodules.value_ahead = value_ahead = WordPrefetch(
            width=lanes * width, addr_width=g.value_addr_width, depth=5, heads=3)
        m.submodules.pick = pick = LanePick(word_bits=word_bits, lanes=lanes)
        m.submodules.stage = stage = BeatStage(g)
        wiring.connect(m, stage.o, wiring.flipped(self.o))
        for ahead, base, addr, data in ((bitmap_ahead, desc.bitmap_base, self.bitmap_addr,
                                         self.bitmap_data),
                                        (value_ahead, desc.value_base, self.value_addr,
                                         self.value_data)):
            m.d.comb += [ahead.start.eq(self.prime), ahead.start_addr.eq(base),
                         ahead.mem_data.eq(data), addr.eq(ahead.mem_addr)]

        row = Signal(range(g.max_rows + 1))
        prepass = Signal()  # a column read's first pass
        # Kept elements passed, and still to send (counting down, so that "the last one" is a
        # comparison of a register with a beat's small count, not an adder and a wide
        # comparison). A beat's count reaches both a cycle late, from ``take_late`` (so that no
        # carry chain follows the scan's count of kept bits): the counts as of now are
        # ``vcount + take_late`` and ``to_emit - take_late``.
        vcount = Signal(g.count_shape)
        vcount_next = Signal(g.count_shape)
        to_emit = Signal(g.count_shape)
        to_emit_now = Signal(g.count_shape)
        take_late = Signal(range(lanes + 1))
        m.d.comb += [vcount_next.eq(vcount + take_late), to_emit_now.eq(to_emit - take_late)]
        m.d.sync += [vcount.eq(vcount_next), to_emit.eq(to_emit_now), take_late.eq(0)]
        value_start = Signal(g.count_shape)  # the tensor's first value, as a cursor
        m.d.comb += value_start.eq(desc.value_base << (lanes - 1).bit_length())

        scan_word = Signal(word_bits)
        seg_mask = Signal(word_bits)  # the bits of the current row in the word
        from_lo = Signal(word_bits)  # the bits from the segment's first on
        seg_hi = Signal(range(word_bits + g.max_cols + 1))  # where the row ends, in bits
        col_bias = Signal(range(g.max_cols))  # a bit's column minus its position
        value_offset = Signal(range(max(lanes, 2)))  # of the next value in the first word
        segment = Signal(word_bits)
        m.d.comb += [segment.eq(scan_word & seg_mask), pick.segment.eq(segment)]
        # The words the loop took last cycle, popped this cycle (from these registers).
        value_lag = Signal()
        bitmap_lag = Signal()
        m.d.sync += [value_lag.eq(0), bitmap_lag.eq(0)]
        window = Mux(value_lag, Cat(value_ahead.head[1], value_ahead.head[2]),
                     Cat(value_ahead.head[0], value_ahead.head[1]))
        next_word = Mux(bitmap_lag, bitmap_ahead.head[1], bitmap_ahead.head[0])
        value_step = Signal(range(2 * lanes))
        m.d.comb += value_step.eq(value_offset + pick.take)

        # The segment after this one, from registers only (no part of the scan's loop). Three
        # cases: the row ends inside the word (the next row's segment follows in it), at its
        # end, or beyond it (the row goes on in the next word). Only an adder and a comparison
        # per bit lie between these registers and the next segment's mask.
        row_ends = Signal()  # the row ends in this word
        word_done = Signal()  # the segment ends at the end of the word
        next_hi = Signal.like(seg_hi)
        next_from = Signal(word_bits)
        next_bias = Signal.like(col_bias)
        next_mask = Signal(word_bits)
        m.d.comb += [
            row_ends.eq(seg_hi <= word_bits),
            word_done.eq(seg_hi >= word_bits),
            next_hi.eq(Mux(~word_done, seg_hi + desc.cols,
                           Mux(row_ends, desc.cols, seg_hi - word_bits))),
            next_from.eq(Mux(word_done, (1 << word_bits) - 1, from_lo & ~seg_mask)),
            next_bias.eq(Mux(~word_done, -seg_hi, Mux(row_ends, 0, col_bias + word_bits))),
        ]
        for j in range(word_bits):
            m.d.comb += next_mask[j].eq(next_from[j] & (j < next_hi))

        with m.If(self.prime):
            m.d.sync += [
                from_lo.eq((1 << word_bits) - 1), seg_hi.eq(desc.cols), col_bias.eq(0),
                row.eq(0), value_offset.eq(0), prepass.eq(self.first_pass),
                to_emit.eq(desc.kept),
            ]
            # A bit beyond the largest column count a descriptor can hold is never in a row.
            widest = (1 << len(desc.cols)) - 1
            m.d.sync += [seg_mask[j].eq((j < desc.cols) if j < widest else 0)
                         for j in range(word_bits)]
            m.d.comb += vcount_next.eq(0)

        # A first pass reports the first row's start as it starts, and each next row's a cycle
        # after the row ends, when ``vcount + take_late`` counts the row's last beat.
        row_started = Signal()
        started_row = Signal.like(self.row_start.addr)
        m.d.sync += row_started.eq(0)
        with m.If(self.start & self.first_pass):
            m.d.comb += [self.row_start.en.eq(1), self.row_start.addr.eq(0),
                         self.row_start.data.eq(value_start)]
        with m.If(row_started):
            m.d.comb += [self.row_start.en.eq(1), self.row_start.addr.eq(started_row),
                         self.row_start.data.eq(value_start + vcount_next)]

        beat = stage.i.payload
        # ``last``: this beat holds the read's last kept element (``take`` is small, so the
        # comparison's wide part comes from registers only).
        m.d.comb += [beat.row.eq(row), beat.count.eq(pick.take), beat.col_bias.eq(col_bias),
                     beat.last.eq(pick.take == to_emit_now)]
        for i in range(lanes):
            m.d.comb += [beat.one_hot[i].eq(pick.one_hot[i]),
                         beat.value[i].eq(window.word_select(value_offset + i, width))]

        m.d.comb += self.reading.eq(self.prime | self.busy)
        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.next = "FIRST_WORD"

            with m.State("FIRST_WORD"):
                # Wait for the first bitmap word; the value queue fills meanwhile.
                with m.If(bitmap_ahead.count != 0):
                    m.d.sync += scan_word.eq(bitmap_ahead.head[0])
                    m.next = "SCAN"

            with m.State("SCAN"):
                emit = ~prepass & segment.any()
                # The queues keep two value words and a bitmap word at hand past the words
                # still to be popped (the check costs no cycle: they refill as fast as the
                # scan takes words).
                ready = ((value_ahead.count >= 2 + value_lag)
                         & (bitmap_ahead.count >= 1 + bitmap_lag))
                m.d.comb += stage.i.valid.eq(emit & ready)
                with m.If(ready & (~emit | stage.i.ready)):
                    m.d.sync += take_late.eq(pick.take)
                    with m.If(value_step >= lanes):
                        m.d.sync += [value_lag.eq(1), value_offset.eq(value_step - lanes)]
                    with m.Else():
                        m.d.sync += value_offset.eq(value_step)
                    with m.If(pick.more):
                        # The rest of the segment's kept elements in the next beat.
                        m.d.sync += scan_word.eq(scan_word & ~pick.taken)
                    with m.Else():
                        m.d.sync += [from_lo.eq(next_from), seg_hi.eq(next_hi),
                                     col_bias.eq(next_bias), seg_mask.eq(next_mask)]
                        with m.If(word_done):
                            m.d.sync += [bitmap_lag.eq(1), scan_word.eq(next_word)]
                        with m.If(row_ends):
                            m.d.sync += row.eq(row + 1)
                            with m.If(prepass & (row + 1 == desc.rows)):
                                m.d.comb += self.done.eq(1)
                                m.next = "IDLE"
                            with m.Elif(prepass):
                                m.d.sync += [row_started.eq(1), started_row.eq(row + 1)]
                    with m.If(emit & beat.last):
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"
        m.d.comb += [self.busy.eq(~fsm.ongoing("IDLE")),
                     value_ahead.pop.eq(value_lag),
                     bitmap_ahead.pop.eq(bitmap_lag | fsm.ongoing("FIRST_WORD")
                                         & (bitmap_ahead.count != 0))]
        return m
