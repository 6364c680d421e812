"""The compressed-activation buffer: its commands, and the component that joins its parts."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith import times_constant
from ..mask_packer import compressed_beat
from ..memory import SimpleDualPortMemory, TwoReadMemory
from ..skid_buffer import SkidBuffer
from .conv_scan import SegmentScan
from .conv_segments import SegmentWalk
from .directory import DirectoryBuilder
from .geometry import BufferGeometry
from .row_scan import RowScan
from .table import TensorTable
from .walk import ElementWalk
from .writer import TensorWriter

__all__ = ["ActOp", "ActivationBuffer"]


class ActOp(enum.Enum, shape=3):
    #: Store the compressed tensor that follows on ``wdata`` under ``slot``.
    WRITE = 0
    #: Stream the kept elements of ``slot`` row by row.
    READ_ROWS = 1
    #: Stream the kept elements of ``slot`` column by column (the weight gradient's order).
    READ_COLS = 2
    #: Stream every element of ``slot``, dropped ones as zeros (for checks).
    READ_DENSE = 3
    #: Release ``slot``; its space returns when every tensor written after it is released too.
    FREE = 4
    #: Stream the weight gradient's im2col rows of the feature maps of ``slot`` (see ``conv``).
    READ_CONV = 5


class ActivationBuffer(wiring.Component):
    """Stores a layer's top-K sparsified activations as a bitmap plus packed values.

    The semantics are those of :class:`golden.act_buffer.ActivationBuffer`: bitmap plus packed
    values (the smallest encoding at SWAT's densities), stack allocation, a descriptor table of
    ``max_tensors`` slots, and refusal of a write that does not fit.

    ``wdata`` takes the top-K selector's compressed stream (:class:`hw.mask_packer.MaskPacker`'s
    ``out``) at its full rate, one beat per cycle: the bitmap bits are packed into
    ``word_bits``-bit words, and the packer's full value words (``lanes`` values) are written as
    they come, alternately into two banks so that any ``lanes`` consecutive values can be read
    in one cycle. Each tensor starts on a word boundary of both memories.

    A row read scans one bitmap word a cycle and emits up to ``lanes`` kept elements of one row
    a beat: a cycle per word and row segment, or ``ceil(kept / lanes)`` cycles for a segment
    holding more kept elements than that; it ends at the last kept element. A column read (the
    transposed order) first scans the bitmap the same way to find where each row's values
    start, then walks column by column with a cursor per row, one element a beat, so nothing is
    expanded to dense: an element takes two cycles. A dense read walks every element the same
    way, one a beat, two cycles each.

    A write with ``directory`` also stores the tensor's *directory* in a third memory: one entry
    per block of two bitmap words of the tensor (words ``2b`` and ``2b + 1`` counted from the
    tensor's first), holding the tensor's kept values before the block and the kept bits of the
    block's first word, so that the value of any bit is found from one entry and a popcount
    within its word. Directory entries are allocated as a third stack beside the bitmap and
    values. A conv read (``READ_CONV``) reads a tensor holding a convolution's input ``X~``
    (N, C, H, W), its planes in (channel, image) order (:mod:`golden.feature_maps`), written
    with a directory, and streams the weight gradient's im2col rows built on read: for every
    feature ``f = ((c - first_channel) * kernel + ky) * kernel + kx`` of the channels asked, in
    increasing order, the kept elements of its row within the output rows asked, ``col`` being
    ``(r - first_out_row) * out_w + ox`` for output row ``r = n * out_h + oy``, increasing; a
    row without kept elements gives no beat, and ``last`` is 0 (the result ends the read). A
    :class:`SegmentWalk` gives each feature's stored segments (a segment per input row, or,
    for a "same" stride-1 conv, per image: its rows from first to last, the columns out of
    range between them filtered out) and a :class:`SegmentScan` reads them: a bitmap word a
    cycle, each with its directory entry, and up to ``lanes`` elements a beat (whose values lie
    in the value word the last beat read and the one after it), so a cycle per word of a
    segment, plus one per extra beat; a beat passes over the values of the bits it does not
    emit (at stride 2 the columns between, in a span the columns out of range). A conv read
    is refused, with no beats, for a slot without a tensor or a directory, or a geometry the
    walk refuses (see :class:`SegmentWalk`).

    Built without ``conv_read`` (for small parts), the buffer has no directory memory,
    :class:`DirectoryBuilder`, :class:`SegmentWalk` or :class:`SegmentScan`: a write with
    ``directory`` is refused as one that does not fit, and a conv read is refused with no
    beats. Its ports are the same.

    A write that does not fit (bitmap, values, directory or table), whose slot is taken, or
    whose length differs from ``rows * cols`` is refused: its stream is consumed, nothing stored is touched
    (a write only ever fills space above the stack's top, which it claims at the end), and the
    result reports ``error``.

    This component runs the commands and joins the parts that do the work: a
    :class:`TensorTable` (descriptors and stack allocation), a :class:`TensorWriter`, a
    :class:`RowScan` (row reads, and a column read's first pass), an :class:`ElementWalk`
    (column and dense reads), a :class:`DirectoryBuilder` (directories, as a write's bitmap
    words are written), and a :class:`SegmentWalk` and :class:`SegmentScan` (conv reads). It
    holds the four memories (bitmap, values, directory, and the column walk's cursors; three
    without ``conv_read``) and gives their read ports to the read that runs.

    Parameters
    ----------
    width : int
        Activation width (signed).
    lanes : int
        Elements per beat of the write stream and of a row read; a power of two.
    word_bits : int
        Bits of a bitmap word, scanned in one cycle by a row read; a power of two, at least
        ``lanes``.
    bitmap_capacity : int
        Bitmap bits stored (rounded up to whole words).
    value_capacity : int
        Kept values stored (rounded up to whole words of ``lanes`` values).
    max_tensors : int
        Descriptor table slots.
    max_rows, max_cols : int
        Largest shape of a stored matrix.
    wdata_layout : StructLayout
        A beat of the compressed stream (:func:`hw.mask_packer.compressed_beat`); its entries
        may be a multiple of ``lanes`` (a wider selector's words are written ``lanes`` values
        a cycle, see :class:`hw.act_buffer.TensorWriter`).
    conv_read : bool
        Build the directories and the conv read (``READ_CONV``); without it both are refused.
    conv_words : int
        Bitmap words a conv read scans a cycle: 1, or 2 (two words of a segment a cycle, each
        with its own read port of the bitmap, directory and value memories; beats of up to
        ``2 * lanes`` elements). The second read ports share the write's port of each block
        RAM (memories that are never read and written in the same cycle), so they cost no
        block RAM.

    Attributes
    ----------
    cmd : In(stream.Signature(cmd_layout))
        ``op`` (:class:`ActOp`), ``slot``; ``rows``, ``cols`` and ``directory`` (``WRITE``
        only); ``conv`` (``READ_CONV`` only, :attr:`BufferGeometry.conv_layout`): ``images``,
        ``height``, ``width``, ``out_h``, ``out_w``, ``kernel`` (1 to 7), ``stride`` (1 or 2),
        ``padding`` (0 to 3, below ``kernel``), ``first_channel``, ``channels``,
        ``first_out_row``, ``out_rows``.
    wdata : In(stream.Signature(...))
        The compressed tensor of a ``WRITE`` (the top-K selector's ``out`` layout).
    rdata : Out(stream.Signature(rdata_layout))
        Elements of one row a beat: ``row``, ``count`` (valid lanes ``0..count-1``), ``col``
        and ``value`` (``lanes * conv_words`` each), ``last``. Row reads fill up to ``lanes``,
        conv reads up to ``lanes * conv_words``; column and dense reads carry one element a
        beat.
    result : Out(stream.Signature(result_layout))
        One per command: ``op``, ``slot``, ``error``, ``n``, ``kept``, ``stored_bits`` (of the
        slot: ``n + kept * width``, plus ``ceil(n / (2 * word_bits)) * directory_entry_bits``
        with a directory).
    bitmap_used, values_used : Signal, out
        Occupancy, in bits and in values (whole words).
    geometry : BufferGeometry
        The sizes and layouts its parts are built from.

    Raises
    ------
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, *, width, lanes, word_bits, bitmap_capacity, value_capacity, max_tensors,
                 max_rows, max_cols, wdata_layout, conv_read=True, conv_words=1):
        self.geometry = g = BufferGeometry(
            width=width, lanes=lanes, word_bits=word_bits, bitmap_capacity=bitmap_capacity,
            value_capacity=value_capacity, max_tensors=max_tensors, max_rows=max_rows,
            max_cols=max_cols, conv_read=conv_read, conv_words=conv_words)
        self.conv_read = g.conv_read
        self.width = width
        self.lanes = lanes
        self.word_bits = word_bits
        self.bitmap_words = g.bitmap_words
        self.value_words = g.value_words
        self.max_tensors = max_tensors
        self.max_rows = max_rows
        self.max_cols = max_cols
        self.wdata_layout = wdata_layout
        self.cmd_layout = data.StructLayout({
            "op": ActOp,
            "slot": self.geometry.slot_shape,
            "rows": range(max_rows + 1),
            "cols": range(max_cols + 1),
            "directory": 1,
            "conv": g.conv_layout,
        })
        self.rdata_layout = g.output_layout
        self.result_layout = data.StructLayout({
            "op": ActOp,
            "slot": self.geometry.slot_shape,
            "error": 1,
            "n": g.count_shape,
            "kept": g.count_shape,
            "stored_bits": range(max_rows * max_cols + (self.value_words * lanes) * width
                                 + g.directory_words * g.directory_entry_bits + 1),
        })
        self.descriptor_layout = g.descriptor_layout
        super().__init__({
            "cmd": In(stream.Signature(self.cmd_layout)),
            "wdata": In(stream.Signature(wdata_layout)),
            "rdata": Out(stream.Signature(self.rdata_layout)),
            "result": Out(stream.Signature(self.result_layout)),
            "bitmap_used": Out(range(self.bitmap_words * word_bits + 1)),
            "values_used": Out(range(self.value_words * lanes + 1)),
        })

    @staticmethod
    def params_from_config(config):
        """The constructor's arguments for an :class:`golden.config.AccelConfig`: the buffer
        takes the top-K selector's compressed stream (words of the selector's lanes)."""
        return {"width": config.width, "lanes": config.buffer_lanes,
                "word_bits": config.act_scan_bits,
                "bitmap_capacity": config.act_bitmap_bits,
                "value_capacity": config.act_values, "max_tensors": config.act_tensors,
                "max_rows": config.act_max_rows, "max_cols": config.act_max_cols,
                "wdata_layout": compressed_beat(config.width, config.selector_lanes,
                                                config.max_tensor_len),
                "conv_read": bool(config.act_conv_read),
                "conv_words": config.conv_read_words}

    @classmethod
    def from_config(cls, config):
        return cls(**cls.params_from_config(config))

    def elaborate(self, platform):
        m = Module()
        g = self.geometry
        # With two conv words a cycle, the memories the conv read reads have a second read
        # port (for its second word).
        two_reads = g.conv_words == 2
        memory = TwoReadMemory if two_reads else SimpleDualPortMemory
        m.submodules.bitmap_mem = bitmap_mem = memory(
            shape=unsigned(g.word_bits), depth=g.bitmap_words)
        m.submodules.value_mem = value_mem = memory(
            shape=unsigned(g.lanes * g.width), depth=g.value_words)
        m.submodules.cursor_mem = cursor_mem = SimpleDualPortMemory(
            shape=g.cursor_shape, depth=g.max_rows)
        m.submodules.table = table = TensorTable(g)
        m.submodules.writer = writer = TensorWriter(g, self.wdata_layout)
        m.submodules.scan = scan = RowScan(g)
        m.submodules.walk = walk = ElementWalk(g)
        conv = self.conv_read  # the directory and the conv read are built
        if conv:
            m.submodules.directory_mem = directory_mem = memory(
                shape=unsigned(g.directory_entry_bits), depth=g.directory_words)
            m.submodules.directory = directory = DirectoryBuilder(g)
            m.submodules.segments = segments = SegmentWalk(g)
            m.submodules.conv_scan = conv_scan = SegmentScan(g, segments.segment_layout)
            wiring.connect(m, segments.o, conv_scan.segments)
        # The reads' beats go through a skid buffer onto ``rdata``, so that the consumer's
        # ready does not reach into the scan's logic.
        m.submodules.rdata_skid = skid = SkidBuffer(self.rdata_layout)
        wiring.connect(m, skid.o, wiring.flipped(self.rdata))

        cmd = Signal(data.StructLayout({"op": ActOp, "slot": self.geometry.slot_shape,
                                        "rows": self.cmd_layout["rows"].shape,
                                        "cols": self.cmd_layout["cols"].shape,
                                        "directory": 1, "conv": g.conv_layout}))
        # A conv read runs: its addresses drive the read ports.
        conv_active = Signal() if conv else Const(0)
        # The conv scan's set-up (from the command's geometry alone) starts in the lookup
        # cycle, from a register set as the command is taken: the tensor's descriptor and the
        # read checks do not reach the set-up's registers.
        conv_prep = Signal()
        m.d.sync += conv_prep.eq(0)
        result = Signal(self.result_layout)
        desc, desc_n = table.desc, table.desc_n
        # The table registers the descriptor of the command's slot a cycle after the command is
        # taken (``LOOKUP``), from the command's register: neither the handshake nor the
        # payload reaches the table's multiplexer.
        m.d.comb += table.slot.eq(cmd.slot)
        m.d.comb += [
            self.result.payload.eq(result),
            self.bitmap_used.eq(table.bitmap_top * g.word_bits),
            self.values_used.eq(table.value_top * g.lanes),
        ]

        wiring.connect(m, wiring.flipped(self.wdata), writer.wdata)
        wiring.connect(m, writer.commit, table.commit)
        m.d.comb += [
            writer.rows.eq(cmd.rows), writer.cols.eq(cmd.cols),
            writer.directory.eq(cmd.directory),
            # A code past the last slot is refused as a taken slot would be.
            writer.taken.eq(desc.valid | (cmd.slot >= self.max_tensors)),
            writer.full.eq(table.full),
            writer.bitmap_top.eq(table.bitmap_top), writer.value_top.eq(table.value_top),
            writer.directory_top.eq(table.directory_top),
        ]
        if conv:
            m.d.comb += [
                directory.start.eq(writer.start),
                directory.enable.eq(cmd.directory),
                directory.directory_top.eq(table.directory_top),
                directory.bitmap_write.en.eq(writer.bitmap_write.en),
                directory.bitmap_write.addr.eq(writer.bitmap_write.addr),
                directory.bitmap_write.data.eq(writer.bitmap_write.data),
                directory_mem.w_en.eq(directory.directory_write.en),
                directory_mem.w_addr.eq(directory.directory_write.addr),
                directory_mem.w_data.eq(directory.directory_write.data),
            ]
        for mem, port in ((bitmap_mem, writer.bitmap_write), (value_mem, writer.value_write)):
            m.d.comb += [mem.w_en.eq(port.en), mem.w_addr.eq(port.addr), mem.w_data.eq(port.data)]

        # The read ports: the scan's addresses while it reads, the walk's otherwise (the value
        # port's choice is a register of the walk's, so no state logic reaches the address).
        m.d.comb += [
            scan.desc.eq(desc), scan.first_pass.eq(cmd.op == ActOp.READ_COLS),
            walk.desc.eq(desc), walk.desc_n.eq(desc_n), walk.dense.eq(cmd.op == ActOp.READ_DENSE),
            scan.bitmap_data.eq(bitmap_mem.r_data), walk.bitmap_data.eq(bitmap_mem.r_data),
            scan.value_data.eq(value_mem.r_data), walk.value_data.eq(value_mem.r_data),
            value_mem.r_en.eq(scan.reading | walk.value_en | conv_active),
            walk.cursor_data.eq(cursor_mem.r_data), cursor_mem.r_addr.eq(walk.cursor_addr),
        ]
        bitmap_addr = Mux(scan.reading, scan.bitmap_addr, walk.bitmap_addr)
        value_addr = Mux(walk.value_owned, walk.value_addr, scan.value_addr)
        if conv:
            bitmap_addr = Mux(conv_active, conv_scan.bitmap_addr[0], bitmap_addr)
            value_addr = Mux(conv_active, conv_scan.value_addr[0], value_addr)
            m.d.comb += [
                segments.conv.eq(cmd.conv), segments.n.eq(desc_n),
                conv_scan.desc.eq(desc), conv_scan.stride2.eq(cmd.conv.stride == 2),
                conv_scan.width.eq(cmd.conv.width),
                conv_scan.start.eq(conv_prep),
                conv_scan.bitmap_data[0].eq(bitmap_mem.r_data),
                conv_scan.value_data[0].eq(value_mem.r_data),
                conv_scan.directory_data[0].eq(directory_mem.r_data),
                directory_mem.r_addr.eq(conv_scan.directory_addr[0]),
            ]
            if two_reads:
                # The second word's ports (read only during a conv read, never with a write).
                for mem, addr, data_in in (
                        (bitmap_mem, conv_scan.bitmap_addr[1], conv_scan.bitmap_data[1]),
                        (value_mem, conv_scan.value_addr[1], conv_scan.value_data[1]),
                        (directory_mem, conv_scan.directory_addr[1],
                         conv_scan.directory_data[1])):
                    m.d.comb += [mem.s_en.eq(conv_active), mem.s_addr.eq(addr),
                                 data_in.eq(mem.s_data)]
        m.d.comb += [bitmap_mem.r_addr.eq(bitmap_addr), value_mem.r_addr.eq(value_addr)]
        # The scan's first pass writes each row's first cursor, the walk moves them on; never
        # in the same cycle.
        for port in (walk.cursor_write, scan.row_start):
            with m.If(port.en):
                m.d.comb += [cursor_mem.w_en.eq(1), cursor_mem.w_addr.eq(port.addr),
                             cursor_mem.w_data.eq(port.data)]
        # A read is either a scan or a walk, and ends once its beats have left, so their beats
        # never meet.
        sources = [scan.o, walk.o] + ([conv_scan.o] if conv else [])
        m.d.comb += skid.i.valid.eq(Cat(o.valid for o in sources).any())
        m.d.comb += [o.ready.eq(skid.i.ready) for o in sources]
        out = skid.i.payload

        def narrow_beat(beat):
            """A beat of ``lanes`` elements in the output's lanes (the rest zero)."""
            return [out.row.eq(beat.row), out.count.eq(beat.count), out.last.eq(beat.last),
                    *[out.col[i].eq(beat.col[i]) for i in range(g.lanes)],
                    *[out.value[i].eq(beat.value[i]) for i in range(g.lanes)]]
        with m.If(scan.o.valid):
            m.d.comb += narrow_beat(scan.o.payload)
        if conv:
            with m.Elif(conv_scan.o.valid):
                m.d.comb += out.eq(conv_scan.o.payload)
        with m.Else():
            m.d.comb += narrow_beat(walk.o.payload)
        # The conv read's parts are busy (never, without them).
        conv_busy = (segments.busy | conv_scan.busy) if conv else Const(0)

        # The bits a tensor takes (bitmap, values, and its directory entries if any), summed a
        # cycle after the terms: ``stored_bits`` loads the terms, and the result waits while
        # ``summing``.
        data_bits = Signal(result.stored_bits.shape())
        directory_bits = Signal(result.stored_bits.shape())
        summing = Signal()
        m.d.sync += summing.eq(0)
        with m.If(summing):
            m.d.sync += result.stored_bits.eq(data_bits + directory_bits)

        def stored_bits(n, kept, has_directory):
            blocks = (n + 2 * g.word_bits - 1) >> (2 * g.word_bits - 1).bit_length()
            return [data_bits.eq(n + times_constant(kept, g.width)),
                    directory_bits.eq(Mux(has_directory,
                                          times_constant(blocks, g.directory_entry_bits), 0)),
                    summing.eq(1)]

        # The read's first cycle (``READ_CHECK``) as a register of its own: the scan's prime
        # starts its first reads' addresses, so no state decoding comes before them.
        priming = Signal()
        m.d.sync += priming.eq(0)
        m.d.comb += scan.prime.eq(priming)

        def finish(error, n, kept):
            m.d.sync += [result.error.eq(error), result.n.eq(n), result.kept.eq(kept)]
            m.next = "RESULT"

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    c = self.cmd.payload
                    m.d.sync += [
                        cmd.op.eq(c.op), cmd.slot.eq(c.slot), cmd.rows.eq(c.rows),
                        cmd.cols.eq(c.cols), cmd.directory.eq(c.directory), cmd.conv.eq(c.conv),
                        result.op.eq(c.op), result.slot.eq(c.slot),
                        result.stored_bits.eq(0), result.error.eq(0),
                    ]
                    m.d.sync += conv_prep.eq(c.op == ActOp.READ_CONV)
                    m.next = "LOOKUP"

            with m.State("LOOKUP"):
                # The table loads the slot's descriptor.
                with m.Switch(cmd.op):
                    with m.Case(ActOp.WRITE):
                        m.d.comb += writer.start.eq(1)
                        m.next = "WRITE"
                    with m.Case(ActOp.FREE):
                        m.next = "FREE"
                    with m.Default():
                        m.d.sync += priming.eq(1)
                        m.next = "READ_CHECK"

            with m.State("WRITE"):
                with m.If(writer.commit.valid):
                    entry = writer.commit.payload
                    m.d.sync += stored_bits(entry.n, entry.kept, entry.directory)
                with m.If(writer.result.valid):
                    verdict = writer.result.payload
                    finish(verdict.error, verdict.n, verdict.kept)

            with m.State("FREE"):
                with m.If(~desc.valid | desc.freed):
                    finish(1, 0, 0)
                with m.Else():
                    m.d.comb += table.free.eq(1)
                    m.d.sync += [*stored_bits(desc_n, desc.kept, desc.directory),
                                 result.n.eq(desc_n), result.kept.eq(desc.kept),
                                 result.error.eq(0)]
                    m.next = "POP"

            with m.State("POP"):
                # Pop freed tensors off the top of the stack; their space returns.
                m.d.comb += table.pop.eq(1)
                with m.If(~table.top_freed):
                    m.next = "RESULT"

            with m.State("READ_CHECK"):
                m.d.sync += [result.n.eq(desc_n), result.kept.eq(desc.kept),
                             *stored_bits(desc_n, desc.kept, desc.directory)]
                # The tensor's first words are read for the scan whatever the read
                # (``priming``).
                with m.If(~desc.valid | desc.freed):
                    finish(1, 0, 0)
                with m.Elif(cmd.op == ActOp.READ_CONV):
                    # Even with no kept element, the walk checks the geometry.
                    if not conv:
                        finish(1, 0, 0)
                    else:
                        with m.If(~desc.directory):
                            finish(1, 0, 0)
                        with m.Else():
                            m.d.comb += segments.start.eq(1)
                            m.d.sync += conv_active.eq(1)
                            m.next = "CONV"
                with m.Elif((cmd.op != ActOp.READ_DENSE) & (desc.kept == 0)):
                    # Nothing to stream: the result alone ends the read.
                    m.next = "RESULT"
                with m.Elif(cmd.op == ActOp.READ_DENSE):
                    m.d.comb += walk.start.eq(1)
                    m.next = "WALK"
                with m.Else():
                    m.d.comb += scan.start.eq(1)
                    m.next = "SCAN"

            with m.State("SCAN"):
                # From the cycle after the scan's end, its state register alone (the end of
                # the scan's loop reaches neither this state nor the walk's registers). A
                # column read walks once its first pass has found where each row starts.
                with m.If(~scan.busy & (cmd.op == ActOp.READ_COLS)):
                    m.d.comb += walk.start.eq(1)
                    m.next = "WALK"
                with m.Elif(~scan.busy):
                    m.next = "RESULT"

            with m.State("WALK"):
                with m.If(walk.done):
                    m.next = "RESULT"

            if conv:
                with m.State("CONV"):
                    # Once the walk has given every segment and the scan has emitted every beat.
                    with m.If(~conv_busy):
                        m.d.sync += conv_active.eq(0)
                        with m.If(segments.error):
                            finish(1, 0, 0)
                        with m.Else():
                            m.next = "RESULT"

            with m.State("RESULT"):
                # After the read's last beat has left (the result ends a read): nothing runs,
                # and the scan's stage and the skid buffer are empty.
                m.d.comb += self.result.valid.eq(~scan.busy & ~walk.busy & ~scan.o.valid
                                                 & ~conv_busy & (skid.occupancy == 0)
                                                 & ~summing)
                with m.If(self.result.valid & self.result.ready):
                    m.next = "IDLE"
        return m
