"""N:M selection over a stream: keep the N largest magnitudes of every M consecutive elements."""

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .arith import magnitude
from .radix_select import _check_int

__all__ = ["NMWindow"]


class NMWindow(wiring.Component):
    """Mark the N largest magnitudes in every group of M consecutive elements, at full rate.

    Groups run over the tensor's flat order from its first element; a last group shorter than
    M keeps its ``min(N, len)`` largest. Ties go to the lower index, as in
    ``golden.topk.nm_mask`` on the flattened tensor (which equals the mask along the last axis
    when that axis is a multiple of M).

    The block holds a window of ``2 * B + 1`` beats, ``B = ceil((max_m - 1) / lanes)``: every
    group that touches the middle beat lies inside it. Each element is tagged with its group
    on entry, and the middle beat's elements are ranked against their group's other members in
    the window (rank = members larger, or equal and earlier). The middle beat leaves with its
    keep mask as the window shifts by one beat per input beat, so the block runs at ``lanes``
    elements per cycle, with ``B`` extra cycles per tensor to flush the window.

    Every beat but a tensor's last must be full (``count == lanes``), so that the window holds
    consecutive elements; a short beat before the last sets ``error``.

    Parameters
    ----------
    width : int
        Operand width (signed), at least 2.
    lanes : int
        Elements per beat, at least 1.
    max_m : int
        Largest group size M, at least 1.

    Attributes
    ----------
    i : In(stream.Signature(...))
        ``values``, ``count`` and ``last``, as the top-K selector's data stream.
    o : Out(stream.Signature(...))
        ``values``, ``keep``, ``count`` and ``last``, as :class:`hw.mask_packer.MaskPacker`
        takes them.
    n, m : Signal, in
        N and M; held constant during a tensor. ``m`` must be at least 1.
    error : Signal, out
        A short beat arrived before the last one in this tensor; cleared by the next tensor's
        first beat.
    """

    def __init__(self, *, width, lanes, max_m):
        _check_int("width", width, 2)
        _check_int("lanes", lanes, 1)
        _check_int("max_m", max_m, 1)
        self.width = width
        self.lanes = lanes
        self.max_m = max_m
        self.lookaround = -(-(max_m - 1) // lanes)
        self.window_beats = 2 * self.lookaround + 1
        self.tag_width = (self.window_beats * lanes).bit_length() + 1
        in_layout = data.StructLayout({
            "values": data.ArrayLayout(signed(width), lanes),
            "count": range(lanes + 1),
            "last": 1,
        })
        out_layout = data.StructLayout({
            "values": data.ArrayLayout(signed(width), lanes),
            "keep": unsigned(lanes),
            "count": range(lanes + 1),
            "last": 1,
        })
        super().__init__({
            "i": In(stream.Signature(in_layout)),
            "o": Out(stream.Signature(out_layout)),
            "n": In(range(max_m + 1)),
            "m": In(range(max_m + 1)),
            "error": Out(1),
        })

    def elaborate(self, platform):
        mod = Module()
        lanes = self.lanes
        slots = self.window_beats * lanes
        middle = self.lookaround * lanes

        value = [Signal(signed(self.width), name=f"value{s}") for s in range(slots)]
        valid = [Signal(name=f"valid{s}") for s in range(slots)]
        tag = [Signal(self.tag_width, name=f"tag{s}") for s in range(slots)]
        last = [Signal(name=f"last{b}") for b in range(self.window_beats)]
        mags = [magnitude(v) for v in value]

        # -- group tags of the entering beat: a chain over the lanes -------------------------
        position = Signal(range(self.max_m + 1))  # of the next element within its group
        group = Signal(self.tag_width)  # tag of the next element's group
        beat = self.i.payload
        lane_tag, next_pos, next_grp = [], [], []
        pos, grp = position, group
        for lane in range(lanes):
            lane_tag.append(grp)
            p_next = Signal(range(self.max_m + 1), name=f"next_pos{lane}")
            g_next = Signal(self.tag_width, name=f"next_grp{lane}")
            with mod.If(pos + 1 >= self.m):
                mod.d.comb += [p_next.eq(0), g_next.eq(grp + 1)]
            with mod.Else():
                mod.d.comb += [p_next.eq(pos + 1), g_next.eq(grp)]
            next_pos.append(p_next)
            next_grp.append(g_next)
            pos, grp = p_next, g_next
        # The counters after the beat's last valid lane.
        after_pos = Signal.like(position)
        after_grp = Signal.like(group)
        mod.d.comb += [after_pos.eq(position), after_grp.eq(group)]
        for count in range(1, lanes + 1):
            with mod.If(beat.count == count):
                mod.d.comb += [after_pos.eq(next_pos[count - 1]),
                               after_grp.eq(next_grp[count - 1])]

        # -- the middle beat's keep mask -----------------------------------------------------
        keep = Signal(lanes)
        for lane in range(lanes):
            s = middle + lane
            larger = []
            for t in range(max(0, s - self.max_m + 1), min(slots, s + self.max_m)):
                if t == s:
                    continue
                beats_it = (mags[t] > mags[s]) | ((mags[t] == mags[s]) if t < s else 0)
                larger.append(valid[t] & (tag[t] == tag[s]) & beats_it)
            rank = Signal(range(2 * self.max_m), name=f"rank{lane}")
            mod.d.comb += rank.eq(sum(larger) if larger else 0)
            mod.d.comb += keep[lane].eq(valid[s] & (rank < self.n))

        # The middle beat is offered if it holds elements, or is a tensor's (empty) last beat.
        mid_offer = Signal()
        mod.d.comb += mid_offer.eq(valid[middle] | last[self.lookaround])
        flushing = Signal()  # the tensor's last beat is in the window, not yet out
        mod.d.comb += [
            self.o.payload.keep.eq(keep),
            self.o.payload.count.eq(sum(valid[middle + lane] for lane in range(lanes))),
            self.o.payload.last.eq(last[self.lookaround]),
        ]
        for lane in range(lanes):
            mod.d.comb += self.o.payload.values[lane].eq(value[middle + lane])

        # The window shifts when a beat enters (or, flushing, an empty beat); the middle beat
        # leaves with that shift, so it is offered only when the shift can happen.
        can_shift = Signal()
        shift = Signal()
        mod.d.comb += [
            can_shift.eq(flushing | self.i.valid),
            self.o.valid.eq(mid_offer & can_shift),
            self.i.ready.eq(~flushing & (~mid_offer | self.o.ready)),
            shift.eq(can_shift & (~mid_offer | self.o.ready)),
        ]
        entering = self.i.valid & self.i.ready
        at_start = Signal(init=1)  # the next beat is a tensor's first

        with mod.If(shift):
            for s in range(slots - lanes):
                mod.d.sync += [value[s].eq(value[s + lanes]), valid[s].eq(valid[s + lanes]),
                               tag[s].eq(tag[s + lanes])]
            for b in range(self.window_beats - 1):
                mod.d.sync += last[b].eq(last[b + 1])
            for lane in range(lanes):
                s = slots - lanes + lane
                mod.d.sync += [
                    value[s].eq(beat.values[lane]),
                    valid[s].eq(entering & (lane < beat.count)),
                    tag[s].eq(lane_tag[lane]),
                ]
            mod.d.sync += last[-1].eq(entering & beat.last)

        with mod.If(entering):
            mod.d.sync += [position.eq(after_pos), group.eq(after_grp), at_start.eq(beat.last)]
            with mod.If(beat.last):
                mod.d.sync += [flushing.eq(1), position.eq(0), group.eq(0)]
            with mod.If(~beat.last & (beat.count != lanes)):
                mod.d.sync += self.error.eq(1)
            with mod.Elif(at_start):
                mod.d.sync += self.error.eq(0)

        with mod.If(self.o.valid & self.o.ready & self.o.payload.last):
            # The tensor is out: empty the window for the next one.
            mod.d.sync += flushing.eq(0)
            for s in range(slots):
                mod.d.sync += valid[s].eq(0)
            for b in range(self.window_beats):
                mod.d.sync += last[b].eq(0)

        return mod
