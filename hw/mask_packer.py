"""Pack the kept elements of a masked stream: the bitmap and the packed (index, value) entries."""

from amaranth.hdl import Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .arith import popcount, prefix_counts, shift_up
from .skid_buffer import SkidBuffer
from .layouts import masked_beat
from .validate import check_int

__all__ = ["MaskPacker", "compressed_beat"]


def compressed_beat(width, lanes, max_len):
    """The layout of one beat of a compressed tensor (the packer's ``out``): ``bitmap``,
    ``bitmap_count``, ``entries`` (``lanes`` ``(index, value)`` pairs), ``count``, ``last``."""
    entry = data.StructLayout({
        "index": unsigned(max(1, (max_len - 1).bit_length())),
        "value": signed(width),
    })
    return data.StructLayout({
        "bitmap": unsigned(lanes),
        "bitmap_count": range(lanes + 1),
        "entries": data.ArrayLayout(entry, lanes),
        "count": range(lanes + 1),
        "last": 1,
    })


class MaskPacker(wiring.Component):
    """Turn a stream of (values, keep mask) beats into SWAT's compressed encodings.

    Every input beat gives exactly one output beat, which carries the beat's bitmap (its keep
    mask) and, when ``lanes`` kept elements have gathered, one full word of packed
    ``(index, value)`` entries; kept elements are packed across beats, so every word but a
    tensor's last is full. If the last input beat leaves more than ``lanes`` entries, one extra
    beat (with an empty bitmap) carries the rest.

    Two stages, one beat a cycle each: the first moves a beat's kept lanes to its bottom
    (registered in a :class:`hw.skid_buffer.SkidBuffer`, so ``i.ready`` comes from a register),
    the second places them behind the entries gathered so far and adds their indices, into
    the output register. A beat leaves two cycles after it is taken. A tensor's last beat
    closes the input until its ``result`` is taken, so beats are taken for one tensor at a
    time. After the
    tensor's last output beat has been taken, ``result`` reports the tensor's length and the
    number of entries emitted; counting restarts with the next beat.

    Both encodings of ``golden.encodings`` come out of one stream: the ``bitmap_count`` low bits
    of every ``bitmap``, concatenated, are the bitmap; the entries' values are the packed
    values; the entries themselves are the index-value encoding.

    Parameters
    ----------
    width : int
        Operand width (signed), at least 2.
    lanes : int
        Elements per beat, at least 1.
    max_len : int
        Longest tensor; sets the index width. A longer tensor sets ``error``.

    Attributes
    ----------
    i : In(stream.Signature(in_layout))
        ``values`` (``lanes`` operands), ``keep`` (one bit per lane), ``count`` (valid lanes
        ``0..count-1``; ``keep`` is ignored beyond them) and ``last``.
    out : Out(stream.Signature(out_layout))
        ``bitmap``, ``bitmap_count`` (bitmap bits in this beat), ``entries`` (``lanes``
        ``(index, value)`` pairs), ``count`` (valid entries ``0..count-1``) and ``last``.
    result : Out(stream.Signature(result_layout))
        ``n`` (elements), ``kept`` (entries emitted) and ``error`` (more than ``max_len``).
    leftover, kept, running : Signal
        Packed entries waiting for a full word, entries counted so far, and whether a tensor is
        under way (internal; read by the formal harness).
    stage : SkidBuffer
        The compacted beats between the two stages (read by the formal harness).
    """

    def __init__(self, *, width, lanes, max_len):
        check_int("width", width, 2)
        check_int("lanes", lanes, 1)
        check_int("max_len", max_len, 1)
        self.width = width
        self.lanes = lanes
        self.max_len = max_len
        self.index_width = max(1, (max_len - 1).bit_length())
        len_width = max_len.bit_length()
        self.in_layout = masked_beat(width, lanes)
        self.out_layout = compressed_beat(width, lanes, max_len)
        self.entry_layout = self.out_layout["entries"].shape.elem_shape
        self.result_layout = data.StructLayout({
            "n": unsigned(len_width),
            "kept": unsigned(len_width),
            "error": 1,
        })
        self.leftover = Signal(range(lanes + 1))
        self.kept = Signal(len_width + 1)
        self.running = Signal()
        lane_bits = max(1, (lanes - 1).bit_length())
        #: A beat's kept lanes moved to its bottom: ``entries`` ``(lane, value)``, the first
        #: ``nkept`` valid; ``bitmap`` (the kept mask), ``count`` and ``last`` as they came.
        self.compacted_layout = data.StructLayout({
            "entries": data.ArrayLayout(data.StructLayout({
                "lane": unsigned(lane_bits), "value": signed(width)}), lanes),
            "nkept": range(lanes + 1),
            "bitmap": unsigned(lanes),
            "count": range(lanes + 1),
            "last": 1,
        })
        self.stage = SkidBuffer(self.compacted_layout)
        super().__init__({
            "i": In(stream.Signature(self.in_layout)),
            "out": Out(stream.Signature(self.out_layout)),
            "result": Out(stream.Signature(self.result_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        lanes = self.lanes
        entry_bits = self.entry_layout.size

        n = Signal(self.max_len.bit_length() + 1)
        error = Signal()
        leftover = self.leftover
        kept_total = self.kept
        buffer = [Signal(entry_bits, name=f"buffer{i}") for i in range(lanes)]
        flush = Signal()

        out_valid = Signal()
        out_payload = Signal(self.out_layout)
        m.d.comb += [self.out.valid.eq(out_valid), self.out.payload.eq(out_payload)]
        can_load = ~out_valid | self.out.ready
        with m.If(self.out.ready):
            m.d.sync += out_valid.eq(0)

        m.d.comb += [
            self.result.payload.n.eq(n),
            self.result.payload.kept.eq(kept_total),
            self.result.payload.error.eq(error),
        ]

        # -- stage 1: a beat's kept lanes moved to its bottom -----------------------------------
        # A network of log2(lanes) levels of 2:1 multiplexers, not a lanes x slots crossbar:
        # the kept lanes move down over the lanes not kept before them (a level moves an entry
        # by one bit of that count, lowest first; no two entries ever meet).
        m.submodules.stage = stage = self.stage
        # One tensor at a time: after its last beat, the next tensor's first waits for the
        # result (the selector counts a beat as it enters, for the tensor under way).
        tensor_in = Signal()  # the tensor's last beat has been taken, its result not yet
        m.d.comb += [stage.i.valid.eq(self.i.valid & ~tensor_in),
                     self.i.ready.eq(stage.i.ready & ~tensor_in)]
        with m.If(self.i.valid & self.i.ready & self.i.payload.last):
            m.d.sync += tensor_in.eq(1)
        with m.If(self.result.valid & self.result.ready):
            m.d.sync += tensor_in.eq(0)
        incoming_beat = self.i.payload
        in_kept = Signal(lanes)
        for lane in range(lanes):
            m.d.comb += in_kept[lane].eq(incoming_beat.keep[lane] & (lane < incoming_beat.count))
        lane_bits = max(1, (lanes - 1).bit_length())
        levels = (lanes - 1).bit_length()  # enough for any count below lanes
        hole_bits = max(1, levels)
        moving = data.StructLayout({"valid": 1, "holes": unsigned(hole_bits),
                                    "lane": unsigned(lane_bits), "value": signed(self.width)})
        cur = []
        holes = prefix_counts(~in_kept)  # lanes not kept below each lane, log2 adders deep
        for lane in range(lanes):
            slot = Signal(moving, name=f"beat{lane}")
            m.d.comb += [slot.valid.eq(in_kept[lane]), slot.holes.eq(holes[lane]),
                         slot.lane.eq(lane), slot.value.eq(incoming_beat.values[lane])]
            cur.append(slot)
        for level in range(levels):
            step = 1 << level
            nxt = []
            for pos in range(lanes):
                slot = Signal(moving, name=f"packed{level}_{pos}")
                stays = cur[pos].valid & ~cur[pos].holes[level]
                if pos + step < lanes:
                    above = cur[pos + step]
                    arrives = above.valid & above.holes[level]
                    m.d.comb += slot.eq(Mux(arrives, above, cur[pos]))
                    m.d.comb += slot.valid.eq(arrives | stays)
                else:
                    m.d.comb += [slot.eq(cur[pos]), slot.valid.eq(stays)]
                nxt.append(slot)
            cur = nxt
        staged = stage.i.payload
        m.d.comb += [staged.nkept.eq(popcount(in_kept)), staged.bitmap.eq(in_kept),
                     staged.count.eq(incoming_beat.count), staged.last.eq(incoming_beat.last)]
        for pos in range(lanes):
            m.d.comb += [staged.entries[pos].lane.eq(cur[pos].lane),
                         staged.entries[pos].value.eq(cur[pos].value)]

        # -- stage 2: the beat's entries placed behind the ``leftover`` gathered ones ----------
        # The whole beat moves up by ``leftover`` (log2(lanes) levels of multiplexers); the
        # index ``n + lane`` is added at the end.
        beat = stage.o.payload
        kept = beat.bitmap
        cur = []
        for pos in range(lanes):
            slot = Signal(moving, name=f"compacted{pos}")
            m.d.comb += [slot.valid.eq(pos < beat.nkept), slot.lane.eq(beat.entries[pos].lane),
                         slot.value.eq(beat.entries[pos].value)]
            cur.append(slot)
        # Up by ``leftover`` (0 to lanes - 1) into 2 * lanes slots.
        cur = cur + [Signal(moving, name=f"empty{pos}") for pos in range(lanes, 2 * lanes)]
        cur = shift_up(m, cur, leftover, levels, name="placed")
        gathered = []  # 2 * lanes slots: the leftover, then this beat's kept entries
        for pos in range(2 * lanes):
            incoming = Signal(self.entry_layout, name=f"incoming{pos}")
            m.d.comb += [incoming.index.eq(n + cur[pos].lane), incoming.value.eq(cur[pos].value)]
            word = Signal(entry_bits, name=f"gathered{pos}")
            if pos < lanes:
                # Slots past the beat's entries stay zero, as the beats of the tensor's end show.
                with m.If(pos < leftover):
                    m.d.comb += word.eq(buffer[pos])
                with m.Elif(cur[pos].valid):
                    m.d.comb += word.eq(incoming.as_value())
            else:
                m.d.comb += word.eq(incoming.as_value())
            gathered.append(word)
        nkept = beat.nkept
        total = Signal(range(2 * lanes + 1))
        m.d.comb += total.eq(leftover + nkept)

        def load_out(bitmap, bitmap_count, words, count, last):
            m.d.sync += [
                out_valid.eq(1),
                out_payload.bitmap.eq(bitmap),
                out_payload.bitmap_count.eq(bitmap_count),
                out_payload.count.eq(count),
                out_payload.last.eq(last),
            ]
            for lane in range(lanes):
                m.d.sync += Value.cast(out_payload.entries[lane]).eq(words[lane])

        with m.FSM() as fsm:
            m.d.comb += self.running.eq(fsm.ongoing("RUN"))
            with m.State("RUN"):
                with m.If(flush):
                    # The last beat left more than one word: send the rest.
                    with m.If(can_load):
                        load_out(0, 0, buffer, leftover, 1)
                        m.d.sync += [flush.eq(0), leftover.eq(0)]
                        m.next = "DRAIN"
                with m.Else():
                    m.d.comb += stage.o.ready.eq(can_load)
                    with m.If(stage.o.valid & can_load):
                        m.d.sync += [
                            n.eq(n + beat.count),
                            kept_total.eq(kept_total + nkept),
                        ]
                        with m.If(n + beat.count > self.max_len):
                            m.d.sync += error.eq(1)
                        with m.If(beat.last & (total <= lanes)):
                            load_out(kept, beat.count, gathered[:lanes], total, 1)
                            m.d.sync += leftover.eq(0)
                            m.next = "DRAIN"
                        with m.Elif(total >= lanes):
                            load_out(kept, beat.count, gathered[:lanes], lanes, 0)
                            m.d.sync += leftover.eq(total - lanes)
                            for i in range(lanes):
                                m.d.sync += buffer[i].eq(gathered[lanes + i])
                            with m.If(beat.last):
                                m.d.sync += flush.eq(1)
                        with m.Else():
                            load_out(kept, beat.count, [0] * lanes, 0, 0)
                            m.d.sync += leftover.eq(total)
                            for i in range(lanes):
                                m.d.sync += buffer[i].eq(gathered[i])

            with m.State("DRAIN"):
                # The result follows the tensor's last output beat.
                with m.If(~out_valid | self.out.ready):
                    m.next = "RESULT"

            with m.State("RESULT"):
                m.d.comb += self.result.valid.eq(1)
                with m.If(self.result.ready):
                    m.d.sync += [n.eq(0), kept_total.eq(0), error.eq(0)]
                    m.next = "RUN"

        return m
