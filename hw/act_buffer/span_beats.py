"""The conv scan's loop: the kept bits of a segment's words, a beat a cycle, with their values
read and placed in lanes."""

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .lane_pick import LanePick
from .read_queue import ReadQueue

__all__ = ["SpanBeats"]


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


class SpanBeats(wiring.Component):
    """Takes a segment's words (one, or a pair: the geometry's ``conv_words``) as items, and
    gives their kept bits as beats of lanes, each with its value and column.

    An item is a word's kept bits inside the segment (``span``), how many they are
    (``count``) and the value index of the first (``index``), with the word's row, column
    bias, stride phase and column-range mask (``info``, :class:`SegmentScan`'s item). Three
    stages: the *loop* takes up to ``lanes`` kept bits of the item a cycle (of each word of a
    pair, the second only in the beat that ends the first's), as many as the value words a
    beat reads hold; the beat's value words are read into a queue; the *lanes* stage places
    each lane's value and column, and marks the lanes emitted (on the stride's phase, in
    column range). The loop's take and its move to the next item follow registers only.

    Parameters
    ----------
    geometry : :class:`hw.act_buffer.BufferGeometry`
    item_layout : StructLayout
        A word's ``info``: ``row``, ``bias``, ``phase``, ``valid`` and the rest of
        :class:`SegmentScan`'s item.

    Attributes
    ----------
    start : Signal, in
        A read begins (no value word is held from before it).
    stride2 : Signal, in
        The read's stride is 2, held.
    value_base : Signal, in
        The tensor's first value word, held.
    items : In(stream.Signature(items_layout))
        Each word's ``info``, ``span``, ``count`` and ``index``, ``conv_words`` a payload.
    value_addr, value_data : View
        The value memory's read ports, one per word (addresses out, from registers; data in,
        a cycle later).
    o : Out(stream.Signature(lane_layout))
        The lanes: ``conv_words * lanes`` of one row, with which are emitted (``keep``).
    busy : Signal, out
        An item or beat is in the loop or its stages.
    """

    def __init__(self, geometry, item_layout):
        g = geometry
        self.geometry, self.item_layout = g, item_layout
        self.col_width = Shape.cast(item_layout["bias"].shape).width
        words, out_lanes = g.conv_words, g.conv_words * g.lanes
        self.items_layout = data.StructLayout({"half": data.ArrayLayout(data.StructLayout({
            "info": item_layout, "span": g.word_bits, "count": range(g.word_bits + 1),
            "index": g.cursor_shape}), words)})
        self.lane_layout = data.StructLayout({
            "row": range(g.max_rows),
            "keep": out_lanes,
            "col": data.ArrayLayout(range(g.max_cols), out_lanes),
            "value": data.ArrayLayout(signed(g.width), out_lanes),
        })
        super().__init__({
            "start": In(1),
            "stride2": In(1),
            "value_base": In(g.descriptor_layout["value_base"].shape),
            "items": In(stream.Signature(self.items_layout)),
            "value_addr": Out(data.ArrayLayout(g.value_addr_width, words)),
            "value_data": In(data.ArrayLayout(g.lanes * g.width, words)),
            "o": Out(stream.Signature(self.lane_layout)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        if self.geometry.conv_words == 1:
            self._one_word(m)
        else:
            self._word_pair(m)
        return m

    def _value_reads(self, m, request, request_valid, request_addr, request_ready):
        """A beat's value words (one per word of an item, from ``request_addr`` on), read
        into a queue whose head the lane stage takes: ``(queue, lane_ready)``."""
        g = self.geometry
        words = g.conv_words
        values = ReadQueue(m, "values", request.shape(), words * g.lanes * g.width,
                           lagged=True)
        m.d.comb += [*[self.value_addr[h].eq(request_addr + h) for h in range(words)],
                     values.mem_data.eq(Cat(*[self.value_data[h] for h in range(words)])),
                     values.issue.eq(request_valid & values.room),
                     values.issue_info.eq(request),
                     request_ready.eq(~request_valid | values.room)]
        values.build()
        lane_ready = Signal()  # the lane stage takes a beat
        m.d.comb += [lane_ready.eq(~self.o.valid | self.o.ready), values.pop.eq(lane_ready)]
        return values, lane_ready

    def _chaining(self, m, chained, word, *, requesting, read_ahead, continues, first_value):
        """Set ``chained``, whether the next beat's first value lies in the value word read
        last: as a beat is ``requesting`` (it reads up to ``read_ahead`` words after its
        first value's ``word``), to ``continues`` (its item goes on from there); as an item
        is taken, from a comparison of its ``first_value``'s word with the word read last
        (this cycle's beat's, if one is requested). So no comparison lies in front of the
        loop's take."""
        ll = (self.geometry.lanes - 1).bit_length()
        last_word = Signal.like(word)  # the value word the last beat read
        word_read = Signal.like(word)
        m.d.comb += word_read.eq(word + read_ahead)
        last_valid = Signal()
        with m.If(requesting):
            m.d.sync += [last_word.eq(word_read), last_valid.eq(1), chained.eq(continues)]
        with m.If(self.items.valid & self.items.ready):
            read_last = Mux(requesting, word_read, last_word)
            m.d.sync += chained.eq((last_valid | requesting)
                                   & (read_last == (first_value >> ll)))
        with m.If(self.start):
            m.d.sync += [last_valid.eq(0), chained.eq(0)]

    def _one_word(self, m):
        """The loop, values and lanes of one word a cycle."""
        g = self.geometry
        wb, lanes, width = g.word_bits, g.lanes, g.width
        ll = (lanes - 1).bit_length()      # bits of a lane in a value word
        item_layout, col_width = self.item_layout, self.col_width
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
        # The value word of span's first kept bit (relative to the tensor's first): when it
        # is the word the last beat read (``chained``, :meth:`_chaining`), the beat may take
        # values up to the end of the word after it.
        word = Signal(g.cursor_shape.width - ll + 1)
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
        m.d.comb += [take.eq(Mux(count > limit, limit, count)), more.eq(count > limit)]

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
        m.d.comb += self.items.ready.eq(~held | (step & ~more))
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
                         request_addr.eq(self.value_base + word + spans)]
            for i in range(lanes):
                m.d.sync += request.one_hot[i].eq(pick.one_hot[i])
        payload = self.items.payload.half[0]
        with m.If(self.items.valid & self.items.ready):
            m.d.sync += [held.eq(1), item.eq(payload.info), span.eq(payload.span),
                         count.eq(payload.count), index.eq(payload.index)]
        # The next beat's values start in the word read unless this beat's end at that
        # word's end.
        self._chaining(m, chained, word, requesting=requesting, read_ahead=spans,
                       continues=offset + take != lanes, first_value=payload.index)

        # -- Values: the beat's value word, read into a queue. ---------------------------------
        values, lane_ready = self._value_reads(m, request, request_valid, request_addr,
                                               request_ready)

        # -- Lanes: each lane's value and column. ----------------------------------------------
        lane_stage, lane_valid = self.o.payload, self.o.valid
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
            m.d.comb += phase_mask[j].eq((~self.stride2 | (vhead.info.phase == (j & 1)))
                                         & vhead.info.valid[j])
        with m.If(lane_ready):
            m.d.sync += [lane_valid.eq(values.count != 0), lane_stage.row.eq(vhead.info.row)]
            for i in range(lanes):
                m.d.sync += lane_stage.keep[i].eq(
                    vhead.info.lane_ok[i] & (vhead.info.one_hot[i] & phase_mask).any())
            for i in range(lanes):
                position = _position(vhead.info.one_hot[i])
                col = Signal(col_width, name=f"lane_col{i}")
                m.d.comb += col.eq(vhead.info.bias + Mux(self.stride2, position >> 1, position))
                m.d.sync += [
                    lane_stage.col[i].eq(col),
                    lane_stage.value[i].eq(
                        window.word_select((vhead.info.offset + i)[:ll + 1], width)),
                ]
        m.d.comb += self.busy.eq(held | request_valid | values.pending
                                 | (values.count != 0) | lane_valid)

    def _word_pair(self, m):
        """The loop, values and lanes of two words a cycle.

        A beat takes up to ``lanes`` kept bits of the first word, and, in the beat that
        ends the first word's, up to ``lanes`` of the second's. Their values are one run
        (the second word's follow the first's), read through two value words a beat: the
        two words from the run's first, or, when the run starts in the word the last beat
        read second, the two after it (a window of three words). So the first word's bits
        never wait for the window, and the second's only when the run would leave it."""
        g = self.geometry
        wb, lanes, width, words = g.word_bits, g.lanes, g.width, g.conv_words
        ll = (lanes - 1).bit_length()      # bits of a lane in a value word
        item_layout, col_width = self.item_layout, self.col_width
        halves = range(words)
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
        # Whether the run starts in the word the last beat read second (:meth:`_chaining`).
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
                     self.items.ready.eq(~held | (step & done))]
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
                         request_addr.eq(self.value_base + word + chained)]
            for h in halves:
                m.d.sync += [request.half[h].bias.eq(item[h].bias),
                             request.half[h].lane_ok.eq(lane_ok[h]),
                             request.half[h].phase.eq(item[h].phase),
                             request.half[h].valid.eq(item[h].valid)]
                for i in range(lanes):
                    m.d.sync += request.half[h].one_hot[i].eq(picks[h].one_hot[i])
        with m.If(self.items.valid & self.items.ready):
            m.d.sync += held.eq(1)
            for h in halves:
                m.d.sync += [item[h].eq(self.items.payload.half[h].info),
                             span[h].eq(self.items.payload.half[h].span),
                             count[h].eq(self.items.payload.half[h].count),
                             index[h].eq(self.items.payload.half[h].index)]
        new = self.items.payload.half
        # The next run starts in the second word read when this one ends in it.
        self._chaining(m, chained, word, requesting=requesting, read_ahead=chained + 1,
                       continues=(run_end >> ll) == chained + 1,
                       first_value=Mux(new[0].count != 0, new[0].index, new[1].index))

        # -- Values: the beat's two value words, read into a queue. ---------------------
        values, lane_ready = self._value_reads(m, request, request_valid, request_addr,
                                               request_ready)

        # -- Lanes: each lane's value and column. ----------------------------------------
        lane_stage, lane_valid = self.o.payload, self.o.valid
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
                m.d.comb += phase_mask[j].eq((~self.stride2 | (half.phase == (j & 1)))
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
                    m.d.comb += col.eq(half.bias + Mux(self.stride2, position >> 1, position))
                    where = Signal(range(3 * lanes), name=f"lane_value{lane}")
                    m.d.comb += where.eq(base + i)
                    m.d.sync += [lane_stage.col[lane].eq(col),
                                 lane_stage.value[lane].eq(
                                     window.word_select(where, width))]
        m.d.comb += self.busy.eq(held | request_valid | values.pending
                                 | (values.count != 0) | lane_valid)
