"""Group-wise selection over a stream: N:M, and the kernel-slice L1 norms of structured SWAT."""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from .arith import magnitude
from .layouts import masked_beat, tensor_beat
from .skid_buffer import SkidBuffer
from .validate import check_int

__all__ = ["GroupMode", "GroupWindow", "slice_norm_width"]


class GroupMode(enum.Enum, shape=1):
    #: Keep the ``n`` largest magnitudes of every group of ``group`` elements.
    NM = 0
    #: Keep every element of a group whose L1 norm reaches ``threshold``.
    SLICE = 1


def slice_norm_width(width, max_slice):
    """Bits of the L1 norm of ``max_slice`` signed ``width``-bit operands."""
    return (max_slice << (width - 1)).bit_length()


class GroupWindow(wiring.Component):
    """Decide each element from its group of ``group`` consecutive elements, at full rate.

    Groups run over the tensor's flat order from its first element; the tensor's end closes a
    short last group. Two modes:

    * ``NM``: keep the ``n`` largest magnitudes of each group, ties to the lower index, as
      ``golden.topk.nm_mask`` on the flattened tensor (the same as along the last axis when that
      axis is a multiple of M).
    * ``SLICE``: a group is a kernel slice (kh*kw weights of one out- and in-channel); its L1
      norm is computed, and every element is kept when the norm reaches ``threshold``, as
      ``golden.topk.structured_mask``. Each beat also carries the norm of every group that ends
      in it (``sums`` where ``ends`` is set), which is what the threshold passes rank.

    The block holds a window of ``2 * B + 1`` beats, ``B = ceil((max_group - 1) / lanes)``, so
    every group that touches the middle beat lies inside it. Elements are tagged with their
    group on entry; the middle beat's elements are ranked against (``NM``), or summed with
    (``SLICE``), their group's other members in the window. The middle beat leaves with its
    decisions as the window shifts one beat per input beat: ``lanes`` elements per cycle, with
    ``B`` extra cycles per tensor to flush the window. The decisions are made in two stages with a
    register between them (the comparisons and partial sums, then the counts, norms and keep
    bits), so a beat comes out a cycle after the window lets it go.

    Every beat but a tensor's last must be full (``count == lanes``), so that the window holds
    consecutive elements; a short beat before the last sets ``error``.

    Parameters
    ----------
    width : int
        Operand width (signed), at least 2.
    lanes : int
        Elements per beat, at least 1.
    max_nm_m : int
        Largest group of the ``NM`` mode.
    max_slice : int
        Largest group (kernel slice) of the ``SLICE`` mode.

    Attributes
    ----------
    i : In(stream.Signature(...))
        ``values``, ``count`` and ``last``, as the top-K selector's data stream.
    o : Out(stream.Signature(...))
        ``values``, ``keep``, ``count`` and ``last``, as :class:`hw.mask_packer.MaskPacker`
        takes them, plus ``sums`` and ``ends``.
    mode, n, group, threshold, keep_none : Signal, in
        The selection; held constant during a tensor. ``group`` must be at least 1.
    error : Signal, out
        A short beat arrived before the last one in this tensor; cleared by the next tensor's
        first beat.
    """

    def __init__(self, *, width, lanes, max_nm_m, max_slice):
        check_int("width", width, 2)
        check_int("lanes", lanes, 1)
        check_int("max_nm_m", max_nm_m, 1)
        check_int("max_slice", max_slice, 1)
        self.width = width
        self.lanes = lanes
        self.max_nm_m = max_nm_m
        self.max_slice = max_slice
        self.max_group = max(max_nm_m, max_slice)
        self.norm_width = slice_norm_width(width, max_slice)
        self.lookaround = -(-(self.max_group - 1) // lanes)
        self.window_beats = 2 * self.lookaround + 1
        self.tag_width = (self.window_beats * lanes).bit_length() + 1
        in_layout = tensor_beat(width, lanes)
        self.out_layout = masked_beat(
            width, lanes, sums=data.ArrayLayout(unsigned(self.norm_width), lanes),
            ends=unsigned(lanes))
        super().__init__({
            "i": In(stream.Signature(in_layout)),
            "o": Out(stream.Signature(self.out_layout)),
            "mode": In(GroupMode),
            "n": In(range(max_nm_m + 1)),
            "group": In(range(self.max_group + 1)),
            "threshold": In(self.norm_width),
            "keep_none": In(1),
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
        end = [Signal(name=f"end{s}") for s in range(slots)]  # last element of its group
        last = [Signal(name=f"last{b}") for b in range(self.window_beats)]
        # Magnitudes are taken as elements enter, so the decisions start from registers.
        mags = [Signal(unsigned(self.width), name=f"mag{s}") for s in range(slots)]

        # -- group tags of the entering beat: every lane at once -----------------------------
        # Lane i of a beat is ``lanes`` elements after lane i of the beat before, so its
        # position in its group moves by ``lanes mod group`` (one wrap more when that passes
        # the group's end) and its tag by ``lanes // group``: one adder and one comparison per
        # lane, not a chain over the lanes. A tensor's first beat takes the positions
        # ``i mod group`` from a table. ``group`` 0 counts as 1.
        group_last = Signal(range(self.max_group))  # group - 1
        step = Signal(range(self.max_group))        # lanes mod group
        step_groups = Signal(range(lanes + 1))      # lanes // group
        first_pos = [Signal(range(self.max_group), name=f"first_pos{i}") for i in range(lanes)]
        first_tag = [Signal(self.tag_width, name=f"first_tag{i}") for i in range(lanes)]
        with mod.Switch(self.group):
            for size in range(1, self.max_group + 1):
                with mod.Case(*([0, 1] if size == 1 else [size])):
                    mod.d.comb += [group_last.eq(size - 1), step.eq(lanes % size),
                                   step_groups.eq(lanes // size)]
                    for i in range(lanes):
                        mod.d.comb += [first_pos[i].eq(i % size), first_tag[i].eq(i // size)]
        lane_pos = [Signal(range(self.max_group), name=f"lane_pos{i}") for i in range(lanes)]
        lane_grp = [Signal(self.tag_width, name=f"lane_grp{i}") for i in range(lanes)]
        at_start = Signal(init=1)  # the next beat is a tensor's first
        beat = self.i.payload
        lane_tag, lane_wraps, next_pos, next_grp = [], [], [], []
        for lane in range(lanes):
            pos = Mux(at_start, first_pos[lane], lane_pos[lane])
            grp = Mux(at_start, first_tag[lane], lane_grp[lane])
            cur_pos = Signal(range(self.max_group), name=f"pos{lane}")
            cur_grp = Signal(self.tag_width, name=f"grp{lane}")
            mod.d.comb += [cur_pos.eq(pos), cur_grp.eq(grp)]
            lane_tag.append(cur_grp)
            wraps = Signal(name=f"wraps{lane}")
            mod.d.comb += wraps.eq(cur_pos == group_last)
            lane_wraps.append(wraps)
            moved = Signal(range(2 * self.max_group), name=f"moved{lane}")
            mod.d.comb += moved.eq(cur_pos + step)
            p_next = Signal.like(cur_pos, name=f"next_pos{lane}")
            g_next = Signal.like(cur_grp, name=f"next_grp{lane}")
            with mod.If(moved > group_last):
                mod.d.comb += [p_next.eq(moved - group_last - 1),
                               g_next.eq(cur_grp + step_groups + 1)]
            with mod.Else():
                mod.d.comb += [p_next.eq(moved), g_next.eq(cur_grp + step_groups)]
            next_pos.append(p_next)
            next_grp.append(g_next)

        # -- the middle beat's decisions, in two stages ----------------------------------------
        # Stage 1 (from the window's registers): for each lane, which group members beat it
        # (N:M) and partial sums of the members' magnitudes (slice norms); registered with the
        # beat in a skid buffer. Stage 2 (from that register): the counts, the norms and the
        # decisions.
        # Whether slot t holds a member of the group of the middle beat's lane is a register
        # (``grouped``), worked out as the window shifts from the tags the slots will hold, so
        # no tag comparison lies in front of the comparisons and sums.
        def tag_after_shift(slot):
            return tag[slot + lanes] if slot + lanes < slots else lane_tag[slot + lanes - slots]

        grouped = {}
        for lane in range(lanes):
            s = middle + lane
            for t in range(max(0, s - self.max_group + 1), min(slots, s + self.max_group)):
                if t != s:
                    grouped[lane, t] = Signal(name=f"grouped{lane}_{t}")
        shift = Signal()
        with mod.If(shift):
            for (lane, t), flag in grouped.items():
                mod.d.sync += flag.eq(tag_after_shift(t) == tag_after_shift(middle + lane))

        larger_terms, member_terms = [], []
        for lane in range(lanes):
            s = middle + lane
            larger, members = [], [mags[s]]
            for t in range(max(0, s - self.max_group + 1), min(slots, s + self.max_group)):
                if t == s:
                    continue
                same = valid[t] & grouped[lane, t]
                if abs(t - s) < self.max_nm_m:
                    beats_it = (mags[t] > mags[s]) | ((mags[t] == mags[s]) if t < s else 0)
                    larger.append(same & beats_it)
                if abs(t - s) < self.max_slice:
                    members.append(Mux(same, mags[t], 0))
            larger_terms.append(larger)
            # Stage 1 adds the magnitudes four at a time; stage 2 adds those partial sums.
            member_terms.append([sum(members[k:k + 4]) for k in range(0, len(members), 4)])
        stage_layout = data.StructLayout({
            "values": data.ArrayLayout(signed(self.width), lanes),
            "valid": unsigned(lanes),
            "ends": unsigned(lanes),
            "larger": data.ArrayLayout(unsigned(max(1, max(map(len, larger_terms)))), lanes),
            "partials": data.ArrayLayout(
                data.ArrayLayout(unsigned(self.width + 2), max(map(len, member_terms))), lanes),
            "last": 1,
        })
        mod.submodules.stage = stage = SkidBuffer(stage_layout)
        staged = stage.i.payload
        for lane in range(lanes):
            s = middle + lane
            mod.d.comb += [
                staged.values[lane].eq(value[s]),
                staged.valid[lane].eq(valid[s]),
                staged.ends[lane].eq(valid[s] & end[s]),
                staged.larger[lane].eq(Cat(*larger_terms[lane])),
            ]
            for k, term in enumerate(member_terms[lane]):
                mod.d.comb += staged.partials[lane][k].eq(term)
        mod.d.comb += staged.last.eq(last[self.lookaround])

        held = stage.o.payload
        keep = Signal(lanes)
        for lane in range(lanes):
            rank = Signal(range(2 * self.max_nm_m), name=f"rank{lane}")
            norm = Signal(self.norm_width, name=f"norm{lane}")
            bits = held.larger[lane]
            mod.d.comb += [
                rank.eq(sum(bits[k] for k in range(len(larger_terms[lane])))
                        if larger_terms[lane] else 0),
                norm.eq(sum(held.partials[lane][k] for k in range(len(member_terms[lane])))),
                self.o.payload.sums[lane].eq(norm),
            ]
            with mod.If(self.mode == GroupMode.NM):
                mod.d.comb += keep[lane].eq(held.valid[lane] & (rank < self.n))
            with mod.Else():
                mod.d.comb += keep[lane].eq(held.valid[lane] & ~self.keep_none
                                            & (norm >= self.threshold))
        mod.d.comb += [
            self.o.payload.keep.eq(keep),
            self.o.payload.ends.eq(held.ends),
            self.o.payload.count.eq(sum(held.valid[lane] for lane in range(lanes))),
            self.o.payload.last.eq(held.last),
            self.o.valid.eq(stage.o.valid),
            stage.o.ready.eq(self.o.ready),
        ]
        for lane in range(lanes):
            mod.d.comb += self.o.payload.values[lane].eq(held.values[lane])

        # The middle beat is offered if it holds elements, or is a tensor's (empty) last beat.
        mid_offer = Signal()
        mod.d.comb += mid_offer.eq(valid[middle] | last[self.lookaround])
        flushing = Signal()  # the tensor's last beat is in the window, not yet out

        # The window shifts when a beat enters (or, flushing, an empty beat); the middle beat
        # leaves with that shift, so it is offered only when the shift can happen.
        can_shift = Signal()
        mod.d.comb += [
            can_shift.eq(flushing | self.i.valid),
            stage.i.valid.eq(mid_offer & can_shift),
            self.i.ready.eq(~flushing & (~mid_offer | stage.i.ready)),
            shift.eq(can_shift & (~mid_offer | stage.i.ready)),
        ]
        entering = self.i.valid & self.i.ready

        with mod.If(shift):
            for s in range(slots - lanes):
                mod.d.sync += [value[s].eq(value[s + lanes]), valid[s].eq(valid[s + lanes]),
                               tag[s].eq(tag[s + lanes]), end[s].eq(end[s + lanes]),
                               mags[s].eq(mags[s + lanes])]
            for b in range(self.window_beats - 1):
                mod.d.sync += last[b].eq(last[b + 1])
            for lane in range(lanes):
                s = slots - lanes + lane
                mod.d.sync += [
                    value[s].eq(beat.values[lane]),
                    mags[s].eq(magnitude(beat.values[lane])),
                    valid[s].eq(entering & (lane < beat.count)),
                    tag[s].eq(lane_tag[lane]),
                    end[s].eq(lane_wraps[lane] | (beat.last & (lane + 1 == beat.count))),
                ]
            mod.d.sync += last[-1].eq(entering & beat.last)

        with mod.If(entering):
            mod.d.sync += at_start.eq(beat.last)
            mod.d.sync += [lane_pos[i].eq(next_pos[i]) for i in range(lanes)]
            mod.d.sync += [lane_grp[i].eq(next_grp[i]) for i in range(lanes)]
            with mod.If(beat.last):
                mod.d.sync += flushing.eq(1)
            with mod.If(~beat.last & (beat.count != lanes)):
                mod.d.sync += self.error.eq(1)
            with mod.Elif(at_start):
                mod.d.sync += self.error.eq(0)

        with mod.If(stage.i.valid & stage.i.ready & staged.last):
            # The tensor is out: empty the window for the next one.
            mod.d.sync += flushing.eq(0)
            for s in range(slots):
                mod.d.sync += valid[s].eq(0)
            for b in range(self.window_beats):
                mod.d.sync += last[b].eq(0)

        return mod
