"""The streaming top-K selector: exact per-tensor threshold, then sparsify-and-compress."""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from .arith import magnitude
from .mask_packer import MaskPacker
from .nm_window import NMWindow
from .radix_select import RadixSelect, _check_int

__all__ = ["TopKOp", "TopKSelector"]


class TopKOp(enum.Enum, shape=2):
    #: Find the exact top-K threshold of the next tensor (streamed ``passes`` times) and store it.
    THRESHOLD = 0
    #: Sparsify the next tensor (streamed once) with the stored or a given threshold.
    APPLY = 1
    #: Keep the N largest magnitudes of every M consecutive elements of the next tensor.
    NM = 2


class TopKSelector(wiring.Component):
    """SWAT's top-K over whole tensors streamed ``lanes`` elements per beat.

    Commands, one result each:

    * ``THRESHOLD`` with ``k``: the tensor is streamed ``passes`` times (one pass for operands
      up to 8 bits, two up to 16); the result carries the k-th largest magnitude, or
      ``keep_none`` when ``k == 0``. The threshold is stored.
    * ``APPLY``: the tensor is streamed once; every element with ``|x| >= threshold`` is kept
      and ``out`` carries the bitmap and the packed ``(index, value)`` entries (see
      :class:`hw.sparsify.Sparsify`). The threshold is the stored one (``use_stored``, SWAT's
      top-K period reuses it between recomputations) or the command's ``threshold`` and
      ``keep_none``. The result carries the count kept.
    * ``NM`` with ``nm_n`` and ``nm_m``: the tensor is streamed once, in full beats but the last;
      ``out`` carries the elements that are among the ``nm_n`` largest magnitudes of their group
      of ``nm_m`` (see :class:`hw.nm_window.NMWindow`), in the same form as ``APPLY``.

    ``k`` is given, not the density: the host computes ``k = ceil(density * n)`` exactly
    (``golden.topk.topk_k``), which a fixed-point density could not do for densities like 0.3.

    Parameters
    ----------
    width : int
        Operand width (signed two's complement), at least 2.
    lanes : int
        Elements per beat, at least 1.
    max_len : int
        Longest tensor in elements.
    max_nm_m : int
        Largest M of the N:M mode.
    radix_bits : int
        Magnitude bits ranked per threshold pass (the histogram has ``2**radix_bits`` bins).

    Attributes
    ----------
    cmd : In(stream.Signature(cmd_layout))
        ``op`` (:class:`TopKOp`), ``k``, ``threshold``, ``keep_none``, ``use_stored``,
        ``nm_n``, ``nm_m``.
    data : In(stream.Signature(data_layout))
        ``values`` (``lanes`` operands), ``count`` (valid lanes ``0..count-1``), ``last``.
    out : Out(stream.Signature(out_layout))
        The compressed tensor of an ``APPLY``.
    result : Out(stream.Signature(result_layout))
        ``op``, ``threshold``, ``keep_none``, ``n``, ``kept`` (``APPLY`` only), ``error``
        (``k > n``, a tensor over ``max_len``, passes of different lengths, ``use_stored``
        before any ``THRESHOLD``, or in N:M mode a short beat before the last or ``nm_m == 0``).
    passes : int
        Times a tensor is streamed for ``THRESHOLD``.
    """

    def __init__(self, *, width, lanes, max_len, max_nm_m=8, radix_bits=8):
        _check_int("width", width, 2)
        self.width = width
        self.lanes = lanes
        self.max_len = max_len
        self.max_nm_m = max_nm_m
        self._radix = RadixSelect(key_width=width, lanes=lanes, max_len=max_len,
                                  radix_bits=radix_bits)
        self._packer = MaskPacker(width=width, lanes=lanes, max_len=max_len)
        self._nm = NMWindow(width=width, lanes=lanes, max_m=max_nm_m)
        self.passes = self._radix.passes
        len_width = max_len.bit_length()
        self.cmd_layout = data.StructLayout({
            "op": TopKOp,
            "k": unsigned(len_width),
            "threshold": unsigned(width),
            "keep_none": 1,
            "use_stored": 1,
            "nm_n": range(max_nm_m + 1),
            "nm_m": range(max_nm_m + 1),
        })
        self.data_layout = data.StructLayout({
            "values": data.ArrayLayout(signed(width), lanes),
            "count": range(lanes + 1),
            "last": 1,
        })
        self.out_layout = self._packer.out_layout
        self.result_layout = data.StructLayout({
            "op": TopKOp,
            "threshold": unsigned(width),
            "keep_none": 1,
            "n": unsigned(len_width),
            "kept": unsigned(len_width),
            "error": 1,
        })
        super().__init__({
            "cmd": In(stream.Signature(self.cmd_layout)),
            "data": In(stream.Signature(self.data_layout)),
            "out": Out(stream.Signature(self.out_layout)),
            "result": Out(stream.Signature(self.result_layout)),
        })

    @classmethod
    def from_config(cls, config):
        """The selector of an :class:`golden.config.AccelConfig`."""
        return cls(width=config.width, lanes=config.topk_lanes, max_len=config.max_tensor_len,
                   max_nm_m=config.nm_max_m)

    def elaborate(self, platform):
        m = Module()
        m.submodules.radix = radix = self._radix
        m.submodules.packer = packer = self._packer
        m.submodules.nm = nm = self._nm

        stored_threshold = Signal(self.width)
        stored_keep_none = Signal()
        stored_valid = Signal()
        cmd = Signal(self.cmd_layout)
        result = Signal(self.result_layout)
        threshold = Signal(self.width)  # of the APPLY under way
        keep_none = Signal()
        m.d.comb += self.result.payload.eq(result)

        # The tensor goes to the radix select as magnitudes, to the packer with a keep mask from
        # the threshold, or through the N:M window to the packer.
        beat = self.data.payload
        keep = Signal(self.lanes)
        for lane in range(self.lanes):
            mag = magnitude(beat.values[lane])
            m.d.comb += [
                radix.keys.payload.keys[lane].eq(mag),
                keep[lane].eq(~keep_none & (mag >= threshold)),
            ]
        m.d.comb += [
            radix.keys.payload.count.eq(beat.count),
            radix.keys.payload.last.eq(beat.last),
            radix.cmd.payload.k.eq(cmd.k),
            nm.i.payload.eq(beat),
            nm.n.eq(cmd.nm_n),
            nm.m.eq(cmd.nm_m),
        ]
        wiring.connect(m, packer.out, wiring.flipped(self.out))

        def finish_from_packer(extra_error):
            m.d.comb += packer.result.ready.eq(1)
            with m.If(packer.result.valid):
                m.d.sync += [
                    result.n.eq(packer.result.payload.n),
                    result.kept.eq(packer.result.payload.kept),
                    result.error.eq(packer.result.payload.error | extra_error),
                ]
                m.next = "RESULT"

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    op = self.cmd.payload.op
                    m.d.sync += [
                        cmd.eq(self.cmd.payload),
                        result.op.eq(op),
                        result.threshold.eq(0),
                        result.keep_none.eq(0),
                        result.kept.eq(0),
                    ]
                    with m.If(op == TopKOp.THRESHOLD):
                        m.next = "THRESHOLD_CMD"
                    with m.Elif(op == TopKOp.APPLY):
                        chosen_threshold = Mux(self.cmd.payload.use_stored, stored_threshold,
                                               self.cmd.payload.threshold)
                        chosen_keep_none = Mux(self.cmd.payload.use_stored, stored_keep_none,
                                               self.cmd.payload.keep_none)
                        m.d.sync += [
                            threshold.eq(chosen_threshold),
                            keep_none.eq(chosen_keep_none),
                            result.threshold.eq(chosen_threshold),
                            result.keep_none.eq(chosen_keep_none),
                        ]
                        m.next = "APPLY_RUN"
                    with m.Else():
                        m.next = "NM_RUN"

            with m.State("THRESHOLD_CMD"):
                m.d.comb += radix.cmd.valid.eq(1)
                with m.If(radix.cmd.ready):
                    m.next = "THRESHOLD_RUN"

            with m.State("THRESHOLD_RUN"):
                m.d.comb += [
                    radix.keys.valid.eq(self.data.valid),
                    self.data.ready.eq(radix.keys.ready),
                    radix.result.ready.eq(1),
                ]
                with m.If(radix.result.valid):
                    found = radix.result.payload
                    m.d.sync += [
                        result.threshold.eq(found.threshold),
                        result.keep_none.eq(found.keep_none),
                        result.n.eq(found.n),
                        result.error.eq(found.error),
                        stored_threshold.eq(found.threshold),
                        stored_keep_none.eq(found.keep_none),
                        stored_valid.eq(~found.error),
                    ]
                    m.next = "RESULT"

            with m.State("APPLY_RUN"):
                m.d.comb += [
                    packer.i.valid.eq(self.data.valid),
                    packer.i.payload.values.eq(beat.values),
                    packer.i.payload.keep.eq(keep),
                    packer.i.payload.count.eq(beat.count),
                    packer.i.payload.last.eq(beat.last),
                    self.data.ready.eq(packer.i.ready),
                ]
                finish_from_packer(cmd.use_stored & ~stored_valid)

            with m.State("NM_RUN"):
                m.d.comb += [
                    nm.i.valid.eq(self.data.valid),
                    self.data.ready.eq(nm.i.ready),
                ]
                wiring.connect(m, nm.o, packer.i)
                finish_from_packer(nm.error | (cmd.nm_m == 0) | (cmd.nm_n > cmd.nm_m))

            with m.State("RESULT"):
                m.d.comb += self.result.valid.eq(1)
                with m.If(self.result.ready):
                    m.next = "IDLE"

        return m
