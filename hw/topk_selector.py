"""The streaming top-K selector: exact per-tensor threshold, then sparsify-and-compress."""

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.topk import RADIX_BITS

from .arith import magnitude, popcount
from .beat_splitter import BeatSplitter
from .group_window import GroupMode, GroupWindow
from .layouts import masked_beat, tensor_beat
from .mask_packer import MaskPacker
from .radix_select import RadixSelect
from .skid_buffer import SkidBuffer
from .validate import check_int

__all__ = ["GROUP_LANES", "TopKOp", "TopKSelector"]

#: Elements a cycle of the N:M and kernel-slice modes at most: their window compares every
#: element with its group's others, so it grows with the square of its lanes; a wider selector
#: splits each beat for it (the threshold and APPLY paths keep every lane).
GROUP_LANES = 4


class TopKOp(enum.Enum, shape=3):
    #: Find the exact top-K magnitude threshold of the next tensor and store it.
    THRESHOLD = 0
    #: Sparsify the next tensor (streamed once) with the stored or a given threshold.
    APPLY = 1
    #: Keep the N largest magnitudes of every M consecutive elements of the next tensor.
    NM = 2
    #: Find the exact top-K threshold of the next weight's kernel-slice L1 norms and store it.
    SLICE_THRESHOLD = 3
    #: Keep the kernel slices of the next weight whose L1 norm reaches the stored or given one.
    SLICE_APPLY = 4


class TopKSelector(wiring.Component):
    """SWAT's top-K over whole tensors streamed ``lanes`` elements per beat.

    Commands, one result each:

    * ``THRESHOLD`` with ``k``: the tensor is streamed ``passes`` times (one pass for operands
      up to 8 bits, two up to 16); the result carries the k-th largest magnitude, or
      ``keep_none`` when ``k == 0``. The threshold is stored.
    * ``APPLY``: the tensor is streamed once; every element with ``|x| >= threshold`` is kept
      and ``out`` carries the bitmap and the packed ``(index, value)`` entries of the kept
      elements that are not zero (see :class:`hw.mask_packer.MaskPacker`). The threshold is
      the stored one (``use_stored``: SWAT's top-K period reuses it between recomputations) or
      the command's ``threshold`` and ``keep_none``. The result carries ``kept``, the count
      kept (ties at the threshold included: SWAT's count), and ``nonzero``, the count sent.
    * ``NM`` with ``nm_n`` and ``nm_m``: the tensor is streamed once, in full beats but the
      last; ``out`` carries the elements among the ``nm_n`` largest magnitudes of their group of
      ``nm_m`` (see :class:`hw.group_window.GroupWindow`), in the same form as ``APPLY``.
    * ``SLICE_THRESHOLD`` with ``k`` and ``slice_len`` (kh*kw): structured SWAT. The weight,
      in (Cout, Cin, kh, kw) order, is streamed ``slice_passes`` times; the L1 norm of every
      kernel slice is ranked by the same radix select, and the result carries the k-th largest
      norm (``n`` counts slices). It is stored apart from the element threshold.
    * ``SLICE_APPLY`` with ``slice_len``: every slice whose norm reaches the stored (or given)
      norm threshold is kept whole.

    A kept element whose value is zero adds nothing to any product, so no mode sends it: ``out``
    (its bitmap and entries) holds the kept elements that are not zero. Such zeros are common:
    after a ReLU, SWAT's threshold is often 0 and every zero ties with it.

    ``k`` is given, not the density: the host computes ``k = ceil(density * n)`` exactly
    (``golden.topk.topk_k``), which a fixed-point density could not do for densities like 0.3.

    Parameters
    ----------
    width : int
        Operand width (signed two's complement), at least 2.
    lanes : int
        Elements per beat, at least 1. The N:M and kernel-slice modes run at
        ``min(lanes, GROUP_LANES)`` elements a cycle.
    max_len : int
        Longest tensor in elements.
    max_nm_m : int
        Largest M of the N:M mode.
    max_slice : int
        Longest kernel slice (kh*kw) of the structured mode.
    radix_bits : int
        Key bits ranked per threshold pass (the histogram has ``2**radix_bits`` bins).

    Attributes
    ----------
    cmd : In(stream.Signature(cmd_layout))
        ``op`` (:class:`TopKOp`), ``k``, ``threshold``, ``keep_none``, ``use_stored``,
        ``nm_n``, ``nm_m``, ``slice_len``.
    data : In(stream.Signature(data_layout))
        ``values`` (``lanes`` operands), ``count`` (valid lanes ``0..count-1``), ``last``.
    out : Out(stream.Signature(out_layout))
        The compressed tensor of an ``APPLY``, ``NM`` or ``SLICE_APPLY``.
    result : Out(stream.Signature(result_layout))
        ``op``, ``threshold``, ``keep_none``, ``n``, ``kept``, ``nonzero``, ``error`` (``k > n``, a tensor
        over ``max_len``, passes of different lengths, ``use_stored`` with nothing stored, or,
        in the group modes, a short beat before the last or a group size of 0).
    passes, slice_passes : int
        Times a tensor is streamed for ``THRESHOLD`` and for ``SLICE_THRESHOLD``.
    key_width : int
        Width of the thresholds (the widest key: a kernel-slice norm).
    """

    def __init__(self, *, width, lanes, max_len, max_nm_m=8, max_slice=9,
                 radix_bits=RADIX_BITS):
        check_int("width", width, 2)
        self.width = width
        self.lanes = lanes
        self.max_len = max_len
        self.max_nm_m = max_nm_m
        self.max_slice = max_slice
        self.group_lanes = min(lanes, GROUP_LANES)
        self._window = GroupWindow(width=width, lanes=self.group_lanes, max_nm_m=max_nm_m,
                                   max_slice=max_slice)
        self._splitter = BeatSplitter(width=width, lanes=lanes, out_lanes=self.group_lanes) \
            if self.group_lanes < lanes else None
        self.key_width = self._window.norm_width
        self._radix = RadixSelect(key_width=self.key_width, lanes=lanes, max_len=max_len,
                                  radix_bits=radix_bits)
        self._packer = MaskPacker(width=width, lanes=lanes, max_len=max_len)
        # Magnitudes fit in `width` bits: their threshold skips the digits above them.
        self.element_first_pass = min(p for p, (lo, hi) in enumerate(self._radix.digits)
                                      if lo < width)
        self.slice_passes = self._radix.passes
        self.passes = self.slice_passes - self.element_first_pass
        len_width = max_len.bit_length()
        self.cmd_layout = data.StructLayout({
            "op": TopKOp,
            "k": unsigned(len_width),
            "threshold": unsigned(self.key_width),
            "keep_none": 1,
            "use_stored": 1,
            "nm_n": range(max_nm_m + 1),
            "nm_m": range(max_nm_m + 1),
            "slice_len": range(max_slice + 1),
        })
        self.data_layout = tensor_beat(width, lanes)
        self.out_layout = self._packer.out_layout
        self.result_layout = data.StructLayout({
            "op": TopKOp,
            "threshold": unsigned(self.key_width),
            "keep_none": 1,
            "n": unsigned(len_width),
            "kept": unsigned(len_width),
            "nonzero": unsigned(len_width),
            "error": 1,
        })
        super().__init__({
            "cmd": In(stream.Signature(self.cmd_layout)),
            "data": In(stream.Signature(self.data_layout)),
            "out": Out(stream.Signature(self.out_layout)),
            "result": Out(stream.Signature(self.result_layout)),
        })

    @property
    def radix(self):
        """The radix select that ranks the keys (its histogram memories are the selector's)."""
        return self._radix

    @staticmethod
    def params_from_config(config):
        """The constructor's arguments for an :class:`golden.config.AccelConfig`."""
        return {"width": config.width, "lanes": config.selector_lanes,
                "max_len": config.max_tensor_len, "max_nm_m": config.nm_max_m,
                "max_slice": config.max_kernel_slice}

    @classmethod
    def from_config(cls, config):
        """The selector of an :class:`golden.config.AccelConfig`."""
        return cls(**cls.params_from_config(config))

    def elaborate(self, platform):
        m = Module()
        m.submodules.radix = radix = self._radix
        m.submodules.packer = packer = self._packer
        m.submodules.window = window = self._window
        # The group modes' beats, split to the window's lanes when it is narrower.
        window_in = window.i
        if self._splitter is not None:
            m.submodules.splitter = splitter = self._splitter
            wiring.connect(m, splitter.o, window.i)
            window_in = splitter.i
        # A register between the decisions (the window's, or APPLY's comparisons) and the
        # packer: each is a long path. ``keep`` is what the packer sends (the kept elements
        # that are not zero), ``decided`` what was kept (counted for ``kept``).
        decided_layout = masked_beat(self.width, self.lanes, decided=unsigned(self.lanes))
        m.submodules.window_out = window_out = SkidBuffer(decided_layout)
        swat_kept = Signal.like(self.result.payload.kept)

        # Stored thresholds, one for elements and one for kernel-slice norms.
        stored = {
            kind: (Signal(self.key_width, name=f"stored_{kind}_threshold"),
                   Signal(name=f"stored_{kind}_keep_none"),
                   Signal(name=f"stored_{kind}_valid"))
            for kind in ("element", "slice")
        }
        cmd = Signal(self.cmd_layout)
        result = Signal(self.result_layout)
        threshold = Signal(self.key_width)  # of the APPLY or SLICE_APPLY under way
        keep_none = Signal()
        missing_stored = Signal()
        window_error = Signal()
        m.d.comb += self.result.payload.eq(result)

        beat = self.data.payload
        keep = Signal(self.lanes)
        count_mask = Signal(self.lanes)
        for lane in range(self.lanes):
            mag = magnitude(beat.values[lane])
            m.d.comb += [
                count_mask[lane].eq(lane < beat.count),
                keep[lane].eq(~keep_none & (mag >= threshold)),
            ]

        def decide(decisions, values):
            """``window_out``'s mask fields from the keep decisions of a beat's ``values`` (as
            many lanes as ``values`` has; the others are not kept)."""
            nonzero = [values[lane] != 0 for lane in range(values.shape().length)]
            return [window_out.i.payload.decided.eq(decisions),
                    window_out.i.payload.keep.eq(
                        decisions & Cat(*nonzero))]

        # SWAT's count of kept elements, from the registered decisions as they reach the packer.
        staged = window_out.o.payload
        with m.If(window_out.o.valid & window_out.o.ready):
            m.d.sync += swat_kept.eq(swat_kept + popcount(
                Cat(staged.decided[lane] & (lane < staged.count) for lane in range(self.lanes))))
        m.d.comb += [
            radix.cmd.payload.k.eq(cmd.k),
            radix.cmd.payload.first_pass.eq(Mux(cmd.op == TopKOp.THRESHOLD,
                                                self.element_first_pass, 0)),
            window_in.payload.eq(beat),
            window.mode.eq(Mux(cmd.op == TopKOp.NM, GroupMode.NM, GroupMode.SLICE)),
            window.n.eq(cmd.nm_n),
            window.group.eq(Mux(cmd.op == TopKOp.NM, cmd.nm_m, cmd.slice_len)),
            window.threshold.eq(threshold),
            window.keep_none.eq(keep_none),
        ]
        with m.If(window.error):
            m.d.sync += window_error.eq(1)
        wiring.connect(m, packer.out, wiring.flipped(self.out))

        def route_data_to_window():
            m.d.comb += [window_in.valid.eq(self.data.valid), self.data.ready.eq(window_in.ready)]

        def route_window_to_packer():
            m.d.comb += [
                window_out.i.valid.eq(window.o.valid),
                window.o.ready.eq(window_out.i.ready),
                window_out.i.payload.values.eq(window.o.payload.values.as_value()),
                *decide(window.o.payload.keep, window.o.payload.values),
                window_out.i.payload.count.eq(window.o.payload.count),
                window_out.i.payload.last.eq(window.o.payload.last),
            ]
            stage_to_packer()

        # The staged beats' payload goes to the packer whatever the state (only the handshake
        # follows it), so the state machine does not reach into the packer's compaction.
        m.d.comb += [
            packer.i.payload.values.eq(window_out.o.payload.values),
            packer.i.payload.keep.eq(window_out.o.payload.keep),
            packer.i.payload.count.eq(window_out.o.payload.count),
            packer.i.payload.last.eq(window_out.o.payload.last),
        ]

        def stage_to_packer():
            m.d.comb += [
                packer.i.valid.eq(window_out.o.valid),
                window_out.o.ready.eq(packer.i.ready),
            ]

        def finish_from_packer(extra_error):
            m.d.comb += packer.result.ready.eq(1)
            with m.If(packer.result.valid):
                m.d.sync += [
                    result.n.eq(packer.result.payload.n),
                    result.kept.eq(swat_kept),
                    result.nonzero.eq(packer.result.payload.kept),
                    result.error.eq(packer.result.payload.error | extra_error),
                ]
                m.next = "RESULT"

        def finish_from_radix(kind, extra_error):
            m.d.comb += radix.result.ready.eq(1)
            with m.If(radix.result.valid):
                found = radix.result.payload
                error = found.error | extra_error
                thr, none, valid = stored[kind]
                m.d.sync += [
                    result.threshold.eq(found.threshold),
                    result.keep_none.eq(found.keep_none),
                    result.n.eq(found.n),
                    result.error.eq(error),
                    thr.eq(found.threshold),
                    none.eq(found.keep_none),
                    valid.eq(~error),
                ]
                m.next = "RESULT"

        group_size_bad = Mux(cmd.op == TopKOp.NM, (cmd.nm_m == 0) | (cmd.nm_n > cmd.nm_m),
                             cmd.slice_len == 0)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    op = self.cmd.payload.op
                    use_stored = self.cmd.payload.use_stored
                    kind_thr, kind_none, kind_valid = [
                        Mux(op == TopKOp.SLICE_APPLY, s_sig, e_sig)
                        for e_sig, s_sig in zip(stored["element"], stored["slice"])]
                    chosen_threshold = Mux(use_stored, kind_thr, self.cmd.payload.threshold)
                    chosen_keep_none = Mux(use_stored, kind_none, self.cmd.payload.keep_none)
                    m.d.sync += [
                        cmd.eq(self.cmd.payload),
                        result.op.eq(op),
                        result.threshold.eq(0),
                        result.keep_none.eq(0),
                        result.kept.eq(0),
                        result.nonzero.eq(0),
                        swat_kept.eq(0),
                        threshold.eq(chosen_threshold),
                        keep_none.eq(chosen_keep_none),
                        missing_stored.eq(use_stored & ~kind_valid),
                        window_error.eq(0),
                    ]
                    with m.Switch(op):
                        with m.Case(TopKOp.THRESHOLD, TopKOp.SLICE_THRESHOLD):
                            m.next = "THRESHOLD_CMD"
                        with m.Case(TopKOp.APPLY, TopKOp.SLICE_APPLY):
                            m.d.sync += [result.threshold.eq(chosen_threshold),
                                         result.keep_none.eq(chosen_keep_none)]
                            with m.If(op == TopKOp.APPLY):
                                m.next = "APPLY_RUN"
                            with m.Else():
                                m.next = "WINDOW_APPLY_RUN"
                        with m.Default():
                            m.next = "WINDOW_APPLY_RUN"

            with m.State("THRESHOLD_CMD"):
                m.d.comb += radix.cmd.valid.eq(1)
                with m.If(radix.cmd.ready):
                    with m.If(cmd.op == TopKOp.THRESHOLD):
                        m.next = "THRESHOLD_RUN"
                    with m.Else():
                        m.next = "SLICE_THRESHOLD_RUN"

            with m.State("THRESHOLD_RUN"):
                for lane in range(self.lanes):
                    m.d.comb += radix.keys.payload.keys[lane].eq(magnitude(beat.values[lane]))
                m.d.comb += [
                    radix.keys.payload.valid.eq(count_mask),
                    radix.keys.payload.last.eq(beat.last),
                    radix.keys.valid.eq(self.data.valid),
                    self.data.ready.eq(radix.keys.ready),
                ]
                finish_from_radix("element", 0)

            with m.State("SLICE_THRESHOLD_RUN"):
                route_data_to_window()
                m.d.comb += [
                    radix.keys.payload.keys.eq(window.o.payload.sums.as_value()),
                    radix.keys.payload.valid.eq(window.o.payload.ends),
                    radix.keys.payload.last.eq(window.o.payload.last),
                    radix.keys.valid.eq(window.o.valid),
                    window.o.ready.eq(radix.keys.ready),
                ]
                finish_from_radix("slice", window_error | group_size_bad)

            with m.State("APPLY_RUN"):
                # The keep decisions (a magnitude and a comparison per lane) are registered
                # before the packer, as the window's are.
                m.d.comb += [
                    window_out.i.valid.eq(self.data.valid),
                    window_out.i.payload.values.eq(beat.values),
                    *decide(keep, beat.values),
                    window_out.i.payload.count.eq(beat.count),
                    window_out.i.payload.last.eq(beat.last),
                    self.data.ready.eq(window_out.i.ready),
                ]
                stage_to_packer()
                finish_from_packer(missing_stored)

            with m.State("WINDOW_APPLY_RUN"):
                route_data_to_window()
                route_window_to_packer()
                finish_from_packer(missing_stored | window_error | window.error
                                   | group_size_bad)

            with m.State("RESULT"):
                m.d.comb += self.result.valid.eq(1)
                with m.If(self.result.ready):
                    m.next = "IDLE"

        return m
