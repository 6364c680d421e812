"""The write path of the compressed-activation buffer."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .geometry import MemoryWriteSignature

__all__ = ["TensorWriter"]


class TensorWriter(wiring.Component):
    """Stores a compressed tensor above the stack's top, and says whether it was stored.

    ``start`` begins a write of a ``rows x cols`` tensor, with a directory if ``directory``.
    The next cycle refuses up front what cannot fit (bitmap, directory or table full, ``taken``
    slot, no elements; a directory at all without the geometry's ``conv_read``). Then ``wdata``
    is taken at its full rate, one beat a cycle, to the beat marked ``last``: the bitmap bits
    are packed into ``word_bits``-bit words, written as they fill, and each value word
    (``lanes`` values, or the tensor's last partial one) is written as it comes; a cycle
    flushes the last partial bitmap word. Words go only above ``bitmap_top`` and
    ``value_top``, so nothing stored is touched, even by a write that is refused (its stream
    is still consumed). The write ports are registers: a word reaches its memory the cycle
    after it is decided (the flushed word in the verdict's cycle).

    A stream whose beats carry more entries than the memory's ``lanes`` (a selector wider than
    the buffer) passes its value words through a queue of two: the word at its head is written
    ``lanes`` values a cycle, and the stream waits only while the queue is full. At SWAT's
    densities a beat brings fewer than ``lanes`` values on average, so the writes keep up with
    the bitmap; once the last beat is in, the queue drains before the flush.

    The cycle after the flush, ``result`` reports the verdict: ``error`` if the write was
    refused, did not fit, or its stream's length was not ``rows * cols``; ``n`` and ``kept``
    count the elements and kept values received. In the same cycle ``commit`` carries the
    stored tensor to the table, unless ``error``.

    Parameters
    ----------
    geometry : :class:`hw.act_buffer.BufferGeometry`
    wdata_layout : StructLayout
        A beat of the compressed stream (:func:`hw.mask_packer.compressed_beat`).

    Attributes
    ----------
    start : Signal, in
        Begin a write of ``rows x cols`` (both taken in the same cycle).
    rows, cols : Signal, in
        The tensor's shape.
    directory : Signal, in
        With ``start``: the tensor gets a directory (its entries are written by
        :class:`hw.act_buffer.DirectoryBuilder`).
    taken, full : Signal, in
        The slot already holds a tensor; every slot does.
    bitmap_top, value_top, directory_top : Signal, in
        The stack's top, in words of each memory.
    wdata : In(stream.Signature(wdata_layout))
        The compressed tensor.
    bitmap_write, value_write : Out(MemoryWriteSignature(...))
        The write ports of the bitmap and value memories, from registers.
    commit : Out(stream.Signature(entry_layout, always_ready=True))
        The tensor stored, for the table.
    result : Out(stream.Signature(StructLayout({"error", "n", "kept"}), always_ready=True))
        The write's verdict, once.
    """

    def __init__(self, geometry, wdata_layout):
        self.geometry = geometry
        g = geometry
        self.in_lanes = wdata_layout["entries"].shape.length
        if self.in_lanes % g.lanes or self.in_lanes > g.word_bits:
            raise ValueError(f"a write beat's entries ({self.in_lanes}) must be a multiple of "
                             f"the buffer's lanes ({g.lanes}) and at most its word bits "
                             f"({g.word_bits})")
        self.result_layout = data.StructLayout({
            "error": 1, "n": g.count_shape, "kept": g.count_shape})
        super().__init__({
            "start": In(1),
            "rows": In(range(g.max_rows + 1)),
            "cols": In(range(g.max_cols + 1)),
            "directory": In(1),
            "taken": In(1),
            "full": In(1),
            "bitmap_top": In(range(g.bitmap_words + 1)),
            "value_top": In(range(g.value_words + 1)),
            "directory_top": In(g.descriptor_layout["directory_base"].shape),
            "wdata": In(stream.Signature(wdata_layout)),
            "bitmap_write": Out(MemoryWriteSignature(g.bitmap_addr_width, g.word_bits)),
            "value_write": Out(MemoryWriteSignature(g.value_addr_width, g.lanes * g.width)),
            "commit": Out(stream.Signature(g.entry_layout, always_ready=True)),
            "result": Out(stream.Signature(self.result_layout, always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geometry
        word_bits, lanes = g.word_bits, g.lanes
        wb = (word_bits - 1).bit_length()  # bits of an element's position in its bitmap word
        beat = self.wdata.payload
        bitmap_top, value_top = self.bitmap_top, self.value_top
        # The memories' write ports are driven from registers: each write's address, data and
        # enable are decided a cycle before the memory takes them (the memories are spread
        # over the part, and their routes should start at a flip-flop).
        bitmap_port = MemoryWriteSignature(g.bitmap_addr_width, word_bits).create(
            path=("bitmap_next",))
        value_port = MemoryWriteSignature(g.value_addr_width, lanes * g.width).create(
            path=("value_next",))
        for port, out in ((bitmap_port, self.bitmap_write), (value_port, self.value_write)):
            m.d.sync += [out.en.eq(port.en), out.addr.eq(port.addr), out.data.eq(port.data)]
        entry = self.commit.payload
        rows = Signal.like(self.rows)
        cols = Signal.like(self.cols)
        n = Signal(g.count_shape)  # rows * cols, registered with the command
        in_lanes = self.in_lanes
        bits = Signal(word_bits + in_lanes)  # bitmap bits gathered, fill of them valid
        fill = Signal(range(word_bits + 1))
        elements = Signal(g.count_shape)
        kept = Signal(g.count_shape)
        bitmap_words = Signal(range(g.bitmap_words + 2))  # words written (or refused) so far
        value_words = Signal(range(g.value_words + 2))
        refused = Signal()
        error = Signal()  # refused, or the stream's length was not rows * cols
        merged = Signal(word_bits + in_lanes)
        merged_fill = Signal(range(word_bits + in_lanes + 1))
        need_words = Signal.like(entry.bitmap_words)
        need_entries = Signal.like(entry.directory_words)  # a directory entry per two words
        directory = Signal()
        value_addr = Signal(range(g.value_words + 1))
        m.d.comb += [
            merged.eq(bits | (beat.bitmap << fill)),
            merged_fill.eq(fill + beat.bitmap_count),
            need_words.eq((n + word_bits - 1) >> wb),
            need_entries.eq(Mux(directory, (n + 2 * word_bits - 1) >> (wb + 1), 0)),
            value_addr.eq(value_top + value_words),
            value_port.addr.eq(value_addr),
            entry.rows.eq(rows), entry.cols.eq(cols), entry.n.eq(n), entry.kept.eq(kept),
            entry.bitmap_words.eq(need_words), entry.value_words.eq(value_words),
            entry.directory.eq(directory), entry.directory_words.eq(need_entries),
            self.result.payload.error.eq(error),
            self.result.payload.n.eq(elements),
            self.result.payload.kept.eq(kept),
        ]

        def write_bitmap(word):
            """Write ``word`` to the next bitmap word, if the memory has it."""
            with m.If(bitmap_top + bitmap_words < g.bitmap_words):
                m.d.comb += [bitmap_port.en.eq(1), bitmap_port.addr.eq(bitmap_top + bitmap_words),
                             bitmap_port.data.eq(word)]

        beat_values = Cat(e.value for e in beat.entries)
        take = Signal()  # a beat is taken
        value_room = Signal()  # the value path takes a beat with entries
        value_word = Signal()  # a value word is written this cycle
        values_drained = Signal()  # no value word is pending after this cycle
        if in_lanes == lanes:
            m.d.comb += [value_room.eq(1), value_word.eq(take & (beat.count != 0)),
                         values_drained.eq(1), value_port.data.eq(beat_values)]
        else:
            self._value_queue(m, beat_values, take & (beat.count != 0), value_room, value_word,
                              values_drained, value_port.data)

        with m.If(value_word):
            with m.If(value_addr < g.value_words):
                m.d.comb += value_port.en.eq(1)
            with m.Else():
                m.d.sync += refused.eq(1)
            m.d.sync += value_words.eq(value_words + 1)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [
                        rows.eq(self.rows), cols.eq(self.cols), n.eq(self.rows * self.cols),
                        directory.eq(self.directory),
                        bits.eq(0), fill.eq(0), elements.eq(0), kept.eq(0),
                        bitmap_words.eq(0), value_words.eq(0), refused.eq(0),
                    ]
                    m.next = "CHECK"

            with m.State("CHECK"):
                # Refuse up front what cannot fit; the stream is still consumed.
                # Without conv reads there are no directory words, so a directory never fits.
                with m.If(self.taken | self.full | (bitmap_top + need_words > g.bitmap_words)
                          | (self.directory_top + need_entries > g.directory_words)
                          | (n == 0)):
                    m.d.sync += refused.eq(1)
                m.next = "STREAM"

            with m.State("STREAM"):
                m.d.comb += [self.wdata.ready.eq(value_room),
                             take.eq(self.wdata.valid & value_room)]
                with m.If(take):
                    m.d.sync += [elements.eq(elements + beat.bitmap_count),
                                 kept.eq(kept + beat.count)]
                    with m.If(elements + beat.bitmap_count > n):
                        m.d.sync += refused.eq(1)
                    # Bitmap bits: write a word whenever one fills.
                    with m.If(merged_fill >= word_bits):
                        write_bitmap(merged[:word_bits])
                        m.d.sync += [
                            bitmap_words.eq(bitmap_words + 1),
                            bits.eq(merged[word_bits:]),
                            fill.eq(merged_fill - word_bits),
                        ]
                    with m.Else():
                        m.d.sync += [bits.eq(merged), fill.eq(merged_fill)]
                    with m.If(beat.last):
                        m.next = "FLUSH" if in_lanes == lanes else "DRAIN"

            with m.State("DRAIN"):
                with m.If(values_drained):
                    m.next = "FLUSH"

            with m.State("FLUSH"):
                with m.If(fill != 0):
                    write_bitmap(bits[:word_bits])
                # The verdict, registered: it enables every descriptor field of the slot, a
                # wide fan-out that should start at a flip-flop.
                m.d.sync += error.eq(refused | (elements != n))
                m.next = "VERDICT"

            with m.State("VERDICT"):
                m.d.comb += [self.result.valid.eq(1), self.commit.valid.eq(~error)]
                m.next = "IDLE"
        return m

    def _value_queue(self, m, beat_values, push, room, word, drained, data_out):
        """Two words of ``in_lanes`` values: ``head`` is written ``lanes`` values a cycle (it
        shifts down, so the memory's data, ``data_out``, is a fixed slice), ``spare`` waits
        behind it. A beat is taken while ``spare`` is free (``room``, from a register)."""
        g = self.geometry
        lanes, in_lanes = g.lanes, self.in_lanes
        count = self.wdata.payload.count
        chunk = lanes * g.width
        head = Signal(in_lanes * g.width)
        head_left = Signal(range(in_lanes + 1))  # values of ``head`` not yet written
        spare = Signal(in_lanes * g.width)
        spare_count = Signal(range(in_lanes + 1))
        head_last = Signal()  # this cycle writes ``head``'s last values
        m.d.comb += [
            head_last.eq((head_left != 0) & (head_left <= lanes)),
            room.eq(spare_count == 0),
            word.eq(head_left != 0),
            drained.eq(((head_left == 0) | head_last) & (spare_count == 0)),
            data_out.eq(head[:chunk]),
        ]
        with m.If((head_left == 0) | head_last):
            with m.If(spare_count != 0):
                m.d.sync += [head.eq(spare), head_left.eq(spare_count), spare_count.eq(0)]
            with m.Elif(push):
                m.d.sync += [head.eq(beat_values), head_left.eq(count)]
            with m.Else():
                m.d.sync += head_left.eq(0)
        with m.Else():
            m.d.sync += [head.eq(head[chunk:]), head_left.eq(head_left - lanes)]
            with m.If(push):
                m.d.sync += [spare.eq(beat_values), spare_count.eq(count)]
