"""The compressed-activation buffer: SWAT's saved sparse activations, stored compressed on chip."""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .mask_packer import compressed_beat
from .validate import check_int

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
    ``out``) at its full rate, one beat per cycle: the bitmap bits are packed into ``lanes``-bit
    words, and the packer's full value words are written as they come. Each tensor starts on a
    word boundary of both memories.

    Reads walk the tensor element by element, in row or column order: a dropped element takes
    one cycle and a kept one two (value word, output), plus one cycle for each bitmap word the
    walk enters (every element, in a column walk). A column-order read first walks the tensor
    once in row order to find where each row's values start, then keeps a cursor per row, so
    nothing is expanded to dense.

    A write that does not fit (bitmap, values or table), whose slot is taken, or whose length
    differs from ``rows * cols`` is refused: its stream is consumed, nothing stored is touched
    (a write only ever fills space above the stack's top, which it claims at the end), and the
    result reports ``error``.

    Parameters
    ----------
    width : int
        Activation width (signed).
    lanes : int
        Elements per beat of the write stream; a power of two.
    bitmap_capacity : int
        Bitmap bits stored (rounded up to whole words of ``lanes`` bits).
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
        One element per beat: ``row``, ``col``, ``value``, ``last``.
    result : Out(stream.Signature(result_layout))
        One per command: ``op``, ``slot``, ``error``, ``n``, ``kept``, ``stored_bits`` (of the
        slot: ``n + kept * width``).
    bitmap_used, values_used : Signal, out
        Occupancy, in bits and in values (whole words).
    """

    def __init__(self, *, width, lanes, bitmap_capacity, value_capacity, max_tensors,
                 max_rows, max_cols, wdata_layout):
        check_int("width", width, 2)
        check_int("lanes", lanes, 1)
        if lanes & (lanes - 1):
            raise ValueError(f"lanes must be a power of two, not {lanes}")
        check_int("bitmap_capacity", bitmap_capacity, 1)
        check_int("value_capacity", value_capacity, 1)
        check_int("max_tensors", max_tensors, 1)
        check_int("max_rows", max_rows, 1)
        check_int("max_cols", max_cols, 1)
        self.width = width
        self.lanes = lanes
        self.bitmap_words = -(-bitmap_capacity // lanes)
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
            "col": range(max_cols),
            "value": signed(width),
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
            "kept": count_shape,
        })
        super().__init__({
            "cmd": In(stream.Signature(self.cmd_layout)),
            "wdata": In(stream.Signature(wdata_layout)),
            "rdata": Out(stream.Signature(self.rdata_layout)),
            "result": Out(stream.Signature(self.result_layout)),
            "bitmap_used": Out(range(self.bitmap_words * lanes + 1)),
            "values_used": Out(range(self.value_words * lanes + 1)),
        })

    @staticmethod
    def params_from_config(config):
        """The constructor's arguments for an :class:`golden.config.AccelConfig`: the buffer
        takes the top-K selector's compressed stream."""
        return {"width": config.width, "lanes": config.topk_lanes,
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
        lanes, width = self.lanes, self.width
        lane_bits = (lanes - 1).bit_length()

        m.submodules.bitmap_mem = bitmap_mem = Memory(shape=unsigned(lanes),
                                                      depth=self.bitmap_words, init=[])
        m.submodules.value_mem = value_mem = Memory(shape=unsigned(lanes * width),
                                                    depth=self.value_words, init=[])
        m.submodules.ptr_mem = ptr_mem = Memory(shape=unsigned(len(Signal(range(
            self.value_words * lanes + 1)))), depth=self.max_rows, init=[])
        bitmap_wp, bitmap_rp = bitmap_mem.write_port(), bitmap_mem.read_port()
        value_wp, value_rp = value_mem.write_port(), value_mem.read_port()
        m.d.comb += value_rp.en.eq(0)  # read only in READ_VALUE, held while the output waits
        ptr_wp = ptr_mem.write_port()
        ptr_rp = ptr_mem.read_port(transparent_for=(ptr_wp,))

        table = [Signal(self.descriptor_layout, name=f"slot{s}") for s in range(self.max_tensors)]
        stack = [Signal(range(self.max_tensors), name=f"stack{s}")
                 for s in range(self.max_tensors)]
        depth = Signal(range(self.max_tensors + 1))
        bitmap_top = Signal(range(self.bitmap_words + 1))  # in words
        value_top = Signal(range(self.value_words + 1))
        m.d.comb += [
            self.bitmap_used.eq(bitmap_top * lanes),
            self.values_used.eq(value_top * lanes),
        ]

        cmd = Signal(self.cmd_layout)
        desc = Signal(self.descriptor_layout)  # of cmd.slot
        with m.Switch(cmd.slot):
            for s in range(self.max_tensors):
                with m.Case(s):
                    m.d.comb += desc.eq(table[s])

        result = Signal(self.result_layout)
        m.d.comb += self.result.payload.eq(result)

        # -- write: pack bitmap bits into words; write the packer's value words ------------
        wbeat = self.wdata.payload
        bits = Signal(2 * lanes)  # bitmap bits gathered, fill of them valid
        fill = Signal(range(lanes + 1))
        w_elements = Signal.like(result.n)
        w_kept = Signal.like(result.kept)
        w_bitmap_words = Signal(range(self.bitmap_words + 2))
        w_value_words = Signal(range(self.value_words + 2))
        w_refused = Signal()
        merged = Signal(2 * lanes)
        m.d.comb += merged.eq(bits | (wbeat.bitmap << fill))
        merged_fill = Signal(range(2 * lanes + 1))
        m.d.comb += merged_fill.eq(fill + wbeat.bitmap_count)
        need_words = Signal(range(self.max_rows * self.max_cols // lanes + 2))
        n_cmd = Signal.like(result.n)
        m.d.comb += [
            n_cmd.eq(cmd.rows * cmd.cols),
            need_words.eq((n_cmd + lanes - 1) >> lane_bits),
        ]

        # -- read: walk (row, col); bitmap word, then value word, then output --------------
        row = Signal(range(self.max_rows + 1))
        col = Signal(range(self.max_cols + 1))
        flat = Signal(range(self.max_rows * self.max_cols + 1))
        vcount = Signal.like(result.kept)  # kept elements passed, in row order
        prepass = Signal()  # a column read's first walk, which fills ptr_mem
        bit = Signal()
        pointer = Signal.like(vcount)
        value = Signal(signed(width))
        last_element = Signal()
        m.d.comb += [
            bitmap_rp.addr.eq(desc.bitmap_base + (flat >> lane_bits)),
            ptr_rp.addr.eq(row),
            bit.eq(bitmap_rp.data.bit_select(flat[:lane_bits] if lane_bits else 0, 1)),
            last_element.eq(flat + 1 == desc.rows * desc.cols),  # of a row-order walk
        ]
        hold_pointer = Signal.like(vcount)
        emitted = Signal.like(vcount)
        out_row = Signal.like(row)
        out_col = Signal.like(col)
        out_kept = Signal()
        out_last = Signal()
        words = [value_rp.data[i * width:(i + 1) * width] for i in range(lanes)]
        with m.Switch(hold_pointer[:lane_bits] if lane_bits else 0):
            for i in range(lanes):
                with m.Case(i):
                    m.d.comb += value.eq(words[i])
        m.d.comb += value_rp.addr.eq(desc.value_base + (pointer >> lane_bits))

        def advance():
            """Move to the next element of the walk (row or column order)."""
            with m.If((cmd.op == ActOp.READ_COLS) & ~prepass):
                with m.If(row + 1 == desc.rows):
                    m.d.sync += [row.eq(0), col.eq(col + 1), flat.eq(col + 1)]
                with m.Else():
                    m.d.sync += [row.eq(row + 1), flat.eq(flat + desc.cols)]
            with m.Else():
                m.d.sync += flat.eq(flat + 1)
                with m.If(col + 1 == desc.cols):
                    m.d.sync += [col.eq(0), row.eq(row + 1)]
                with m.Else():
                    m.d.sync += col.eq(col + 1)

        # A row walk steps over a run of dropped elements in one cycle: up to the next kept
        # element of the bitmap word on the read port, the word's end, or the row's end.
        run = Signal(range(lanes + 1))
        if lane_bits:
            word_bits = bitmap_rp.data
            pos = flat[:lane_bits]
            m.d.comb += run.eq(lanes - pos)
            for d in reversed(range(1, lanes)):
                with m.If((pos + d < lanes) & word_bits.bit_select(pos + d, 1)):
                    m.d.comb += run.eq(d)
        else:
            m.d.comb += run.eq(1)
        step = Signal(range(lanes + 1))
        m.d.comb += step.eq(Mux(run < desc.cols - col, run, desc.cols - col))

        def walk_on(skip=False):
            """Advance (over the run of dropped elements with ``skip``); skip the bitmap read
            when the next element lies in the same word.

            The bitmap read port reads the current element's word every cycle, so in a row walk
            the word is already on the port for the next element unless it starts a new word.
            """
            column_walk = (cmd.op == ActOp.READ_COLS) & ~prepass
            if skip and lane_bits:
                with m.If(~column_walk):
                    m.d.sync += flat.eq(flat + step)
                    with m.If(col + step == desc.cols):
                        m.d.sync += [col.eq(0), row.eq(row + 1)]
                    with m.Else():
                        m.d.sync += col.eq(col + step)
                    with m.If(flat[:lane_bits] + step < lanes):
                        m.next = "READ_VALUE"
                    with m.Else():
                        m.next = "READ_BITMAP"
                with m.Else():
                    advance()
                    m.next = "READ_BITMAP"
                return
            advance()
            if lane_bits:
                same_word = ~column_walk & (flat[:lane_bits] != lanes - 1)
                with m.If(same_word):
                    m.next = "READ_VALUE"
                with m.Else():
                    m.next = "READ_BITMAP"
            else:
                m.next = "READ_BITMAP"

        def finish(error, n, kept):
            m.d.sync += [result.error.eq(error), result.n.eq(n), result.kept.eq(kept)]
            m.next = "RESULT"

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += [
                        cmd.eq(self.cmd.payload),
                        result.op.eq(self.cmd.payload.op),
                        result.slot.eq(self.cmd.payload.slot),
                        result.stored_bits.eq(0),
                        result.error.eq(0),
                        row.eq(0), col.eq(0), flat.eq(0), vcount.eq(0),
                        bits.eq(0), fill.eq(0), w_elements.eq(0), w_kept.eq(0),
                        w_bitmap_words.eq(0), w_value_words.eq(0), w_refused.eq(0),
                    ]
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
                        with m.If(value_top + w_value_words < self.value_words):
                            m.d.comb += [
                                value_wp.en.eq(1),
                                value_wp.addr.eq(value_top + w_value_words),
                                value_wp.data.eq(Cat(e.value for e in wbeat.entries)),
                            ]
                        with m.Else():
                            m.d.sync += w_refused.eq(1)
                        m.d.sync += w_value_words.eq(w_value_words + 1)
                    # Bitmap bits: write a word whenever one fills.
                    with m.If(merged_fill >= lanes):
                        with m.If(bitmap_top + w_bitmap_words < self.bitmap_words):
                            m.d.comb += [
                                bitmap_wp.en.eq(1),
                                bitmap_wp.addr.eq(bitmap_top + w_bitmap_words),
                                bitmap_wp.data.eq(merged[:lanes]),
                            ]
                        m.d.sync += [
                            w_bitmap_words.eq(w_bitmap_words + 1),
                            bits.eq(merged[lanes:]),
                            fill.eq(merged_fill - lanes),
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
                            bitmap_wp.data.eq(bits[:lanes]),
                        ]
                m.next = "WRITE_COMMIT"

            with m.State("WRITE_COMMIT"):
                error = w_refused | (w_elements != n_cmd)
                with m.If(~error):
                    for s in range(self.max_tensors):
                        with m.If(cmd.slot == s):
                            m.d.sync += [
                                table[s].valid.eq(1),
                                table[s].freed.eq(0),
                                table[s].bitmap_base.eq(bitmap_top),
                                table[s].value_base.eq(value_top),
                                table[s].rows.eq(cmd.rows),
                                table[s].cols.eq(cmd.cols),
                                table[s].kept.eq(w_kept),
                            ]
                    for s in range(self.max_tensors):
                        with m.If(depth == s):
                            m.d.sync += stack[s].eq(cmd.slot)
                    m.d.sync += [
                        depth.eq(depth + 1),
                        bitmap_top.eq(bitmap_top + need_words),
                        value_top.eq(value_top + w_value_words),
                        result.stored_bits.eq(n_cmd + w_kept * width),
                    ]
                finish(error, w_elements, w_kept)

            # ---- FREE ----------------------------------------------------------------------
            with m.State("FREE"):
                with m.If(~desc.valid | desc.freed):
                    finish(1, 0, 0)
                with m.Else():
                    for s in range(self.max_tensors):
                        with m.If(cmd.slot == s):
                            m.d.sync += table[s].freed.eq(1)
                    m.d.sync += result.stored_bits.eq(desc.rows * desc.cols + desc.kept * width)
                    m.d.sync += [result.n.eq(desc.rows * desc.cols), result.kept.eq(desc.kept),
                                 result.error.eq(0)]
                    m.next = "POP"

            with m.State("POP"):
                # Pop freed tensors off the top of the stack; their space returns.
                top_slot = Signal(range(self.max_tensors))
                top_desc = Signal(self.descriptor_layout)
                with m.Switch(depth):
                    for s in range(1, self.max_tensors + 1):
                        with m.Case(s):
                            m.d.comb += top_slot.eq(stack[s - 1])
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
                        bitmap_top.eq(top_desc.bitmap_base),
                        value_top.eq(top_desc.value_base),
                    ]
                with m.Else():
                    m.next = "RESULT"

            # ---- READS ---------------------------------------------------------------------
            with m.State("READ_CHECK"):
                m.d.sync += [
                    result.n.eq(desc.rows * desc.cols),
                    result.kept.eq(desc.kept),
                    result.stored_bits.eq(desc.rows * desc.cols + desc.kept * width),
                    emitted.eq(0),
                    prepass.eq(cmd.op == ActOp.READ_COLS),
                ]
                with m.If(~desc.valid | desc.freed):
                    finish(1, 0, 0)
                with m.Elif((cmd.op != ActOp.READ_DENSE) & (desc.kept == 0)):
                    # Nothing to stream: the result alone ends the read.
                    m.next = "RESULT"
                with m.Else():
                    m.next = "READ_BITMAP"

            with m.State("READ_BITMAP"):
                # The bitmap word of `flat` and the row's pointer are read in this cycle.
                m.next = "READ_VALUE"

            with m.State("READ_VALUE"):
                column_walk = (cmd.op == ActOp.READ_COLS) & ~prepass
                m.d.comb += [
                    pointer.eq(Mux(column_walk, ptr_rp.data, vcount)),
                    value_rp.en.eq(1),
                ]
                m.d.sync += [
                    hold_pointer.eq(pointer),
                    out_row.eq(row),
                    out_col.eq(col),
                    out_kept.eq(bit),
                    out_last.eq(Mux(cmd.op == ActOp.READ_DENSE, last_element,
                                    emitted + 1 == desc.kept)),
                ]
                with m.If(bit):
                    m.d.sync += vcount.eq(vcount + 1)
                with m.If(prepass):
                    with m.If(col == 0):
                        # A row starts: its values start after the `vcount` kept before it.
                        m.d.comb += [ptr_wp.en.eq(1), ptr_wp.addr.eq(row),
                                     ptr_wp.data.eq(vcount)]
                    with m.If(flat + 1 == desc.rows * desc.cols):
                        m.d.sync += [prepass.eq(0), row.eq(0), col.eq(0), flat.eq(0)]
                        m.next = "READ_BITMAP"
                    with m.Else():
                        walk_on()
                with m.Elif(bit | (cmd.op == ActOp.READ_DENSE)):
                    with m.If(column_walk & bit):
                        m.d.comb += [ptr_wp.en.eq(1), ptr_wp.addr.eq(row),
                                     ptr_wp.data.eq(ptr_rp.data + 1)]
                    m.next = "READ_OUT"
                with m.Else():
                    walk_on(skip=True)

            with m.State("READ_OUT"):
                # The value word read in READ_VALUE is on the read port now (held: en is low).
                m.d.comb += [
                    self.rdata.valid.eq(1),
                    self.rdata.payload.row.eq(out_row),
                    self.rdata.payload.col.eq(out_col),
                    self.rdata.payload.value.eq(Mux(out_kept, value, 0)),
                    self.rdata.payload.last.eq(out_last),
                ]
                with m.If(self.rdata.ready):
                    m.d.sync += emitted.eq(emitted + out_kept)
                    with m.If(out_last):
                        m.next = "RESULT"
                    with m.Else():
                        walk_on()

            with m.State("RESULT"):
                m.d.comb += self.result.valid.eq(1)
                with m.If(self.result.ready):
                    m.next = "IDLE"

        return m
