"""Apply a magnitude threshold to a streamed tensor and emit it compressed."""

from amaranth.hdl import Module, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .arith import magnitude
from .radix_select import _check_int

__all__ = ["Sparsify"]


class Sparsify(wiring.Component):
    """Keep the elements whose magnitude reaches a threshold; emit a bitmap and packed entries.

    Every input beat gives exactly one output beat, which carries the beat's bitmap (one bit per
    lane, 1 = kept) and, when ``lanes`` kept elements have gathered, one full word of packed
    ``(index, value)`` entries. Kept elements are packed across beats, so every word but the
    tensor's last is full. If the last input beat leaves more than ``lanes`` entries, one extra
    beat (with an empty bitmap) carries the rest. The output register is a plain pipeline
    stage: the block takes one beat per cycle while the output is not stalled.

    Both compressed encodings of ``golden.encodings`` come out of one stream: concatenating the
    ``bitmap_count`` low bits of every ``bitmap`` gives the bitmap, the entries' values the
    packed values, and the entries themselves the index-value encoding.

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
    cmd : In(stream.Signature(cmd_layout))
        ``threshold`` (a magnitude) and ``keep_none``; one command per tensor.
    data : In(stream.Signature(data_layout))
        ``values`` (``lanes`` signed operands), ``count`` (valid lanes ``0..count-1``) and
        ``last``.
    out : Out(stream.Signature(out_layout))
        ``bitmap``, ``bitmap_count`` (bitmap bits in this beat), ``entries`` (``lanes``
        ``(index, value)`` pairs), ``count`` (valid entries ``0..count-1``) and ``last``.
    result : Out(stream.Signature(result_layout))
        ``n`` (elements seen), ``kept`` (entries emitted) and ``error``; sent after the
        tensor's last output beat has been taken.
    """

    def __init__(self, *, width, lanes, max_len):
        _check_int("width", width, 2)
        _check_int("lanes", lanes, 1)
        _check_int("max_len", max_len, 1)
        self.width = width
        self.lanes = lanes
        self.max_len = max_len
        self.index_width = max(1, (max_len - 1).bit_length())
        len_width = max_len.bit_length()
        self.entry_layout = data.StructLayout({
            "index": unsigned(self.index_width),
            "value": signed(width),
        })
        self.cmd_layout = data.StructLayout({"threshold": unsigned(width), "keep_none": 1})
        self.data_layout = data.StructLayout({
            "values": data.ArrayLayout(signed(width), lanes),
            "count": range(lanes + 1),
            "last": 1,
        })
        self.out_layout = data.StructLayout({
            "bitmap": unsigned(lanes),
            "bitmap_count": range(lanes + 1),
            "entries": data.ArrayLayout(self.entry_layout, lanes),
            "count": range(lanes + 1),
            "last": 1,
        })
        self.result_layout = data.StructLayout({
            "n": unsigned(len_width),
            "kept": unsigned(len_width),
            "error": 1,
        })
        # Internal state, created here so formal harnesses can state invariants about it.
        self.leftover = Signal(range(lanes + 1))
        self.kept = Signal(len_width + 1)
        self.running = Signal()  # between a command and the tensor's last output beat
        super().__init__({
            "cmd": In(stream.Signature(self.cmd_layout)),
            "data": In(stream.Signature(self.data_layout)),
            "out": Out(stream.Signature(self.out_layout)),
            "result": Out(stream.Signature(self.result_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        lanes = self.lanes
        entry_bits = self.entry_layout.size

        threshold = Signal(self.width)
        keep_none = Signal()
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

        # -- one input beat: which lanes are kept, and where each lands in the packing -------
        beat = self.data.payload
        kept = Signal(lanes)
        for lane in range(lanes):
            value = beat.values[lane]
            m.d.comb += kept[lane].eq((lane < beat.count) & ~keep_none
                                      & (magnitude(value) >= threshold))
        entries = []
        for lane in range(lanes):
            entry = Signal(self.entry_layout, name=f"entry{lane}")
            m.d.comb += [
                entry.index.eq(n + lane),
                entry.value.eq(beat.values[lane]),
            ]
            entries.append(Value.cast(entry))
        positions = []  # slot of lane i among the gathered entries: leftover + kept lanes before i
        for lane in range(lanes):
            position = Signal(range(2 * lanes), name=f"position{lane}")
            m.d.comb += position.eq(leftover + sum(kept[j] for j in range(lane)) if lane
                                    else leftover)
            positions.append(position)
        gathered = []  # 2 * lanes slots: the leftover, then this beat's kept entries
        for slot in range(2 * lanes):
            hits = [kept[lane] & (positions[lane] == slot) for lane in range(lanes)]
            incoming = 0
            for lane in range(lanes):
                incoming = incoming | (entries[lane] & hits[lane].replicate(entry_bits))
            word = Signal(entry_bits, name=f"gathered{slot}")
            if slot < lanes:
                with m.If(slot < leftover):
                    m.d.comb += word.eq(buffer[slot])
                with m.Else():
                    m.d.comb += word.eq(incoming)
            else:
                m.d.comb += word.eq(incoming)
            gathered.append(word)
        nkept = Signal(range(lanes + 1))
        m.d.comb += nkept.eq(sum(kept[lane] for lane in range(lanes)))
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
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += [
                        threshold.eq(self.cmd.payload.threshold),
                        keep_none.eq(self.cmd.payload.keep_none),
                        n.eq(0),
                        kept_total.eq(0),
                        leftover.eq(0),
                        error.eq(0),
                        flush.eq(0),
                    ]
                    m.next = "RUN"

            with m.State("RUN"):
                with m.If(flush):
                    # The last beat left more than one word: send the rest.
                    with m.If(can_load):
                        load_out(0, 0, buffer, leftover, 1)
                        m.d.sync += [flush.eq(0), leftover.eq(0)]
                        m.next = "DRAIN"
                with m.Else():
                    m.d.comb += self.data.ready.eq(can_load)
                    with m.If(self.data.valid & can_load):
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
                    m.next = "IDLE"

        return m
