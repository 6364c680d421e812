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
    register. ``issue`` may be high only while ``room``.

    With ``lagged``, an entry popped leaves the registers a cycle later, so that ``pop`` (the
    consumer's ready, late in its cycle) goes to one register instead of every entry's
    enable: the head is then the entry after the one popped last (a two-way choice by a
    register), and one entry more holds the one popped. ``count``, ``head`` and ``room`` are
    the same cycle by cycle."""

    def __init__(self, m, name, info_layout, data_width, depth=4, lagged=False):
        self.layout = data.StructLayout({"info": info_layout, "data": data_width})
        slots = depth + lagged
        self.entries = [Signal(self.layout, name=f"{name}_q{i}") for i in range(slots)]
        self.stored = Signal(range(slots + 1), name=f"{name}_stored")  # entries held
        self.lag = Signal(name=f"{name}_lag") if lagged else Const(0)  # [0] popped, held
        self.count = Signal(range(depth + 1), name=f"{name}_count")  # entries not popped
        self.pending = Signal(name=f"{name}_pending")
        self.pending_info = Signal(info_layout, name=f"{name}_pending_info")
        self.issue = Signal(name=f"{name}_issue")
        self.issue_info = Signal(info_layout, name=f"{name}_issue_info")
        self.pop = Signal(name=f"{name}_pop")
        self.room = Signal(name=f"{name}_room")
        self.mem_data = Signal(data_width, name=f"{name}_mem_data")
        self.head = Signal(self.layout, name=f"{name}_head")
        self.m, self.depth, self.slots = m, depth, slots

    def build(self):
        m, depth, slots, stored, lag = self.m, self.depth, self.slots, self.stored, self.lag
        count = self.count
        taken = Signal.like(self.pop)
        m.d.comb += [count.eq(stored - lag), taken.eq(self.pop & (count != 0)),
                     self.room.eq(count + self.pending < depth),
                     self.head.eq(Mux(lag, self.entries[1], self.entries[0]) if slots > depth
                                  else self.entries[0])]
        # Entries leave by ``shift`` this cycle: the one popped now, or the one popped before.
        shift = lag if slots > depth else taken
        left = Signal.like(stored)
        m.d.comb += left.eq(stored - shift)
        if slots > depth:
            m.d.sync += lag.eq(taken)
        arriving = Signal(self.layout)
        m.d.comb += [arriving.info.eq(self.pending_info), arriving.data.eq(self.mem_data)]
        for i, entry in enumerate(self.entries):
            shifted = Mux(shift, self.entries[i + 1], entry) if i + 1 < slots else entry
            with m.If(self.pending & (left == i)):
                m.d.sync += entry.eq(arriving)
            with m.Else():
                m.d.sync += entry.eq(shifted)
        m.d.sync += [stored.eq(left + self.pending), self.pending.eq(self.issue),
                     self.pending_info.eq(self.issue_info)]


def _position(one_hot):
    """The index of the set bit of a one-hot word (0 for none), as a tree of ORs."""
    hits = [Mux(one_hot[j], j, 0) for j in range(1, len(one_hot))]
    while len(hits) > 1:
        hits = [hits[k] | hits[k + 1] if k + 1 < len(hits) else hits[k]
                for k in range(0, len(hits), 2)]
    return hits[0] if hits else Const(0, 1)


def _taken(lane_ok, one_hot):
    """The bits of the lanes taken: the OR of each taken lane's one-hot bit."""
    acc = Mux(lane_ok[0], one_hot[0], 0)
    for i in range(1, len(lane_ok)):
        acc = acc | Mux(lane_ok[i], one_hot[i], 0)
    return acc


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
        wb, lanes, width, words = g.word_bits, g.lanes, g.width, g.conv_words
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
        pairs = _ReadQueue(m, "words", pair_layout, pair_data_layout.size)
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
            return [shift[h].eq(x + shift0), first_lo[h].eq(lo - x), first_hi[h].eq(hi - x),
                    second_lo[h].eq(lo_plus_w - x), second_hi[h].eq(hi_plus_w - x),
                    nx[h].eq(following), nx_wrapped[h].eq(following - width_),
                    nx_raised[h].eq(following + width_),
                    nx_wraps[h].eq(following >= x_bound), nx_low[h].eq(following < 0)]

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
        index2 = Signal(data.StructLayout({"half": data.ArrayLayout(data.StructLayout({
            "info": item_layout, "span": wb, "count": range(wb + 1),
            "index": g.cursor_shape}), words)}))
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

        # -- Pick: the loop, a beat of kept bits a cycle. ---------------------------------
        # The loop takes its items through a register slice, so that whether it moves on
        # (a function of the pick) does not reach back through the index stages to the queue.
        m.submodules.loop_in = loop_in = SkidBuffer(index2.shape())
        m.d.comb += [loop_in.i.valid.eq(index2_valid), loop_in.i.payload.eq(index2),
                     index2_ready.eq(~index2_valid | loop_in.i.ready)]

        def single_word_loop():
            """The loop, values and lanes of one word a cycle: ``(lane_stage, lane_valid,
            lane_ready, busy)``."""
            # -- Pick: the loop, a beat of kept bits a cycle. -------------------------------------
            m.submodules.pick = pick = LanePick(word_bits=wb, lanes=lanes)
            item = Signal(item_layout)
            span = Signal(wb)          # the word's kept bits in the segment not yet taken
            index = Signal(g.cursor_shape)  # the value index of span's first kept bit
            # span's kept bits, counted a stage ahead: the beat's take and whether bits are
            # left come from registers, not through the pick.
            count = Signal(range(wb + 1))
            held = Signal()            # an item is in the loop
            m.d.comb += pick.segment.eq(span)
            offset = Signal(range(max(lanes, 2)))
            limit = Signal(range(lanes + 1))  # lanes whose values the window holds
            # The value word the last beat read (relative to the tensor's first): a beat whose
            # first value lies in it may take values up to the end of the word after it.
            word = Signal(g.cursor_shape.width - ll + 1)
            last_word = Signal.like(word)
            last_valid = Signal()
            # Whether the first value lies in the word the last beat read: a register, set as
            # the beat is requested (within an item, from where the beat's values end) or as
            # an item is taken (a comparison of its word), so that no comparison lies in
            # front of the take.
            chained = Signal()
            m.d.comb += [offset.eq(index[:ll] if ll else 0), word.eq(index >> ll),
                         limit.eq(Mux(chained, lanes, lanes - offset))]
            lane_ok = Signal(lanes)    # lanes taken (rank below both the count and the limit)
            taken = Signal(wb)
            take = Signal(range(lanes + 1))
            more = Signal()
            for i in range(lanes):
                m.d.comb += lane_ok[i].eq((i < limit) & (i < count))
            m.d.comb += taken.eq(_taken(lane_ok, pick.one_hot))
            if lanes == 1:  # the window always holds the one lane's value
                m.d.comb += [take.eq(count != 0), more.eq(count > 1)]
            else:
                m.d.comb += [take.eq(Mux(count > limit, limit, count)),
                             more.eq(count > limit)]

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
            m.d.comb += loop_in.o.ready.eq(~held | (step & ~more))
            with m.If(step):
                m.d.sync += [span.eq(span & ~taken), count.eq(count - take),
                             index.eq(index + take)]
                with m.If(~more):
                    m.d.sync += held.eq(0)
            with m.If(request_ready):
                m.d.sync += request_valid.eq(0)
            spans = Signal()  # the beat's values run into the next word
            m.d.comb += spans.eq(offset + take > lanes if lanes > 1 else 0)
            requesting = Signal()
            m.d.comb += requesting.eq(step & (count != 0))
            with m.If(requesting):
                m.d.sync += [request_valid.eq(1), request.row.eq(item.row),
                             request.bias.eq(item.bias), request.lane_ok.eq(lane_ok),
                             request.phase.eq(item.phase), request.valid.eq(item.valid),
                             request.offset.eq(offset), request.window.eq(spans),
                             request_addr.eq(desc.value_base + word + spans),
                             last_word.eq(word + spans), last_valid.eq(1),
                             # The next beat's values start in the word read unless this
                             # beat's end at that word's end.
                             chained.eq(offset + take != lanes)]
                for i in range(lanes):
                    m.d.sync += request.one_hot[i].eq(pick.one_hot[i])
            with m.If(loop_in.o.valid & loop_in.o.ready):
                payload = loop_in.o.payload.half[0]
                m.d.sync += [held.eq(1), item.eq(payload.info), span.eq(payload.span),
                             count.eq(payload.count), index.eq(payload.index)]
                # The value word read last once this cycle's beat is requested.
                read_last = Mux(requesting, word + spans, last_word)
                m.d.sync += chained.eq((last_valid | requesting)
                                       & (read_last == (payload.index >> ll)))
            with m.If(self.start):
                m.d.sync += [last_valid.eq(0), chained.eq(0)]

            # -- Values: the beat's value word, read into a queue. ---------------------------------
            values = _ReadQueue(m, "values", beat_layout, lanes * width, lagged=True)
            m.d.comb += [self.value_addr[0].eq(request_addr),
                         values.mem_data.eq(self.value_data[0]),
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
                    position = _position(vhead.info.one_hot[i])
                    col = Signal(col_width, name=f"lane_col{i}")
                    m.d.comb += col.eq(vhead.info.bias + Mux(sh, position >> 1, position))
                    m.d.sync += [
                        lane_stage.col[i].eq(col),
                        lane_stage.value[i].eq(
                            window.word_select((vhead.info.offset + i)[:ll + 1], width)),
                    ]
            return lane_stage, lane_valid, lane_ready, (held | request_valid | values.pending
                                                        | (values.count != 0))

        def word_pair_loop():
            """The loop, values and lanes of two words a cycle: ``(lane_stage, lane_valid,
            lane_ready, busy)``.

            A beat takes up to ``lanes`` kept bits of the first word, and, in the beat that
            ends the first word's, up to ``lanes`` of the second's. Their values are one run
            (the second word's follow the first's), read through two value words a beat: the
            two words from the run's first, or, when the run starts in the word the last beat
            read second, the two after it (a window of three words). So the first word's bits
            never wait for the window, and the second's only when the run would leave it."""
            item = [Signal(item_layout, name=f"item{h}") for h in halves]
            span = [Signal(wb, name=f"span{h}") for h in halves]  # kept bits not yet taken
            index = [Signal(g.cursor_shape, name=f"index{h}") for h in halves]
            # Each span's kept bits, counted a stage ahead: the takes, and whether bits are
            # left, come from registers; the first word's pick is not on the second's path.
            count = [Signal(range(wb + 1), name=f"count{h}") for h in halves]
            held = Signal()            # a pair is in the loop
            picks = []
            for h in halves:
                pick = LanePick(word_bits=wb, lanes=lanes)
                m.submodules[f"pick{h}"] = pick
                m.d.comb += pick.segment.eq(span[h])
                picks.append(pick)
            first_kept = Signal()      # the first word has bits left
            start = Signal(g.cursor_shape)   # the run's first value
            offset = Signal(range(max(lanes, 2)))
            word = Signal(g.cursor_shape.width - ll + 1)
            last_word = Signal.like(word)    # the value word the last beat read second
            last_valid = Signal()
            # Whether the run starts in the word the last beat read second: a register, as
            # in the one-word loop.
            chained = Signal()
            limit = Signal(range(2 * lanes + 1))  # values the window holds from the run's first
            m.d.comb += [first_kept.eq(count[0] != 0),
                         start.eq(Mux(first_kept, index[0], index[1])),
                         offset.eq(start[:ll] if ll else 0), word.eq(start >> ll),
                         limit.eq(Mux(chained, 2 * lanes, 2 * lanes - offset))]
            # The first word: up to ``lanes`` bits, always inside the window.
            take0 = Signal(range(lanes + 1))
            more0 = Signal()
            m.d.comb += [more0.eq(count[0] > lanes), take0.eq(Mux(more0, lanes, count[0]))]
            # The second word: only once the first's end in this beat, up to the window's end.
            room1 = Signal(range(2 * lanes + 1))
            fit1 = Signal(range(lanes + 1))  # the second word's lanes the window holds
            take1 = Signal(range(lanes + 1))
            more1 = Signal()
            m.d.comb += [room1.eq(limit - take0),
                         fit1.eq(Mux(room1 > lanes, lanes, room1)),
                         take1.eq(Mux(more0, 0, Mux(count[1] > fit1, fit1, count[1]))),
                         more1.eq(Mux(more0, count[1] != 0, count[1] > fit1))]
            lane_ok = [Signal(lanes, name=f"lane_ok{h}") for h in halves]
            taken = [Signal(wb, name=f"taken{h}") for h in halves]
            for i in range(lanes):
                # (Each bound compared on its own, not through the takes' minimum.)
                m.d.comb += [lane_ok[0][i].eq(i < count[0]),
                             lane_ok[1][i].eq(~more0 & (i < fit1) & (i < count[1]))]
            for h in halves:
                m.d.comb += taken[h].eq(_taken(lane_ok[h], picks[h].one_hot))

            half_layout = data.StructLayout({
                "bias": col_width,
                "one_hot": data.ArrayLayout(wb, lanes),
                "lane_ok": lanes,          # lanes picked
                "phase": 1,                # the item's, for the bits emitted
                "valid": wb,
            })
            beat_layout = data.StructLayout({
                "row": range(g.max_rows),
                "half": data.ArrayLayout(half_layout, words),
                "offset": range(max(lanes, 2)),   # the run's first value in the window
                "take0": range(lanes + 1),        # the first word's values in the run
                "window": 1,   # the run starts in the word the last beat read second
            })
            request = Signal(beat_layout)
            request_valid = Signal()
            request_addr = Signal(g.value_addr_width + 1)
            request_ready = Signal()
            step = Signal()  # the loop moves on this cycle
            done = Signal()  # neither word has bits left after this beat
            m.d.comb += [step.eq(held & request_ready), done.eq(~more0 & ~more1),
                         loop_in.o.ready.eq(~held | (step & done))]
            with m.If(step):
                for h, take in ((0, take0), (1, take1)):
                    m.d.sync += [span[h].eq(span[h] & ~taken[h]), count[h].eq(count[h] - take),
                                 index[h].eq(index[h] + take)]
                with m.If(done):
                    m.d.sync += held.eq(0)
            with m.If(request_ready):
                m.d.sync += request_valid.eq(0)
            # Every beat reads two value words, whether or not a bit it takes is emitted.
            requesting = Signal()
            run_end = Signal(range(3 * lanes + 1))  # past the run's last value, in the window
            m.d.comb += [requesting.eq(step & (first_kept | (count[1] != 0))),
                         run_end.eq(offset + take0 + take1)]
            with m.If(requesting):
                m.d.sync += [request_valid.eq(1), request.row.eq(item[0].row),
                             request.offset.eq(offset), request.take0.eq(take0),
                             request.window.eq(chained),
                             request_addr.eq(desc.value_base + word + chained),
                             last_word.eq(word + chained + 1), last_valid.eq(1),
                             # The next run starts in the second word read.
                             chained.eq((run_end >> ll) == chained + 1)]
                for h in halves:
                    m.d.sync += [request.half[h].bias.eq(item[h].bias),
                                 request.half[h].lane_ok.eq(lane_ok[h]),
                                 request.half[h].phase.eq(item[h].phase),
                                 request.half[h].valid.eq(item[h].valid)]
                    for i in range(lanes):
                        m.d.sync += request.half[h].one_hot[i].eq(picks[h].one_hot[i])
            with m.If(loop_in.o.valid & loop_in.o.ready):
                m.d.sync += held.eq(1)
                for h in halves:
                    m.d.sync += [item[h].eq(loop_in.o.payload.half[h].info),
                                 span[h].eq(loop_in.o.payload.half[h].span),
                                 count[h].eq(loop_in.o.payload.half[h].count),
                                 index[h].eq(loop_in.o.payload.half[h].index)]
                new = loop_in.o.payload.half
                new_start = Mux(new[0].count != 0, new[0].index, new[1].index)
                read_last = Mux(requesting, word + chained + 1, last_word)
                m.d.sync += chained.eq((last_valid | requesting)
                                       & (read_last == (new_start >> ll)))
            with m.If(self.start):
                m.d.sync += [last_valid.eq(0), chained.eq(0)]

            # -- Values: the beat's two value words, read into a queue. ---------------------
            values = _ReadQueue(m, "values", beat_layout, 2 * lanes * width, lagged=True)
            m.d.comb += [self.value_addr[0].eq(request_addr),
                         self.value_addr[1].eq(request_addr + 1),
                         values.mem_data.eq(Cat(self.value_data[0], self.value_data[1])),
                         values.issue.eq(request_valid & values.room),
                         values.issue_info.eq(request),
                         request_ready.eq(~request_valid | values.room)]
            values.build()

            # -- Lanes: each lane's value and column. ----------------------------------------
            lane_layout = data.StructLayout({
                "row": range(g.max_rows),
                "keep": 2 * lanes,
                "col": data.ArrayLayout(range(g.max_cols), 2 * lanes),
                "value": data.ArrayLayout(signed(width), 2 * lanes),
            })
            lane_stage = Signal(lane_layout)
            lane_valid = Signal()
            lane_ready = Signal()
            m.d.comb += values.pop.eq(lane_ready)
            vhead = values.head
            info = vhead.info
            pair_data = vhead.data
            second = pair_data[lanes * width:]
            previous = Signal(lanes * width)  # the value word the beat before read second
            window = Signal(3 * lanes * width)
            m.d.comb += window.eq(Mux(info.window, Cat(previous, pair_data),
                                      Cat(pair_data, second)))
            with m.If(lane_ready & (values.count != 0)):
                m.d.sync += previous.eq(second)
            with m.If(lane_ready):
                m.d.sync += [lane_valid.eq(values.count != 0), lane_stage.row.eq(info.row)]
            for h in halves:
                half = info.half[h]
                phase_mask = Signal(wb, name=f"phase_mask{h}")
                for j in range(wb):
                    m.d.comb += phase_mask[j].eq((~sh | (half.phase == (j & 1)))
                                                 & half.valid[j])
                # The second word's values follow the first's in the run.
                base = info.offset if h == 0 else info.offset + info.take0
                with m.If(lane_ready):
                    for i in range(lanes):
                        lane = h * lanes + i
                        m.d.sync += lane_stage.keep[lane].eq(
                            half.lane_ok[i] & (half.one_hot[i] & phase_mask).any())
                        position = _position(half.one_hot[i])
                        col = Signal(col_width, name=f"lane_col{lane}")
                        m.d.comb += col.eq(half.bias + Mux(sh, position >> 1, position))
                        where = Signal(range(3 * lanes), name=f"lane_value{lane}")
                        m.d.comb += where.eq(base + i)
                        m.d.sync += [lane_stage.col[lane].eq(col),
                                     lane_stage.value[lane].eq(
                                         window.word_select(where, width))]
            return lane_stage, lane_valid, lane_ready, (held | request_valid | values.pending
                                                        | (values.count != 0))

        if words == 1:
            lane_stage, lane_valid, lane_ready, loop_busy = single_word_loop()
        else:
            lane_stage, lane_valid, lane_ready, loop_busy = word_pair_loop()
        out_lanes = words * lanes

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
                                 | (loop_in.occupancy != 0) | loop_busy
                                 | lane_valid | self.o.valid)
        return m
