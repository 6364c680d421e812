"""The scan of a conv read: a segment's kept elements, with their values, found through the
directory."""

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith import popcount
from ..skid_buffer import SkidBuffer
from .read_queue import ReadQueue
from .span_beats import SpanBeats

__all__ = ["SegmentScan"]


class SegmentScan(wiring.Component):
    """Reads the kept elements of a conv read's segments, with their values, as ``rdata`` beats.

    A segment is the stored bits ``start .. end`` of one input row (every second one at stride
    2), the im2col columns ``col ..`` of feature ``row`` (:class:`SegmentWalk`); with
    ``filter``, it spans rows of a map ``width`` wide, its bits in columns ``lo .. hi`` only
    (``start`` in column ``lo``), and a bit ``b``'s column is ``col + b - start`` still. The
    scan is a pipeline of registered stages, each taking a word (or beat) a cycle:

    * *Words*: a segment's bitmap words, one a cycle, each read with the directory entry of its
      block; the next segment's first word follows its last in the next cycle. With each word
      goes the mask of its bits whose column is in range, made from registers as the word is
      read: the column of the word's first bit is kept, stepping by ``word_bits`` modulo the
      width a word (that remainder is found once per read); on maps at most a word wide, a
      pattern of the row starts (built once per read, 8 bits a cycle), shifted by that column,
      marks the columns cut at either end of each row (at most 3: the padding); on wider maps
      at most two rows meet in a word, each giving a range of bits.
    * *Index*: the word's bits inside the segment; the value index of its first one, from the
      entry (the block's count, plus the first word's popcount for a block's second word) and
      a popcount of the word's kept bits before the segment, in two stages, then a register
      slice, so that the loop's stalls reach the stages before it only through registers.
    * *Pick* (with *Values*, :class:`SpanBeats`): the loop. A beat takes the next kept bits
      of the word inside the segment, at most ``lanes``, whose values lie in a two-word
      window: the value word the last beat read and the one after it, or, when the beat's
      first value is in another word, that word alone (so a beat reads one value-memory
      word). A word takes one cycle, or one per beat. The loop moves on whenever the value
      read has room, whatever the beat holds.
    * *Values*: the beat's value word is read; then each lane's value (from that word, or
      from the word before it and that word) and column are found, with which of the lanes
      are emitted: those on the segment's phase at stride 2 and in column range (the others'
      values lie between, and are passed over); then the lanes emitted are packed to the
      front, and a beat with none ends there. Two stages.

    With ``conv_words`` 2 (the geometry's), every stage takes two consecutive words of a
    segment a cycle, each through its own read ports, in two halves: each word's column
    steps by two words (``2 * word_bits`` modulo the width, found once per read), the second
    word's first column is worked out in a register stage in front of the words, each half
    finds its value index from its own directory entry, and a beat takes up to ``lanes``
    kept bits of each word. The second word takes bits only in the beat that ends the
    first's, so that a row's elements still leave in order; the beat's values are then one
    run, read as two value words (a window of three when the run starts in the word the last
    beat read second). A beat carries up to ``2 * lanes`` elements.

    Parameters
    ----------
    geometry : :class:`hw.act_buffer.BufferGeometry`
    segment_layout : StructLayout
        :attr:`SegmentWalk.segment_layout`.

    Attributes
    ----------
    start : Signal, in
        A read begins (no value word is held from before it).
    segments : In(stream.Signature(segment_layout))
    desc : Signal(descriptor_layout), in
        The tensor's descriptor, held.
    stride2 : Signal, in
        The read's stride is 2 (else 1), held.
    width : Signal, in
        The maps' width ``W``, held from ``start``. The scan takes segments a few cycles after
        ``start`` (a remainder and a pattern of ``W`` are set up).
    bitmap_addr, bitmap_data, directory_addr, directory_data, value_addr, value_data : View
        The memories' read ports, one per word a cycle (addresses out, from registers; data
        in, a cycle later).
    o : Out(stream.Signature(output_layout))
        The beats: up to ``lanes * conv_words`` elements of one row, ``last`` 0.
    busy : Signal, out
        A segment, word or beat is in the scan.
    """

    def __init__(self, geometry, segment_layout):
        self.geometry = g = geometry
        self.segment_layout = segment_layout
        super().__init__({
            "start": In(1),
            "segments": In(stream.Signature(segment_layout)),
            "desc": In(g.descriptor_layout),
            "stride2": In(1),
            "width": In(range(g.max_cols + 1)),
            "bitmap_addr": Out(data.ArrayLayout(g.bitmap_addr_width, g.conv_words)),
            "bitmap_data": In(data.ArrayLayout(g.word_bits, g.conv_words)),
            "directory_addr": Out(data.ArrayLayout(g.directory_addr_width, g.conv_words)),
            "directory_data": In(data.ArrayLayout(g.directory_entry_layout, g.conv_words)),
            "value_addr": Out(data.ArrayLayout(g.value_addr_width, g.conv_words)),
            "value_data": In(data.ArrayLayout(g.lanes * g.width, g.conv_words)),
            "o": Out(stream.Signature(g.output_layout)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geometry
        wb, lanes, words = g.word_bits, g.lanes, g.conv_words
        lw = (wb - 1).bit_length()         # bits of a position in a word
        desc, sh = self.desc, self.stride2
        seg_in = self.segments.payload
        # A column before the shift by the stride may be a word's width below 0: columns are
        # kept modulo a width with room for that.
        col_width = max(Shape.cast(range(g.max_cols)).width, lw) + 2
        item_layout = data.StructLayout({
            "row": range(g.max_rows),
            "lo": range(wb),           # the segment's first bit in the word
            "hi": range(wb),           # and its last
            "odd": 1,                  # the block's second word
            "bias": col_width,         # a bit's column is (position >> stride2) + bias
            "phase": 1,                # at stride 2, the positions' parity that is kept
            "valid": wb,               # the bits whose column lies in the segment's range
        })

        # -- Column filter: set up at the start of a read. -----------------------------------
        # For a filtered segment, each word's bits whose column x (within their map row) lies
        # out of lo .. hi are passed over. The column of a word's bit 0 is tracked word by word
        # as ``x``: a representative of it modulo W, from -wb up (bits before the segment's
        # first may have any). On maps at most a word wide (``narrow``), x < wb, and a pattern
        # of the row starts (bits v = 0 modulo W), shifted by x, gives the columns cut at
        # either end of the row (at most 3 each: the padding). Bit v of the pattern stands for
        # column t = v - c, c the first multiple of W from wb + 3 on, so that t covers
        # -wb - 3 .. 2 * wb + 2. On wider maps, at most two rows meet in a word, and x < W: two
        # ranges of bits.
        width_ = self.width
        group = 8                          # pattern bits made a cycle
        # The set-up runs a step per pattern group and at least the division's steps; the
        # pattern has a group for every step, so that none is shifted out.
        prep_steps = max(-(-(4 * wb + 5) // group), lw + 2)
        pattern_len = prep_steps * group
        col_bits = Shape.cast(range(g.max_cols + 1)).width
        xw = max(col_bits, lw + 1) + 2
        row_starts = Signal(pattern_len)
        narrow = Signal()                  # a register (the width is held from ``start``)
        x_step = Signal(xw)                # wb modulo W on narrow maps, else wb
        x_bound = Signal(xw)               # x is reduced by W once it reaches this
        prep_left = Signal(range(prep_steps + 1))
        next_start = Signal(col_bits + 1)  # the next group's first row start, from its bit 0
        rem = Signal(range(wb + 1))
        shift0 = Signal(range(pattern_len))  # c - 3: the pattern's bit of column x - 3 is x + this
        m.d.sync += narrow.eq(width_ <= wb)
        # From registers that follow the held width: whether W divides each distance a group
        # spans, and W - group, so that a group's step is one comparison and one adder.
        w_divides = Signal(group)
        w_less_group = Signal(signed(col_bits + 2))
        m.d.sync += [w_divides[d].eq(Cat(*[width_ == w for w in range(1, d + 1)
                                           if d % w == 0]).any())
                     for d in range(1, group)]
        m.d.sync += w_less_group.eq(width_ - group)
        with m.If(self.start):
            m.d.sync += [next_start.eq(0), rem.eq(wb), prep_left.eq(prep_steps)]
        with m.Elif(prep_left != 0):
            # The pattern, a group of bits a cycle from its bit 0 (they shift down from the
            # top): bit i of a group is a row start if it lies a multiple of W after the
            # group's first (at most a few below 8: a small table).
            bits = Signal(group)
            for i in range(group):
                terms = []
                for first in range(i + 1):
                    d = i - first
                    divides = 1 if d == 0 else w_divides[d]
                    terms.append((next_start == first) & divides)
                m.d.comb += bits[i].eq(Cat(*terms).any())
            last = Signal(range(group))
            for i in range(group):
                with m.If(bits[i]):
                    m.d.comb += last.eq(i)
            m.d.sync += [row_starts.eq(Cat(row_starts[group:], bits)),
                         next_start.eq(Mux(bits.any(), last + w_less_group, next_start - group)),
                         prep_left.eq(prep_left - 1)]
            # The remainder of wb by W, by restoring division, a bit a cycle; then c.
            k = prep_steps - prep_left     # the division's step: W << (lw - k)
            divisor = Signal(col_bits + lw + 1)
            m.d.comb += divisor.eq(width_ << (lw - k)[:lw.bit_length() + 1])
            with m.If((k <= lw) & (rem >= divisor)):
                m.d.sync += rem.eq(rem - divisor)
            # c = wb - rem + j * W, the fewest W (j up to 3) past rem + 3.
            multiple = Mux(rem + 3 <= width_, width_,
                           Mux(rem + 3 <= (width_ << 1), width_ << 1, width_ + (width_ << 1)))
            m.d.sync += shift0.eq(wb - rem + multiple - 3)
        m.d.comb += [x_step.eq(Mux(narrow, rem, wb)), x_bound.eq(Mux(narrow, wb, width_))]

        # -- Words: a segment's words, ``words`` a cycle, each with its directory entry. -----
        # Half h of a cycle's items is the segment's word h after the words issued before (the
        # second half is absent past the segment's last word).
        halves = range(words)
        pair_layout = data.StructLayout({
            "item": data.ArrayLayout(item_layout, words),
            "present": words,      # the half holds a word of the segment
        })
        pair_data_layout = data.ArrayLayout(g.word_bits + g.directory_entry_bits, words)
        pairs = ReadQueue(m, "words", pair_layout, pair_data_layout.size)
        active = Signal()
        w_addr = [Signal(g.bitmap_addr_width + 1, name=f"w_addr{h}") for h in halves]
        d_addr = [Signal(g.directory_addr_width + 1, name=f"d_addr{h}") for h in halves]
        words_left = Signal(Shape.cast(range(g.max_cols // wb + 3)).width + 1)
        cur = [Signal(item_layout, name=f"cur{h}") for h in halves]  # lo, hi fixed at issue
        last_hi = Signal(range(wb))
        cur_lo = Signal(range(g.max_cols))
        cur_hi = Signal(range(g.max_cols))
        cur_filter = Signal()
        # A word's column x is not kept: the next one's is, worked out a step ahead (``nx``,
        # ``nx - W``, ``nx + W`` and which to take). A step is ``words`` words.
        x_width = signed(xw + 2)
        nx = [Signal(x_width, name=f"nx{h}") for h in halves]
        nx_wrapped = [Signal(x_width, name=f"nx_wrapped{h}") for h in halves]
        nx_raised = [Signal(x_width, name=f"nx_raised{h}") for h in halves]
        nx_wraps = [Signal(name=f"nx_wraps{h}") for h in halves]
        nx_low = [Signal(name=f"nx_low{h}") for h in halves]
        if words == 1:
            x_stride = x_step
        else:
            # Two words on: (2 * x_step) modulo W, once the set-up is over (a cycle after it,
            # so segments wait for ``settled``).
            x_stride = Signal(xw)
            doubled = Signal(xw + 1)
            m.d.comb += doubled.eq(x_step << 1)
            m.d.sync += x_stride.eq(Mux(doubled >= width_, doubled - width_, doubled))
        if words == 1:
            settled = prep_left == 0
        else:
            settled = Signal()
            m.d.sync += settled.eq(prep_left == 0)
        for h in halves:
            m.d.comb += [self.bitmap_addr[h].eq(w_addr[h]),
                         self.directory_addr[h].eq(d_addr[h])]
        m.d.comb += pairs.mem_data.eq(Cat(*[Cat(self.bitmap_data[h], self.directory_data[h])
                                           for h in halves]))
        issue_info = pairs.issue_info
        # Each half's valid bits, from registers that follow its column: the pattern's shift
        # (x + c - 3), the segment's bounds less x, and which of the segment's ends are cut,
        # each set with the segment and stepped with x, so that no adder or comparison lies
        # in front of the shifter.
        shift = [Signal(range(pattern_len), name=f"shift{h}") for h in halves]
        lo_cut = Signal(3)       # bit d: cur_lo > d
        hi_cut = Signal(3)       # bit d - 1: cur_hi + d < W
        ones = Const((1 << wb) - 1, wb)

        def bit_range(a, b):
            """Bits a .. b of a word (signed bounds)."""
            a_c = Mux(a < 0, 0, Mux(a > wb, wb, a))
            b_c = Mux(b < -1, -1, Mux(b > wb - 1, wb - 1, b)) + 1
            return (ones << a_c[:lw + 1])[:wb] & ~(ones << b_c[:lw + 1])[:wb]

        first_lo = [Signal(signed(xw + 1), name=f"first_lo{h}") for h in halves]  # cur_lo - x
        first_hi = [Signal(signed(xw + 1), name=f"first_hi{h}") for h in halves]  # cur_hi - x
        second_lo = [Signal(signed(xw + 2), name=f"second_lo{h}") for h in halves]  # + W
        second_hi = [Signal(signed(xw + 2), name=f"second_hi{h}") for h in halves]
        lo_w = Signal(range(g.max_cols * 2 + 1))   # cur_lo + W
        hi_w = Signal(range(g.max_cols * 2 + 1))   # cur_hi + W

        def follow_x(h, x, lo, hi, lo_plus_w, hi_plus_w, name):
            """The registers that follow the column ``x`` of half ``h``'s word's bit 0, and
            its word's a step on."""
            following = Signal(x_width, name=f"{name}{h}_next_x")
            m.d.comb += following.eq(x + x_stride)
            stmts = [shift[h].eq(x + shift0), first_lo[h].eq(lo - x), first_hi[h].eq(hi - x),
                     second_lo[h].eq(lo_plus_w - x), second_hi[h].eq(hi_plus_w - x),
                     nx[h].eq(following), nx_wrapped[h].eq(following - width_),
                     nx_wraps[h].eq(following >= x_bound)]
            if words > 1:  # (one word a step never leaves x below 0)
                stmts += [nx_raised[h].eq(following + width_), nx_low[h].eq(following < 0)]
            return stmts

        last_word = Signal()     # the cycle's items hold the segment's last word
        m.d.comb += last_word.eq(words_left < words)
        for h in halves:
            window = Signal(wb + 6, name=f"window{h}")
            cut = Signal(wb, name=f"cut{h}")
            m.d.comb += window.eq((row_starts >> shift[h])[:wb + 6])
            for j in range(wb):
                # Bit j's column is t = x + j, at window[j + 3].
                terms = [lo_cut[d] & window[j + 3 - d] for d in range(3)]
                terms += [hi_cut[d - 1] & window[j + 3 + d] for d in range(1, 4)]
                m.d.comb += cut[j].eq(Cat(*terms).any())
            wide_valid = (bit_range(first_lo[h], first_hi[h])
                          | bit_range(second_lo[h], second_hi[h]))
            m.d.comb += [issue_info.item[h].eq(cur[h]),
                         issue_info.item[h].hi.eq(Mux(words_left == h, last_hi, wb - 1)),
                         issue_info.item[h].valid.eq(
                             Mux(cur_filter, Mux(narrow, ~cut, wide_valid), ones)),
                         issue_info.present[h].eq(1 if h == 0 else words_left >= h)]
        m.d.comb += pairs.issue.eq(active & pairs.room)
        with m.If(pairs.issue):
            # ``words`` words on, the column of a word's position 0 moves by word_bits / stride
            # a word (with one-bit words at stride 2, by one every second word: when the phase
            # is 0).
            step_bias = (Mux(sh, ~cur[0].phase, 1) if wb == 1
                         else Mux(sh, (wb >> 1) * words, wb * words))
            m.d.sync += [words_left.eq(words_left - words), cur[0].lo.eq(0)]
            for h in halves:
                m.d.sync += [w_addr[h].eq(w_addr[h] + words),
                             cur[h].bias.eq(cur[h].bias + step_bias)]
                if words == 1:
                    m.d.sync += [d_addr[h].eq(d_addr[h] + cur[h].odd),
                                 cur[h].odd.eq(~cur[h].odd),
                                 cur[h].phase.eq(cur[h].phase ^ (wb & 1))]
                else:
                    # Two words on: the next block, the same word in it (word_bits is even).
                    m.d.sync += d_addr[h].eq(d_addr[h] + 1)
                # (A step of two words from a segment's first word may leave x below 0.)
                next_x = Signal(x_width, name=f"next_x{h}")
                m.d.comb += next_x.eq(Mux(nx_wraps[h], nx_wrapped[h], nx[h]) if words == 1
                                      else Mux(nx_wraps[h], nx_wrapped[h],
                                               Mux(nx_low[h], nx_raised[h], nx[h])))
                m.d.sync += follow_x(h, next_x, cur_lo, cur_hi, lo_w, hi_w, "word")
            with m.If(last_word):
                m.d.sync += active.eq(0)

        def accept(seg, xs):
            """Set the words stage up for segment ``seg``, whose halves' first words have bit 0
            in columns ``xs``."""
            first = seg.start >> lw
            lo = seg.start[:lw] if lw else Const(0, 1)
            bias = seg.col - Mux(sh, lo >> 1, lo)
            stmts = [
                active.eq(1),
                words_left.eq((seg.end >> lw) - first),
                last_hi.eq(seg.end[:lw] if lw else 0),
                lo_w.eq(seg.lo + width_), hi_w.eq(seg.hi + width_),
                lo_cut.eq(Cat(*[seg.lo > d for d in range(3)])),
                hi_cut.eq(Cat(*[seg.hi + d < width_ for d in range(1, 4)])),
                cur_lo.eq(seg.lo), cur_hi.eq(seg.hi), cur_filter.eq(seg.filter),
            ]
            for h in halves:
                word_h = first + h
                stmts += [
                    w_addr[h].eq(desc.bitmap_base + word_h),
                    d_addr[h].eq(desc.directory_base + (word_h >> 1)),
                    cur[h].row.eq(seg.row), cur[h].lo.eq(lo if h == 0 else 0),
                    cur[h].odd.eq(word_h[0]),
                    cur[h].bias.eq(bias if h == 0 else bias + Mux(sh, wb >> 1, wb)),
                    cur[h].phase.eq(lo[0]),
                    *follow_x(h, xs[h], seg.lo, seg.hi, seg.lo + width_, seg.hi + width_,
                              "segment"),
                ]
            return stmts

        takes_segment = Signal()
        m.d.comb += takes_segment.eq(settled & (~active | (pairs.issue & last_word)))
        if words == 1:
            seg_in = self.segments.payload
            m.d.comb += self.segments.ready.eq(takes_segment)
            with m.If(self.segments.valid & self.segments.ready):
                lo = seg_in.start[:lw] if lw else Const(0, 1)
                m.d.sync += accept(seg_in, [Cat(seg_in.lo, Const(0, 1)).as_signed() - lo])
        else:
            # A register stage in front: the second half's first column, a word on from the
            # first's, comes from a register at the accept.
            pre = Signal(self.segment_layout)
            pre_x = [Signal(x_width, name=f"pre_x{h}") for h in halves]
            pre_valid = Signal()
            seg_in = self.segments.payload
            lo = seg_in.start[:lw]
            x0 = Signal(x_width)
            x1 = Signal(x_width)
            m.d.comb += [x0.eq(Cat(seg_in.lo, Const(0, 1)).as_signed() - lo),
                         x1.eq(x0 + x_step)]
            take_pre = Signal()
            m.d.comb += [take_pre.eq(pre_valid & takes_segment),
                         self.segments.ready.eq(~pre_valid | take_pre)]
            with m.If(take_pre):
                m.d.sync += [pre_valid.eq(0), *accept(pre, pre_x)]
            with m.If(self.segments.valid & self.segments.ready):
                m.d.sync += [pre_valid.eq(1), pre.eq(seg_in), pre_x[0].eq(x0),
                             pre_x[1].eq(Mux(x1 >= x_bound, x1 - width_, x1))]
        pairs.build()

        # -- Index, first stage: each word's bits in the segment, and its block's count. -------
        head = pairs.head
        head_data = data.View(pair_data_layout, head.data)
        half_index1 = data.StructLayout({"info": item_layout, "span": wb, "base": g.cursor_shape})
        index1 = Signal(data.StructLayout({
            "half": data.ArrayLayout(half_index1, words), "before": wb}))
        index1_valid = Signal()
        # (The loop's items: each word's span, its count and its first value index.)
        m.submodules.beats = beats = SpanBeats(g, item_layout)
        index2 = Signal(beats.items_layout)
        index2_valid = Signal()
        index2_ready = Signal()
        index1_ready = Signal()
        m.d.comb += index1_ready.eq(~index1_valid | index2_ready)
        m.d.comb += pairs.pop.eq(index1_ready)
        with m.If(index1_ready):
            m.d.sync += index1_valid.eq(pairs.count != 0)
            for h in halves:
                info = head.info.item[h]
                head_word = head_data[h][:wb]
                head_entry = data.View(g.directory_entry_layout, head_data[h][wb:])
                in_span = Signal(wb, name=f"in_span{h}")
                for j in range(wb):
                    # (The ends' comparisons would be constant: left out.)
                    inside = [info.lo <= j] * (j < wb - 1) + [info.hi >= j] * (j > 0)
                    in_bits = inside[0] & inside[1] if len(inside) == 2 else (
                        inside[0] if inside else 1)
                    m.d.comb += in_span[j].eq(in_bits)
                present = head.info.present[h]
                m.d.sync += [index1.half[h].info.eq(info),
                             index1.half[h].span.eq(Mux(present, head_word & in_span, 0)),
                             index1.half[h].base.eq(head_entry.count
                                                    + Mux(info.odd, head_entry.first, 0))]
            below = Signal(wb)
            for j in range(wb):
                m.d.comb += below[j].eq(head.info.item[0].lo > j if j < wb - 1 else 0)
            m.d.sync += index1.before.eq(head_data[0][:wb] & below)

        # -- Index, second stage: the value index of each half's first kept bit. ------------
        # (Only the first half starts within its word: the second's starts at its bit 0.)
        with m.If(index2_ready):
            m.d.sync += index2_valid.eq(index1_valid)
            for h in halves:
                m.d.sync += [index2.half[h].info.eq(index1.half[h].info),
                             index2.half[h].span.eq(index1.half[h].span),
                             index2.half[h].count.eq(popcount(index1.half[h].span)),
                             index2.half[h].index.eq(
                                 index1.half[h].base + (popcount(index1.before) if h == 0
                                                        else 0))]

        # -- Pick, values, lanes: the loop (:class:`SpanBeats`). ---------------------------
        # The loop takes its items through a register slice, so that whether it moves on
        # (a function of the pick) does not reach back through the index stages to the queue.
        m.submodules.loop_in = loop_in = SkidBuffer(index2.shape())
        m.d.comb += [loop_in.i.valid.eq(index2_valid), loop_in.i.payload.eq(index2),
                     index2_ready.eq(~index2_valid | loop_in.i.ready)]
        wiring.connect(m, loop_in.o, beats.items)
        m.d.comb += [beats.start.eq(self.start), beats.stride2.eq(sh),
                     beats.value_base.eq(desc.value_base),
                     *[self.value_addr[h].eq(beats.value_addr[h]) for h in halves],
                     *[beats.value_data[h].eq(self.value_data[h]) for h in halves]]
        lane_stage = beats.o.payload
        out_lanes = words * lanes

        # -- Pack: the lanes kept, to the front. ----------------------------------------------
        beat = self.o.payload
        m.d.comb += beats.o.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(beats.o.valid & beats.o.ready):
            # A beat none of whose bits is emitted ends here.
            m.d.sync += [self.o.valid.eq(lane_stage.keep.any()), beat.row.eq(lane_stage.row),
                         beat.count.eq(popcount(lane_stage.keep)), beat.last.eq(0)]
            # Output lane k takes the k-th kept lane: the kept lanes before lane i are its
            # destination.
            for k in range(out_lanes):
                col_k, value_k = 0, 0
                for i in range(k, out_lanes):
                    before = popcount(lane_stage.keep[:i]) if i else Const(0, 1)
                    hit = lane_stage.keep[i] & (before == k)
                    col_k = Mux(hit, lane_stage.col[i], col_k)
                    value_k = Mux(hit, lane_stage.value[i], value_k)
                m.d.sync += [beat.col[k].eq(col_k), beat.value[k].eq(value_k)]

        pre_busy = pre_valid if words > 1 else Const(0)
        m.d.comb += self.busy.eq(active | pre_busy | (prep_left != 0) | (pairs.count != 0)
                                 | pairs.pending | index1_valid | index2_valid
                                 | (loop_in.occupancy != 0) | beats.busy | self.o.valid)
        return m
