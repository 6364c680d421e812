"""The compressed-activation buffer: SWAT's saved sparse activations, stored compressed on chip."""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from .mask_packer import compressed_beat
from .memory import SimpleDualPortMemory
from .skid_buffer import SkidBuffer
from .validate import check_int
from .word_prefetch import WordPrefetch

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

    A write that does not fit (bitmap, values or table), whose slot is taken, or whose length
    differs from ``rows * cols`` is refused: its stream is consumed, nothing stored is touched
    (a write only ever fills space above the stack's top, which it claims at the end), and the
    result reports ``error``.

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

    Attributes
    ----------
    cmd : In(stream.Signature(cmd_layout))
        ``op`` (:class:`ActOp`), ``slot``, ``rows``, ``cols`` (``WRITE`` only).
    wdata : In(stream.Signature(...))
        The compressed tensor of a ``WRITE`` (the top-K selector's ``out`` layout).
    rdata : Out(stream.Signature(rdata_layout))
        Elements of one row a beat: ``row``, ``count`` (valid lanes ``0..count-1``), ``col``
        and ``value`` (``lanes`` each), ``last``. Row reads fill up to ``lanes``; column and
        dense reads carry one element a beat.
    result : Out(stream.Signature(result_layout))
        One per command: ``op``, ``slot``, ``error``, ``n``, ``kept``, ``stored_bits`` (of the
        slot: ``n + kept * width``).
    bitmap_used, values_used : Signal, out
        Occupancy, in bits and in values (whole words).

    Raises
    ------
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, *, width, lanes, word_bits, bitmap_capacity, value_capacity, max_tensors,
                 max_rows, max_cols, wdata_layout):
        check_int("width", width, 2)
        check_int("lanes", lanes, 1)
        if lanes & (lanes - 1):
            raise ValueError(f"lanes must be a power of two, not {lanes}")
        check_int("word_bits", word_bits, lanes)
        if word_bits & (word_bits - 1):
            raise ValueError(f"word_bits must be a power of two, not {word_bits}")
        check_int("bitmap_capacity", bitmap_capacity, 1)
        check_int("value_capacity", value_capacity, 1)
        check_int("max_tensors", max_tensors, 1)
        check_int("max_rows", max_rows, 1)
        check_int("max_cols", max_cols, 1)
        self.width = width
        self.lanes = lanes
        self.word_bits = word_bits
        self.bitmap_words = -(-bitmap_capacity // word_bits)
        self.value_words = -(-value_capacity // lanes)
        self.max_tensors = max_tensors
        self.max_rows = max_rows
        self.max_cols = max_cols
        self.wdata_layout = wdata_layout
        max_n = max_rows * max_cols
        count_shape = range(max(max_n, self.value_words * lanes) + 1)
        self.cmd_layout = data.StructLayout({
            "op": ActOp,
            "slot": range(max_tensors),
            "rows": range(max_rows + 1),
            "cols": range(max_cols + 1),
        })
        self.rdata_layout = data.StructLayout({
            "row": range(max_rows),
            "count": range(lanes + 1),
            "col": data.ArrayLayout(range(max_cols), lanes),
            "value": data.ArrayLayout(signed(width), lanes),
            "last": 1,
        })
        self.result_layout = data.StructLayout({
            "op": ActOp,
            "slot": range(max_tensors),
            "error": 1,
            "n": count_shape,
            "kept": count_shape,
            "stored_bits": range(max_n + (self.value_words * lanes) * width + 1),
        })
        self.descriptor_layout = data.StructLayout({
            "valid": 1,
            "freed": 1,
            "bitmap_base": range(self.bitmap_words + 1),
            "value_base": range(self.value_words + 1),
            "rows": range(max_rows + 1),
            "cols": range(max_cols + 1),
            "n": range(max_n + 1),  # rows * cols, kept so that no read multiplies
            "kept": count_shape,
        })
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
        takes the top-K selector's compressed stream."""
        return {"width": config.width, "lanes": config.topk_lanes,
                "word_bits": config.act_scan_bits,
                "bitmap_capacity": config.act_bitmap_bits,
                "value_capacity": config.act_values, "max_tensors": config.act_tensors,
                "max_rows": config.act_max_rows, "max_cols": config.act_max_cols,
                "wdata_layout": compressed_beat(config.width, config.topk_lanes,
                                                config.max_tensor_len)}

    @classmethod
    def from_config(cls, config):
        return cls(**cls.params_from_config(config))

    def elaborate(self, platform):
        m = Module()
        lanes, width, word_bits = self.lanes, self.width, self.word_bits
        # The read walks drive ``rd``; a skid buffer registers it onto ``rdata`` so that the
        # consumer's ready does not reach into the scan's logic.
        m.submodules.rdata_skid = skid = SkidBuffer(self.rdata_layout)
        rd = skid.i
        wiring.connect(m, skid.o, wiring.flipped(self.rdata))
        lane_bits = (lanes - 1).bit_length()
        wb = (word_bits - 1).bit_length()  # bits of an element's position in its bitmap word

        m.submodules.bitmap_mem = bitmap_mem = SimpleDualPortMemory(
            shape=unsigned(word_bits), depth=self.bitmap_words)
        m.submodules.value_mem = value_mem = SimpleDualPortMemory(
            shape=unsigned(lanes * width), depth=self.value_words)
        bitmap_wp, bitmap_rp = bitmap_mem.write_port(), bitmap_mem.read_port()
        value_wp, value_rp = value_mem.write_port(), value_mem.read_port()
        m.submodules.ptr_mem = ptr_mem = SimpleDualPortMemory(shape=unsigned(len(Signal(range(
            self.value_words * lanes + 1)))), depth=self.max_rows)
        ptr_wp = ptr_mem.write_port()
        ptr_rp = ptr_mem.read_port()
        # A column read's first pass writes each row's first cursor through these registers.
        ptr_late = Signal()
        ptr_late_addr = Signal.like(ptr_wp.addr)
        m.d.sync += ptr_late.eq(0)

        table = [Signal(self.descriptor_layout, name=f"slot{s}") for s in range(self.max_tensors)]
        stack = [Signal(range(self.max_tensors), name=f"stack{s}")
                 for s in range(self.max_tensors)]
        depth = Signal(range(self.max_tensors + 1))
        # The stack's top slot, stack[depth - 1], in a register (a pop's descriptor is then one
        # mux away, not two), and the slot below it, which a pop moves there.
        top_slot = Signal(range(self.max_tensors))
        below_slot = Signal(range(self.max_tensors))
        with m.Switch(depth):
            for s in range(2, self.max_tensors + 1):
                with m.Case(s):
                    m.d.comb += below_slot.eq(stack[s - 2])
        bitmap_top = Signal(range(self.bitmap_words + 1))  # in words
        value_top = Signal(range(self.value_words + 1))
        m.d.comb += [
            self.bitmap_used.eq(bitmap_top * word_bits),
            self.values_used.eq(value_top * lanes),
        ]

        cmd = Signal(self.cmd_layout)
        # The descriptor of cmd.slot, registered (the table's mux stays out of the walks'
        # paths): loaded with the command, then following the table a cycle behind (no state
        # reads it in the cycle after it changes).
        desc = Signal(self.descriptor_layout)
        desc_n = Signal(range(self.max_rows * self.max_cols + 1))  # rows * cols
        slot_next = Signal.like(cmd.slot)
        m.d.comb += slot_next.eq(cmd.slot)
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.comb += slot_next.eq(self.cmd.payload.slot)
        with m.Switch(slot_next):
            for s in range(self.max_tensors):
                with m.Case(s):
                    m.d.sync += [desc.eq(table[s]), desc_n.eq(table[s].n)]

        result = Signal(self.result_layout)
        m.d.comb += self.result.payload.eq(result)

        # -- write: pack bitmap bits into words; write the packer's value words ------------
        wbeat = self.wdata.payload
        bits = Signal(word_bits + lanes)  # bitmap bits gathered, fill of them valid
        fill = Signal(range(word_bits + 1))
        w_elements = Signal.like(result.n)
        w_kept = Signal.like(result.kept)
        w_bitmap_words = Signal(range(self.bitmap_words + 2))
        w_value_words = Signal(range(self.value_words + 2))
        w_refused = Signal()
        w_error = Signal()  # refused, or the stream's length was not the command's
        merged = Signal(word_bits + lanes)
        m.d.comb += merged.eq(bits | (wbeat.bitmap << fill))
        merged_fill = Signal(range(word_bits + lanes + 1))
        m.d.comb += merged_fill.eq(fill + wbeat.bitmap_count)
        need_words = Signal(range(self.max_rows * self.max_cols // word_bits + 2))
        n_cmd = Signal.like(result.n)  # rows * cols of the command, registered with it
        m.d.comb += [
            need_words.eq((n_cmd + word_bits - 1) >> wb),
        ]
        value_waddr = Signal(range(self.value_words + 1))
        m.d.comb += value_waddr.eq(value_top + w_value_words)
        m.d.comb += [value_wp.addr.eq(value_waddr),
                     value_wp.data.eq(Cat(e.value for e in wbeat.entries))]

        # -- reads -------------------------------------------------------------------------
        row = Signal(range(self.max_rows + 1))
        col = Signal(range(self.max_cols + 1))
        flat = Signal(range(self.max_rows * self.max_cols + 1))
        flat_next = Signal.like(flat)  # a column or dense walk's next position
        vcount = Signal.like(result.kept)  # kept elements passed, in row order
        vcount_next = Signal.like(vcount)
        prepass = Signal()  # a column read's first scan, which fills ptr_mem
        # Kept elements still to send (counting down, so that "the last one" is a comparison
        # of this register with a beat's small count, not an adder and a wide comparison).
        to_emit = Signal.like(vcount)
        # A row scan's beat count reaches ``vcount`` and ``to_emit`` a cycle late, from this
        # register (so that no carry chain follows the scan's count of kept bits): the counts
        # as of now are ``vcount + take_late`` and ``to_emit - take_late``.
        take_late = Signal(range(self.lanes + 1))
        to_emit_now = Signal.like(to_emit)
        m.d.comb += [flat_next.eq(flat), vcount_next.eq(vcount + take_late),
                     to_emit_now.eq(to_emit - take_late)]
        m.d.sync += [flat.eq(flat_next), vcount.eq(vcount_next), to_emit.eq(to_emit_now),
                     take_late.eq(0)]
        # A column or dense walk reads the bitmap word of ``flat`` from a register: the
        # address of the position the walk moves to is computed a cycle ahead (each element
        # spends two cycles, READ_VALUE and READ_OUT, so the word is read in READ_OUT).
        bitmap_raddr = Signal.like(bitmap_rp.addr)
        m.d.sync += bitmap_raddr.eq(desc.bitmap_base + (flat_next >> wb))
        m.d.comb += [
            bitmap_rp.addr.eq(bitmap_raddr),
            ptr_rp.addr.eq(row),
        ]
        word = bitmap_rp.data
        offset = flat[:wb] if wb else 0
        bit = Signal()
        m.d.comb += bit.eq(word.bit_select(offset, 1))
        last_element = Signal()
        m.d.comb += last_element.eq(flat + 1 == desc_n)  # of a row-order walk

        # A column or dense walk reads the value word of ``cursor`` (the walk's next value: an
        # index into the whole value memory, so that a cursor read from ptr_mem needs no
        # adder); the value is on the port in the next cycle (held while ``en`` is low), for
        # ``held_ptr``. ``value_start`` is the tensor's first value, as such an index. The
        # port's address is one of two registers, chosen by a third (``walk_reads``): the
        # prefetch queue's (scans) or the cursor (walks); no state logic reaches the block
        # RAMs' address inputs (the 4x4 top's slowest path had seven LUTs from the state to
        # them).
        cursor = Signal.like(ptr_rp.data)
        walk_reads = Signal()
        value_en = Signal()
        held_ptr = Signal.like(vcount)
        value_start = Signal.like(vcount)
        m.d.comb += value_start.eq(desc.value_base << lane_bits)
        m.d.comb += [value_rp.en.eq(value_en)]
        with m.If(value_en):
            m.d.sync += held_ptr.eq(cursor)
        walk_value = Signal(signed(width))
        m.d.comb += walk_value.eq(value_rp.data.word_select(
            held_ptr[:lane_bits] if lane_bits else 0, width))

        # The scan of a row read (and of a column read's first pass) works from registers
        # only, so that no memory and no address adder sit in its loop: ``scan_word`` is the
        # bitmap word being scanned (the bits a beat has taken cleared), the next words wait
        # in a prefetch queue (the memories' enables held high, their addresses registered),
        # and ``seg_mask`` marks the bits of the current row in the word. Values come through
        # a two-word window: the first two words of the value queue.
        m.submodules.bitmap_ahead = bitmap_ahead = WordPrefetch(
            width=word_bits, addr_width=len(bitmap_rp.addr))
        m.submodules.value_ahead = value_ahead = WordPrefetch(
            width=lanes * width, addr_width=len(value_rp.addr))
        m.d.comb += [
            bitmap_ahead.mem_data.eq(bitmap_rp.data),
            bitmap_ahead.start_addr.eq(desc.bitmap_base),
            value_ahead.mem_data.eq(value_rp.data),
            value_ahead.start_addr.eq(desc.value_base),
        ]
        scan_word = Signal(word_bits)
        seg_mask = Signal(word_bits)
        from_lo = Signal(word_bits)  # the bits from the segment's first on
        seg_hi = Signal(range(word_bits + self.max_cols + 1))  # where the row ends, in bits
        col_bias = Signal(len(Signal(range(self.max_cols))))  # a bit's column minus its position
        value_offset = Signal(range(max(lanes, 2)))  # of the next value in the first word
        segment = Signal(word_bits)
        m.d.comb += segment.eq(scan_word & seg_mask)
        # ranks[j]: kept elements of the segment before position j, saturated at lanes + 1, by
        # a parallel prefix (log2(word_bits) levels of small adders, not a chain).
        saturate = lanes + 1
        level = [segment[j] for j in range(word_bits)]
        step = 1
        while step < word_bits:
            nxt = []
            for j in range(word_bits):
                if j < step:
                    nxt.append(level[j])
                    continue
                total = Signal(range(saturate + 1), name=f"prefix{step}_{j}")
                wide = level[j] + level[j - step]
                m.d.comb += total.eq(Mux(wide > saturate, saturate, wide))
                nxt.append(total)
            level, step = nxt, step * 2
        ranks = [Signal(range(saturate + 1), name=f"rank{j}") for j in range(word_bits + 1)]
        m.d.comb += ranks[0].eq(0)
        for j in range(word_bits):
            m.d.comb += ranks[j + 1].eq(level[j])
        # Lane i's element, one-hot over the word's positions (at most one matches): the scan
        # registers these, and the beat stage below encodes them.
        one_hot = [Signal(word_bits, name=f"one_hot{i}") for i in range(lanes)]
        for i in range(lanes):
            for j in range(word_bits):
                m.d.comb += one_hot[i][j].eq(segment[j] & (ranks[j] == i))
        taken = Signal(word_bits)  # the bits this beat takes: the segment's first `lanes`
        for j in range(word_bits):
            m.d.comb += taken[j].eq(segment[j] & (ranks[j] < lanes))
        more = Signal()  # more kept elements in the segment than a beat holds
        take = Signal(range(lanes + 1))
        m.d.comb += [more.eq(ranks[word_bits] == lanes + 1),
                     take.eq(Mux(ranks[word_bits] > lanes, lanes, ranks[word_bits]))]
        window = Cat(value_ahead.head[0], value_ahead.head[1])
        values = [Signal(signed(width), name=f"value{i}") for i in range(lanes)]
        for i in range(lanes):
            m.d.comb += values[i].eq(window.word_select(value_offset + i, width))
        value_step = Signal(range(2 * lanes))
        m.d.comb += value_step.eq(value_offset + take)

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
            next_bias.eq(Mux(~word_done, -seg_hi,
                             Mux(row_ends, 0, col_bias + word_bits))),
        ]
        for j in range(word_bits):
            m.d.comb += next_mask[j].eq(next_from[j] & (j < next_hi))

        # A row read's beat waits in this stage before the skid buffer (it takes a new one
        # when empty or when its beat leaves in this cycle): see the end of elaborate.
        stage = Signal(data.StructLayout({
            "row": len(row),
            "count": range(lanes + 1),
            "last": 1,
            "col_bias": len(col_bias),
            "one_hot": data.ArrayLayout(word_bits, lanes),
            "value": data.ArrayLayout(signed(width), lanes),
        }))
        stage_valid = Signal()
        stage_room = Signal()
        m.d.comb += stage_room.eq(~stage_valid | rd.ready)
        with m.If(rd.ready):  # (before the scan's refill, which overrides it)
            m.d.sync += stage_valid.eq(0)

        def start_scan():
            """Set up a scan from the tensor's first element (its first words are read)."""
            m.d.sync += [
                from_lo.eq((1 << word_bits) - 1), seg_hi.eq(desc.cols), col_bias.eq(0),
                row.eq(0), value_offset.eq(0),
            ]
            m.d.comb += [bitmap_ahead.start.eq(1), value_ahead.start.eq(1)]
            for j in range(word_bits):
                m.d.sync += seg_mask[j].eq(j < desc.cols)

        # The column and dense walks: element by element.
        out_row = Signal.like(row)
        out_col = Signal.like(col)
        out_kept = Signal()
        out_last = Signal()

        # A column walk's cursor is the next value of the element's row, from a register: the
        # cursor memory's output goes only to that register, never to the value memory's
        # address. ``walk_row_next`` is the row a column walk moves to.
        walk_row_next = Signal.like(row)
        m.d.comb += walk_row_next.eq(Mux(row + 1 == desc.rows, 0, row + 1))

        def advance():
            """Move to the next element of a column or dense walk."""
            with m.If(cmd.op == ActOp.READ_COLS):
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

        def finish(error, n, kept):
            m.d.sync += [result.error.eq(error), result.n.eq(n), result.kept.eq(kept)]
            m.next = "RESULT"

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += [
                        cmd.eq(self.cmd.payload),
                        n_cmd.eq(self.cmd.payload.rows * self.cmd.payload.cols),
                        result.op.eq(self.cmd.payload.op),
                        result.slot.eq(self.cmd.payload.slot),
                        result.stored_bits.eq(0),
                        result.error.eq(0),
                        row.eq(0), col.eq(0),
                        bits.eq(0), fill.eq(0), w_elements.eq(0), w_kept.eq(0),
                        w_bitmap_words.eq(0), w_value_words.eq(0), w_refused.eq(0),
                        walk_reads.eq(0),
                    ]
                    m.d.comb += [flat_next.eq(0), vcount_next.eq(0)]
                    with m.Switch(self.cmd.payload.op):
                        with m.Case(ActOp.WRITE):
                            m.next = "WRITE_CHECK"
                        with m.Case(ActOp.FREE):
                            m.next = "FREE"
                        with m.Default():
                            m.next = "READ_CHECK"

            # ---- WRITE ---------------------------------------------------------------------
            with m.State("WRITE_CHECK"):
                # Refuse up front what cannot fit; the stream is still consumed.
                with m.If(desc.valid | (depth == self.max_tensors)
                          | (bitmap_top + need_words > self.bitmap_words)
                          | (n_cmd == 0)):
                    m.d.sync += w_refused.eq(1)
                m.next = "WRITE"

            with m.State("WRITE"):
                m.d.comb += self.wdata.ready.eq(1)
                with m.If(self.wdata.valid):
                    m.d.sync += [
                        w_elements.eq(w_elements + wbeat.bitmap_count),
                        w_kept.eq(w_kept + wbeat.count),
                    ]
                    with m.If(w_elements + wbeat.bitmap_count > n_cmd):
                        m.d.sync += w_refused.eq(1)
                    # A value word (full, or the tensor's last partial one).
                    with m.If(wbeat.count != 0):
                        with m.If(value_waddr < self.value_words):
                            m.d.comb += value_wp.en.eq(1)
                        with m.Else():
                            m.d.sync += w_refused.eq(1)
                        m.d.sync += w_value_words.eq(w_value_words + 1)
                    # Bitmap bits: write a word whenever one fills.
                    with m.If(merged_fill >= word_bits):
                        with m.If(bitmap_top + w_bitmap_words < self.bitmap_words):
                            m.d.comb += [
                                bitmap_wp.en.eq(1),
                                bitmap_wp.addr.eq(bitmap_top + w_bitmap_words),
                                bitmap_wp.data.eq(merged[:word_bits]),
                            ]
                        m.d.sync += [
                            w_bitmap_words.eq(w_bitmap_words + 1),
                            bits.eq(merged[word_bits:]),
                            fill.eq(merged_fill - word_bits),
                        ]
                    with m.Else():
                        m.d.sync += [bits.eq(merged), fill.eq(merged_fill)]
                    with m.If(wbeat.last):
                        m.next = "WRITE_FLUSH"

            with m.State("WRITE_FLUSH"):
                with m.If(fill != 0):
                    with m.If(bitmap_top + w_bitmap_words < self.bitmap_words):
                        m.d.comb += [
                            bitmap_wp.en.eq(1),
                            bitmap_wp.addr.eq(bitmap_top + w_bitmap_words),
                            bitmap_wp.data.eq(bits[:word_bits]),
                        ]
                # The write's verdict, registered: it enables every descriptor field of the
                # slot, a wide fan-out that should start at a flip-flop.
                m.d.sync += w_error.eq(w_refused | (w_elements != n_cmd))
                m.next = "WRITE_COMMIT"

            with m.State("WRITE_COMMIT"):
                with m.If(~w_error):
                    for s in range(self.max_tensors):
                        with m.If(cmd.slot == s):
                            m.d.sync += [
                                table[s].valid.eq(1),
                                table[s].freed.eq(0),
                                table[s].bitmap_base.eq(bitmap_top),
                                table[s].value_base.eq(value_top),
                                table[s].rows.eq(cmd.rows),
                                table[s].cols.eq(cmd.cols),
                                table[s].n.eq(n_cmd),
                                table[s].kept.eq(w_kept),
                            ]
                    for s in range(self.max_tensors):
                        with m.If(depth == s):
                            m.d.sync += stack[s].eq(cmd.slot)
                    m.d.sync += [
                        depth.eq(depth + 1),
                        top_slot.eq(cmd.slot),
                        bitmap_top.eq(bitmap_top + need_words),
                        value_top.eq(value_top + w_value_words),
                        result.stored_bits.eq(n_cmd + w_kept * width),
                    ]
                finish(w_error, w_elements, w_kept)

            # ---- FREE ----------------------------------------------------------------------
            with m.State("FREE"):
                with m.If(~desc.valid | desc.freed):
                    finish(1, 0, 0)
                with m.Else():
                    for s in range(self.max_tensors):
                        with m.If(cmd.slot == s):
                            m.d.sync += table[s].freed.eq(1)
                    m.d.sync += result.stored_bits.eq(desc_n + desc.kept * width)
                    m.d.sync += [result.n.eq(desc_n), result.kept.eq(desc.kept),
                                 result.error.eq(0)]
                    m.next = "POP"

            with m.State("POP"):
                # Pop freed tensors off the top of the stack; their space returns.
                top_desc = Signal(self.descriptor_layout)
                with m.Switch(top_slot):
                    for s in range(self.max_tensors):
                        with m.Case(s):
                            m.d.comb += top_desc.eq(table[s])
                with m.If((depth != 0) & top_desc.freed):
                    for s in range(self.max_tensors):
                        with m.If(top_slot == s):
                            m.d.sync += [table[s].valid.eq(0), table[s].freed.eq(0)]
                    m.d.sync += [
                        depth.eq(depth - 1),
                        top_slot.eq(below_slot),
                        bitmap_top.eq(top_desc.bitmap_base),
                        value_top.eq(top_desc.value_base),
                    ]
                with m.Else():
                    m.next = "RESULT"

            # ---- READS ---------------------------------------------------------------------
            with m.State("READ_CHECK"):
                m.d.sync += [
                    result.n.eq(desc_n),
                    result.kept.eq(desc.kept),
                    result.stored_bits.eq(desc_n + desc.kept * width),
                    to_emit.eq(desc.kept),
                    prepass.eq(cmd.op == ActOp.READ_COLS),
                ]
                # The tensor's first bitmap word and first value word are read, for the
                # queues (the walks read theirs again from READ_BITMAP).
                m.d.comb += [value_en.eq(1), bitmap_rp.addr.eq(bitmap_ahead.mem_addr)]
                # A walk's first value (a column walk's: row 0's cursor) is the tensor's first.
                m.d.sync += [cursor.eq(value_start), walk_reads.eq(cmd.op == ActOp.READ_DENSE)]
                start_scan()
                with m.If(~desc.valid | desc.freed):
                    finish(1, 0, 0)
                with m.Elif((cmd.op != ActOp.READ_DENSE) & (desc.kept == 0)):
                    # Nothing to stream: the result alone ends the read.
                    m.next = "RESULT"
                with m.Else():
                    # The first row's values start at 0 (a column read's cursor table).
                    m.d.comb += [ptr_wp.en.eq(1), ptr_wp.addr.eq(0),
                                 ptr_wp.data.eq(value_start)]
                    m.next = "READ_BITMAP"

            with m.State("READ_BITMAP"):
                with m.If((cmd.op == ActOp.READ_ROWS) | prepass):
                    # Wait for the first bitmap word; the value queue fills meanwhile.
                    m.d.comb += [
                        bitmap_rp.addr.eq(bitmap_ahead.mem_addr),
                        value_rp.en.eq(1),
                    ]
                    with m.If(bitmap_ahead.count != 0):
                        m.d.comb += bitmap_ahead.pop.eq(1)
                        m.d.sync += scan_word.eq(bitmap_ahead.head[0])
                        m.next = "ROW_SCAN"
                with m.Else():
                    # The bitmap word of `flat` is read in this cycle, and the first value.
                    m.d.comb += value_en.eq(1)
                    m.next = "READ_VALUE"

            with m.State("ROW_SCAN"):
                emit = ~prepass
                accept = Signal()
                # This beat holds the read's last kept element (``take`` is small, so the
                # comparison's wide part comes from registers only).
                last_beat = Signal()
                m.d.comb += last_beat.eq(take == to_emit_now)
                # The queues keep two value words and a bitmap word at hand (the check costs
                # no cycle: they refill as fast as the scan takes words).
                m.d.comb += [
                    accept.eq((value_ahead.count >= 2) & (bitmap_ahead.count != 0)
                              & (~emit | ~segment.any() | stage_room)),
                    bitmap_rp.addr.eq(bitmap_ahead.mem_addr),
                    value_rp.en.eq(1),
                ]
                with m.If(accept):
                    with m.If(emit & segment.any()):
                        m.d.sync += [stage_valid.eq(1), stage.row.eq(row), stage.count.eq(take),
                                     stage.last.eq(last_beat), stage.col_bias.eq(col_bias)]
                        for i in range(lanes):
                            m.d.sync += [stage.one_hot[i].eq(one_hot[i]),
                                         stage.value[i].eq(values[i])]
                    m.d.sync += take_late.eq(take)
                    with m.If(value_step >= lanes):
                        m.d.comb += value_ahead.pop.eq(1)
                        m.d.sync += value_offset.eq(value_step - lanes)
                    with m.Else():
                        m.d.sync += value_offset.eq(value_step)
                    with m.If(more):
                        # The rest of the segment's kept elements in the next beat.
                        m.d.sync += scan_word.eq(scan_word & ~taken)
                    with m.Else():
                        m.d.sync += [from_lo.eq(next_from), seg_hi.eq(next_hi),
                                     col_bias.eq(next_bias), seg_mask.eq(next_mask)]
                        with m.If(word_done):
                            m.d.comb += bitmap_ahead.pop.eq(1)
                            m.d.sync += scan_word.eq(bitmap_ahead.head[0])
                        with m.If(row_ends):
                            m.d.sync += row.eq(row + 1)
                            with m.If(prepass):
                                with m.If(row + 1 == desc.rows):
                                    # The cursors are known: walk column by column.
                                    # (`flat` and `col` are still 0: the scan moves
                                    # neither.)
                                    m.d.sync += [prepass.eq(0), row.eq(0), to_emit.eq(desc.kept),
                                                 vcount.eq(0), take_late.eq(0),
                                                 walk_reads.eq(1)]
                                    m.next = "READ_BITMAP"
                                with m.Else():
                                    # Written a cycle later, when ``vcount + take_late``
                                    # counts this beat (no cursor is read before the first
                                    # pass ends).
                                    m.d.sync += [ptr_late.eq(1), ptr_late_addr.eq(row + 1)]
                    with m.If(emit & segment.any() & last_beat):
                        m.next = "RESULT"

            with m.State("READ_VALUE"):
                m.d.comb += [
                    value_en.eq(1),
                    # The cursor of the row the walk moves to, for READ_OUT to register.
                    ptr_rp.addr.eq(walk_row_next),
                ]
                m.d.sync += [
                    out_row.eq(row),
                    out_col.eq(col),
                    out_kept.eq(bit),
                    out_last.eq(Mux(cmd.op == ActOp.READ_DENSE, last_element,
                                    to_emit == 1)),
                ]
                # The walk moves on whatever the bit is, and the bit goes only to a register
                # (``out_kept``): the bitmap's output, the slowest signal here, reaches no
                # address, write enable or state; READ_OUT acts on it a cycle later.
                advance()
                m.next = "READ_OUT"

            with m.State("READ_OUT"):
                # The value word read in READ_VALUE is on the port (held: en is low). A column
                # walk passes an element not kept in this cycle, with no beat.
                send = Signal()
                m.d.comb += [
                    send.eq(out_kept | (cmd.op == ActOp.READ_DENSE)),
                    rd.valid.eq(send),
                    rd.payload.row.eq(out_row),
                    rd.payload.count.eq(1),
                    rd.payload.col[0].eq(out_col),
                    rd.payload.value[0].eq(Mux(out_kept, walk_value, 0)),
                    rd.payload.last.eq(out_last),
                ]
                with m.If((cmd.op == ActOp.READ_COLS) & out_kept):
                    # The kept element's row cursor moves on (the same write while the beat
                    # waits).
                    m.d.comb += [ptr_wp.en.eq(1), ptr_wp.addr.eq(out_row),
                                 ptr_wp.data.eq(held_ptr + 1)]
                with m.If(~send | rd.ready):
                    m.d.sync += to_emit.eq(to_emit - out_kept)
                    m.d.comb += vcount_next.eq(vcount + out_kept)
                    # The next element's value, registered: a column walk's is ptr_mem's
                    # (read with the row the walk moved to, which ``row`` now holds), or for a
                    # one-row tensor this element's cursor moved on (the write above is too
                    # late for a read); a dense walk's is the next in row order.
                    m.d.sync += cursor.eq(Mux((cmd.op == ActOp.READ_COLS) & (desc.rows != 1),
                                              ptr_rp.data, held_ptr + out_kept))
                    with m.If(send & out_last):
                        m.next = "RESULT"
                    with m.Else():
                        # The walk has moved on: the next element's bitmap word was read in
                        # this cycle.
                        m.next = "READ_VALUE"

            with m.State("RESULT"):
                # After the read's last beat has left (the result ends a read).
                m.d.comb += self.result.valid.eq((skid.occupancy == 0) & ~stage_valid)
                with m.If(self.result.valid & self.result.ready):
                    m.next = "IDLE"

        # The row scan's beat stage: the lanes' positions are encoded (an OR tree) and moved to
        # their columns (an adder) here, out of the scan's loop. Only a row read fills it, and a
        # read ends once it is empty, so the walks' beats (READ_OUT) never meet it.
        with m.If(stage_valid):
            beat = rd.payload
            m.d.comb += [rd.valid.eq(1), beat.row.eq(stage.row), beat.count.eq(stage.count),
                         beat.last.eq(stage.last)]
            for i in range(lanes):
                hits = [Mux(stage.one_hot[i][j], j, 0) for j in range(1, word_bits)]
                while len(hits) > 1:
                    hits = [hits[k] | hits[k + 1] if k + 1 < len(hits) else hits[k]
                            for k in range(0, len(hits), 2)]
                pick = hits[0] if hits else 0
                m.d.comb += [beat.col[i].eq(stage.col_bias + pick),
                             beat.value[i].eq(stage.value[i])]

        m.d.comb += value_rp.addr.eq(Mux(walk_reads, cursor >> lane_bits, value_ahead.mem_addr))

        with m.If(ptr_late):  # (no state writes ptr_mem in the cycle after a first-pass row)
            m.d.comb += [ptr_wp.en.eq(1), ptr_wp.addr.eq(ptr_late_addr),
                         ptr_wp.data.eq(value_start + vcount_next)]
        return m
