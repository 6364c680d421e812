"""The scan of a conv read: a segment's kept elements, with their values, found through the
directory."""

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith import popcount
from ..skid_buffer import SkidBuffer
from .lane_pick import LanePick

__all__ = ["SegmentScan"]


class _ReadQueue:
    """Reads a memory a cycle after an address register, and queues each word with what came
    with its address, in registers (``depth`` entries): the memory's output goes only to a
    register. ``issue`` may be high only while ``room``."""

    def __init__(self, m, name, info_layout, data_width, depth=4):
        self.layout = data.StructLayout({"info": info_layout, "data": data_width})
        self.entries = [Signal(self.layout, name=f"{name}_q{i}") for i in range(depth)]
        self.count = Signal(range(depth + 1), name=f"{name}_count")
        self.pending = Signal(name=f"{name}_pending")
        self.pending_info = Signal(info_layout, name=f"{name}_pending_info")
        self.issue = Signal(name=f"{name}_issue")
        self.issue_info = Signal(info_layout, name=f"{name}_issue_info")
        self.pop = Signal(name=f"{name}_pop")
        self.room = Signal(name=f"{name}_room")
        self.mem_data = Signal(data_width, name=f"{name}_mem_data")
        self.head = self.entries[0]
        self.m, self.depth = m, depth

    def build(self):
        m, depth, count = self.m, self.depth, self.count
        taken = Signal.like(self.pop)
        left = Signal.like(count)
        m.d.comb += [taken.eq(self.pop & (count != 0)), left.eq(count - taken),
                     self.room.eq(count + self.pending < depth)]
        arriving = Signal(self.layout)
        m.d.comb += [arriving.info.eq(self.pending_info), arriving.data.eq(self.mem_data)]
        for i, entry in enumerate(self.entries):
            shifted = Mux(taken, self.entries[i + 1], entry) if i + 1 < depth else entry
            with m.If(self.pending & (left == i)):
                m.d.sync += entry.eq(arriving)
            with m.Else():
                m.d.sync += entry.eq(shifted)
        m.d.sync += [count.eq(left + self.pending), self.pending.eq(self.issue),
                     self.pending_info.eq(self.issue_info)]


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
    * *Pick*: the loop. A beat takes the next kept bits of the word inside the segment, at
      most ``lanes``, whose values lie in a two-word window: the value word the last beat
      read and the one after it, or, when the beat's first value is in another word, that
      word alone (so a beat reads one value-memory word). A word takes one cycle, or one
      per beat. The loop moves on whenever the value read has room, whatever the beat holds.
    * *Values*: the beat's value word is read; then each lane's value (from that word, or
      from the word before it and that word) and column are found, with which of the lanes
      are emitted: those on the segment's phase at stride 2 and in column range (the others'
      values lie between, and are passed over); then the lanes emitted are packed to the
      front, and a beat with none ends there. Two stages.

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
    bitmap_addr, bitmap_data, directory_addr, directory_data, value_addr, value_data : Signal
        The memories' read ports (addresses out, from registers; data in, a cycle later).
    o : Out(stream.Signature(rdata_layout))
        The beats: up to ``lanes`` elements of one row, ``last`` 0.
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
            "bitmap_addr": Out(g.bitmap_addr_width),
            "bitmap_data": In(g.word_bits),
            "directory_addr": Out(g.directory_addr_width),
            "directory_data": In(g.directory_entry_layout),
            "value_addr": Out(g.value_addr_width),
            "value_data": In(g.lanes * g.width),
            "o": Out(stream.Signature(g.rdata_layout)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geometry
        wb, lanes, width = g.word_bits, g.lanes, g.width
        lw = (wb - 1).bit_length()         # bits of a position in a word
        ll = (lanes - 1).bit_length()      # bits of a lane in a value word
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
                    divides = 1 if d == 0 else Cat(*[width_ == w for w in range(1, d + 1)
                                                     if d % w == 0]).any()
                    terms.append((next_start == first) & divides)
                m.d.comb += bits[i].eq(Cat(*terms).any())
            last = Signal(range(group))
            for i in range(group):
                with m.If(bits[i]):
                    m.d.comb += last.eq(i)
            m.d.sync += [row_starts.eq(Cat(row_starts[group:], bits)),
                         next_start.eq(Mux(bits.any(), last + width_, next_start) - group),
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

        # -- Words: a segment's words, one a cycle, each with its directory entry. ----------
        words = _ReadQueue(m, "words", item_layout,
                           g.word_bits + g.directory_entry_bits)
        active = Signal()
        w_addr = Signal(g.bitmap_addr_width + 1)   # the word read next (in the memory)
        d_addr = Signal(g.directory_addr_width + 1)
        words_left = Signal(Shape.cast(range(g.max_cols // wb + 3)).width + 1)
        cur = Signal(item_layout)   # the next word's item (lo, hi fixed at issue)
        last_hi = Signal(range(wb))
        # The column x of the next word's bit 0 (see above) is not kept: the next word's is,
        # worked out a word ahead (``nx``, ``nx - W`` and whether it wraps).
        nx = Signal(signed(xw + 1))
        nx_wrapped = Signal(signed(xw + 1))
        nx_wraps = Signal()
        cur_lo = Signal(range(g.max_cols))
        cur_hi = Signal(range(g.max_cols))
        cur_filter = Signal()
        m.d.comb += [self.bitmap_addr.eq(w_addr), self.directory_addr.eq(d_addr),
                     words.mem_data.eq(Cat(self.bitmap_data, self.directory_data))]
        issue_info = words.issue_info
        # The word's valid bits, from registers that follow its column: the pattern's shift
        # (x + c - 3), the segment's bounds less x, and which of the segment's ends are cut,
        # each set with the segment and stepped with x, so that no adder or comparison lies
        # in front of the shifter.
        window = Signal(wb + 6)
        cut = Signal(wb)
        shift = Signal(range(pattern_len))
        lo_cut = Signal(3)       # bit d: cur_lo > d
        hi_cut = Signal(3)       # bit d - 1: cur_hi + d < W
        m.d.comb += window.eq((row_starts >> shift)[:wb + 6])
        for j in range(wb):
            # Bit j's column is t = x + j, at window[j + 3].
            terms = [lo_cut[d] & window[j + 3 - d] for d in range(3)]
            terms += [hi_cut[d - 1] & window[j + 3 + d] for d in range(1, 4)]
            m.d.comb += cut[j].eq(Cat(*terms).any())
        ones = Const((1 << wb) - 1, wb)

        def bit_range(a, b):
            """Bits a .. b of a word (signed bounds)."""
            a_c = Mux(a < 0, 0, Mux(a > wb, wb, a))
            b_c = Mux(b < -1, -1, Mux(b > wb - 1, wb - 1, b)) + 1
            return (ones << a_c[:lw + 1])[:wb] & ~(ones << b_c[:lw + 1])[:wb]

        first_lo = Signal(signed(xw + 1))   # cur_lo - x
        first_hi = Signal(signed(xw + 1))   # cur_hi - x
        second_lo = Signal(signed(xw + 2))  # the same a map row on: + W
        second_hi = Signal(signed(xw + 2))
        lo_w = Signal(range(g.max_cols * 2 + 1))   # cur_lo + W
        hi_w = Signal(range(g.max_cols * 2 + 1))   # cur_hi + W

        def follow_x(x, lo, hi, lo_plus_w, hi_plus_w, name):
            """The registers that follow the column ``x`` of a word's bit 0, and the next
            word's column."""
            following = Signal(signed(xw + 1), name=f"{name}_next_x")
            m.d.comb += following.eq(x + x_step)
            return [shift.eq(x + shift0), first_lo.eq(lo - x), first_hi.eq(hi - x),
                    second_lo.eq(lo_plus_w - x), second_hi.eq(hi_plus_w - x),
                    nx.eq(following), nx_wrapped.eq(following - width_),
                    nx_wraps.eq(following >= x_bound)]
        wide_valid = bit_range(first_lo, first_hi) | bit_range(second_lo, second_hi)
        m.d.comb += [issue_info.eq(cur),
                     issue_info.hi.eq(Mux(words_left == 0, last_hi, wb - 1)),
                     issue_info.valid.eq(Mux(cur_filter, Mux(narrow, ~cut, wide_valid), ones)),
                     words.issue.eq(active & words.room)]
        last_word = Signal()
        m.d.comb += last_word.eq(words_left == 0)
        with m.If(words.issue):
            # A word on, the column of its position 0 moves by word_bits / stride (with
            # one-bit words at stride 2, by one every second word: when the phase is 0).
            step_bias = Mux(sh, ~cur.phase, 1) if wb == 1 else Mux(sh, wb >> 1, wb)
            m.d.sync += [w_addr.eq(w_addr + 1), d_addr.eq(d_addr + cur.odd),
                         words_left.eq(words_left - 1),
                         cur.lo.eq(0), cur.odd.eq(~cur.odd),
                         cur.bias.eq(cur.bias + step_bias),
                         cur.phase.eq(cur.phase ^ (wb & 1))]
            next_x = Signal(signed(xw + 1))
            m.d.comb += next_x.eq(Mux(nx_wraps, nx_wrapped, nx))
            m.d.sync += follow_x(next_x, cur_lo, cur_hi, lo_w, hi_w, "word")
            with m.If(last_word):
                m.d.sync += active.eq(0)
        m.d.comb += self.segments.ready.eq((prep_left == 0)
                                           & (~active | (words.issue & last_word)))
        with m.If(self.segments.valid & self.segments.ready):
            first = seg_in.start >> lw
            lo = seg_in.start[:lw] if lw else Const(0, 1)
            m.d.sync += [
                active.eq(1),
                w_addr.eq(desc.bitmap_base + first),
                d_addr.eq(desc.directory_base + (first >> 1)),
                words_left.eq((seg_in.end >> lw) - first),
                last_hi.eq(seg_in.end[:lw] if lw else 0),
                cur.row.eq(seg_in.row), cur.lo.eq(lo), cur.odd.eq(first[0]),
                cur.bias.eq(seg_in.col - Mux(sh, lo >> 1, lo)),
                cur.phase.eq(lo[0]),
                *follow_x(Cat(seg_in.lo, Const(0, 1)).as_signed() - lo, seg_in.lo, seg_in.hi,
                          seg_in.lo + width_, seg_in.hi + width_, "segment"),
                lo_w.eq(seg_in.lo + width_), hi_w.eq(seg_in.hi + width_),
                lo_cut.eq(Cat(*[seg_in.lo > d for d in range(3)])),
                hi_cut.eq(Cat(*[seg_in.hi + d < width_ for d in range(1, 4)])),
                cur_lo.eq(seg_in.lo), cur_hi.eq(seg_in.hi),
                cur_filter.eq(seg_in.filter),
            ]
        words.build()

        # -- Index, first stage: the word's bits in the segment, and the block's count. ---------
        head = words.head
        head_word = head.data[:wb]
        head_entry = data.View(g.directory_entry_layout, head.data[wb:])
        index1 = Signal(data.StructLayout({
            "info": item_layout, "span": wb, "before": wb, "base": g.cursor_shape}))
        index1_valid = Signal()
        index2 = Signal(data.StructLayout({
            "info": item_layout, "span": wb, "index": g.cursor_shape}))
        index2_valid = Signal()
        index2_ready = Signal()
        index1_ready = Signal()
        m.d.comb += index1_ready.eq(~index1_valid | index2_ready)
        m.d.comb += words.pop.eq(index1_ready)
        with m.If(index1_ready):
            m.d.sync += index1_valid.eq(words.count != 0)
            in_span = Signal(wb)
            below = Signal(wb)
            for j in range(wb):
                # (The ends' comparisons would be constant: left out.)
                inside = [head.info.lo <= j] * (j < wb - 1) + [head.info.hi >= j] * (j > 0)
                in_bits = inside[0] & inside[1] if len(inside) == 2 else (
                    inside[0] if inside else 1)
                m.d.comb += [in_span[j].eq(in_bits),
                             below[j].eq(head.info.lo > j if j < wb - 1 else 0)]
            m.d.sync += [index1.info.eq(head.info), index1.span.eq(head_word & in_span),
                         index1.before.eq(head_word & below),
                         index1.base.eq(head_entry.count
                                        + Mux(head.info.odd, head_entry.first, 0))]

        # -- Index, second stage: the value index of the span's first kept bit. ---------------
        with m.If(index2_ready):
            m.d.sync += [index2_valid.eq(index1_valid), index2.info.eq(index1.info),
                         index2.span.eq(index1.span),
                         index2.index.eq(index1.base + popcount(index1.before))]

        # -- Pick: the loop, a beat of kept bits a cycle. -------------------------------------
        m.submodules.pick = pick = LanePick(word_bits=wb, lanes=lanes)
        item = Signal(item_layout)
        span = Signal(wb)          # the word's kept bits in the segment not yet taken
        index = Signal(g.cursor_shape)  # the value index of span's first kept bit
        held = Signal()            # an item is in the loop
        m.d.comb += pick.segment.eq(span)
        offset = Signal(range(max(lanes, 2)))
        limit = Signal(range(lanes + 1))  # lanes whose values the window holds
        # The value word the last beat read (relative to the tensor's first): a beat whose
        # first value lies in it may take values up to the end of the word after it.
        word = Signal(g.cursor_shape.width - ll + 1)
        last_word = Signal.like(word)
        last_valid = Signal()
        chained = Signal()
        m.d.comb += [offset.eq(index[:ll] if ll else 0), word.eq(index >> ll),
                     chained.eq(last_valid & (last_word == word)),
                     limit.eq(Mux(chained, lanes, lanes - offset))]
        lane_ok = Signal(lanes)    # lanes taken (rank below both the count and the limit)
        taken = Signal(wb)
        take = Signal(range(lanes + 1))
        more = Signal()
        for i in range(lanes):
            m.d.comb += lane_ok[i].eq((i < limit) & (i < pick.take))
        taken_terms = [Mux(lane_ok[i], pick.one_hot[i], 0) for i in range(lanes)]
        acc = taken_terms[0]
        for t in taken_terms[1:]:
            acc = acc | t
        m.d.comb += taken.eq(acc)
        if lanes == 1:  # the window always holds the one lane's value
            m.d.comb += [take.eq(pick.take), more.eq(pick.more)]
        else:
            m.d.comb += [take.eq(Mux(pick.take > limit, limit, pick.take)),
                         more.eq(pick.more | (pick.take > limit))]

        beat_layout = data.StructLayout({
            "row": range(g.max_rows),
            "bias": col_width,
            "one_hot": data.ArrayLayout(wb, lanes),
            "lane_ok": lanes,          # lanes picked
            "phase": 1,                # the item's, for the bits emitted
            "valid": wb,
            "offset": range(max(lanes, 2)),
            "window": 1,               # the values start in the word read before this one
        })
        request = Signal(beat_layout)
        request_valid = Signal()
        request_addr = Signal(g.value_addr_width + 1)
        request_ready = Signal()
        # Every beat reads its value word, whether or not a bit it takes is emitted (on the
        # stride's phase and in column range): that is decided on the value's side, so that the
        # loop's step depends on registers only.
        step = Signal()  # the loop moves on this cycle
        m.d.comb += step.eq(held & request_ready)
        # The loop takes its items through a register slice, so that whether it moves on
        # (a function of the pick) does not reach back through the index stages to the queue.
        m.submodules.loop_in = loop_in = SkidBuffer(index2.shape())
        m.d.comb += [loop_in.i.valid.eq(index2_valid), loop_in.i.payload.eq(index2),
                     index2_ready.eq(~index2_valid | loop_in.i.ready),
                     loop_in.o.ready.eq(~held | (step & ~more))]
        with m.If(step):
            m.d.sync += [span.eq(span & ~taken), index.eq(index + take)]
            with m.If(~more):
                m.d.sync += held.eq(0)
        with m.If(loop_in.o.valid & loop_in.o.ready):
            m.d.sync += [held.eq(1), item.eq(loop_in.o.payload.info),
                         span.eq(loop_in.o.payload.span), index.eq(loop_in.o.payload.index)]
        with m.If(request_ready):
            m.d.sync += request_valid.eq(0)
        spans = Signal()  # the beat's values run into the next word
        m.d.comb += spans.eq(offset + take > lanes if lanes > 1 else 0)
        with m.If(step & span.any()):
            m.d.sync += [request_valid.eq(1), request.row.eq(item.row),
                         request.bias.eq(item.bias), request.lane_ok.eq(lane_ok),
                         request.phase.eq(item.phase), request.valid.eq(item.valid),
                         request.offset.eq(offset), request.window.eq(spans),
                         request_addr.eq(desc.value_base + word + spans),
                         last_word.eq(word + spans), last_valid.eq(1)]
            for i in range(lanes):
                m.d.sync += request.one_hot[i].eq(pick.one_hot[i])

        with m.If(self.start):
            m.d.sync += last_valid.eq(0)

        # -- Values: the beat's value word, read into a queue. ---------------------------------
        values = _ReadQueue(m, "values", beat_layout, lanes * width)
        m.d.comb += [self.value_addr.eq(request_addr), values.mem_data.eq(self.value_data),
                     values.issue.eq(request_valid & values.room),
                     values.issue_info.eq(request), request_ready.eq(~request_valid
                                                                     | values.room)]
        values.build()

        # -- Lanes: each lane's value and column. ----------------------------------------------
        lane_layout = data.StructLayout({
            "row": range(g.max_rows),
            "keep": lanes,
            "col": data.ArrayLayout(range(g.max_cols), lanes),
            "value": data.ArrayLayout(signed(width), lanes),
        })
        lane_stage = Signal(lane_layout)
        lane_valid = Signal()
        lane_ready = Signal()
        m.d.comb += values.pop.eq(lane_ready)
        vhead = values.head
        previous = Signal(lanes * width)  # the value word of the beat before
        window = Signal(2 * lanes * width)
        m.d.comb += window.eq(Mux(vhead.info.window, Cat(previous, vhead.data),
                                  Cat(vhead.data, vhead.data)))
        with m.If(lane_ready & (values.count != 0)):
            m.d.sync += previous.eq(vhead.data)
        # The bits emitted: on the stride's phase, in column range.
        phase_mask = Signal(wb)
        for j in range(wb):
            m.d.comb += phase_mask[j].eq((~sh | (vhead.info.phase == (j & 1)))
                                         & vhead.info.valid[j])
        with m.If(lane_ready):
            m.d.sync += [lane_valid.eq(values.count != 0), lane_stage.row.eq(vhead.info.row)]
            for i in range(lanes):
                m.d.sync += lane_stage.keep[i].eq(
                    vhead.info.lane_ok[i] & (vhead.info.one_hot[i] & phase_mask).any())
            for i in range(lanes):
                hits = [Mux(vhead.info.one_hot[i][j], j, 0) for j in range(1, wb)]
                while len(hits) > 1:
                    hits = [hits[k] | hits[k + 1] if k + 1 < len(hits) else hits[k]
                            for k in range(0, len(hits), 2)]
                position = hits[0] if hits else Const(0, 1)
                col = Signal(col_width, name=f"lane_col{i}")
                m.d.comb += col.eq(vhead.info.bias + Mux(sh, position >> 1, position))
                m.d.sync += [
                    lane_stage.col[i].eq(col),
                    lane_stage.value[i].eq(
                        window.word_select((vhead.info.offset + i)[:ll + 1], width)),
                ]

        # -- Pack: the lanes kept, to the front. ----------------------------------------------
        beat = self.o.payload
        m.d.comb += lane_ready.eq(~lane_valid | ~self.o.valid | self.o.ready)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(lane_valid & lane_ready):
            # A beat none of whose bits is emitted ends here.
            m.d.sync += [self.o.valid.eq(lane_stage.keep.any()), beat.row.eq(lane_stage.row),
                         beat.count.eq(popcount(lane_stage.keep)), beat.last.eq(0)]
            # Output lane k takes the k-th kept lane: the kept lanes before lane i are its
            # destination.
            for k in range(lanes):
                col_k, value_k = 0, 0
                for i in range(k, lanes):
                    before = popcount(lane_stage.keep[:i]) if i else Const(0, 1)
                    hit = lane_stage.keep[i] & (before == k)
                    col_k = Mux(hit, lane_stage.col[i], col_k)
                    value_k = Mux(hit, lane_stage.value[i], value_k)
                m.d.sync += [beat.col[k].eq(col_k), beat.value[k].eq(value_k)]

        m.d.comb += self.busy.eq(active | (prep_left != 0) | (words.count != 0)
                                 | words.pending | index1_valid | index2_valid
                                 | (loop_in.occupancy != 0) | held
                                 | request_valid | values.pending | (values.count != 0)
                                 | lane_valid | self.o.valid)
        return m
