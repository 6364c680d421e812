"""The streaming top-K selector: exact per-tensor threshold, then sparsify-and-compress."""

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from .arith import magnitude
from .radix_select import RadixSelect, _check_int
from .sparsify import Sparsify

__all__ = ["TopKOp", "TopKSelector"]


class TopKOp(enum.Enum, shape=1):
    #: Find the exact top-K threshold of the next tensor (streamed ``passes`` times) and store it.
    THRESHOLD = 0
    #: Sparsify the next tensor (streamed once) with the stored or a given threshold.
    APPLY = 1


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
    radix_bits : int
        Magnitude bits ranked per threshold pass (the histogram has ``2**radix_bits`` bins).

    Attributes
    ----------
    cmd : In(stream.Signature(cmd_layout))
        ``op`` (:class:`TopKOp`), ``k``, ``threshold``, ``keep_none``, ``use_stored``.
    data : In(stream.Signature(data_layout))
        ``values`` (``lanes`` operands), ``count`` (valid lanes ``0..count-1``), ``last``.
    out : Out(stream.Signature(out_layout))
        The compressed tensor of an ``APPLY``.
    result : Out(stream.Signature(result_layout))
        ``op``, ``threshold``, ``keep_none``, ``n``, ``kept`` (``APPLY`` only), ``error``
        (``k > n``, a tensor over ``max_len``, passes of different lengths, or ``use_stored``
        before any ``THRESHOLD``).
    passes : int
        Times a tensor is streamed for ``THRESHOLD``.
    """

    def __init__(self, *, width, lanes, max_len, radix_bits=8):
        _check_int("width", width, 2)
        self.width = width
        self.lanes = lanes
        self.max_len = max_len
        self._radix = RadixSelect(key_width=width, lanes=lanes, max_len=max_len,
                                  radix_bits=radix_bits)
        self._sparsify = Sparsify(width=width, lanes=lanes, max_len=max_len)
        self.passes = self._radix.passes
        len_width = max_len.bit_length()
        self.cmd_layout = data.StructLayout({
            "op": TopKOp,
            "k": unsigned(len_width),
            "threshold": unsigned(width),
            "keep_none": 1,
            "use_stored": 1,
        })
        self.data_layout = self._sparsify.data_layout
        self.out_layout = self._sparsify.out_layout
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
        return cls(width=config.width, lanes=config.topk_lanes, max_len=config.max_tensor_len)

    def elaborate(self, platform):
        m = Module()
        m.submodules.radix = radix = self._radix
        m.submodules.sparsify = sparsify = self._sparsify

        stored_threshold = Signal(self.width)
        stored_keep_none = Signal()
        stored_valid = Signal()
        cmd = Signal(self.cmd_layout)
        result = Signal(self.result_layout)
        m.d.comb += self.result.payload.eq(result)

        # The tensor goes to the radix select as magnitudes, or to the sparsifier as is.
        beat = self.data.payload
        for lane in range(self.lanes):
            m.d.comb += radix.keys.payload.keys[lane].eq(magnitude(beat.values[lane]))
        m.d.comb += [
            radix.keys.payload.count.eq(beat.count),
            radix.keys.payload.last.eq(beat.last),
            sparsify.data.payload.eq(beat),
            radix.cmd.payload.k.eq(cmd.k),
        ]
        wiring.connect(m, sparsify.out, wiring.flipped(self.out))

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += cmd.eq(self.cmd.payload)
                    with m.If(self.cmd.payload.op == TopKOp.THRESHOLD):
                        m.next = "THRESHOLD_CMD"
                    with m.Else():
                        m.next = "APPLY_CMD"

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
                        result.op.eq(TopKOp.THRESHOLD),
                        result.threshold.eq(found.threshold),
                        result.keep_none.eq(found.keep_none),
                        result.n.eq(found.n),
                        result.kept.eq(0),
                        result.error.eq(found.error),
                        stored_threshold.eq(found.threshold),
                        stored_keep_none.eq(found.keep_none),
                        stored_valid.eq(~found.error),
                    ]
                    m.next = "RESULT"

            with m.State("APPLY_CMD"):
                threshold = Signal(self.width)
                keep_none = Signal()
                with m.If(cmd.use_stored):
                    m.d.comb += [threshold.eq(stored_threshold),
                                 keep_none.eq(stored_keep_none)]
                with m.Else():
                    m.d.comb += [threshold.eq(cmd.threshold), keep_none.eq(cmd.keep_none)]
                m.d.comb += [
                    sparsify.cmd.valid.eq(1),
                    sparsify.cmd.payload.threshold.eq(threshold),
                    sparsify.cmd.payload.keep_none.eq(keep_none),
                ]
                with m.If(sparsify.cmd.ready):
                    m.d.sync += [
                        result.op.eq(TopKOp.APPLY),
                        result.threshold.eq(threshold),
                        result.keep_none.eq(keep_none),
                    ]
                    m.next = "APPLY_RUN"

            with m.State("APPLY_RUN"):
                m.d.comb += [
                    sparsify.data.valid.eq(self.data.valid),
                    self.data.ready.eq(sparsify.data.ready),
                    sparsify.result.ready.eq(1),
                ]
                with m.If(sparsify.result.valid):
                    m.d.sync += [
                        result.n.eq(sparsify.result.payload.n),
                        result.kept.eq(sparsify.result.payload.kept),
                        result.error.eq(sparsify.result.payload.error
                                        | (cmd.use_stored & ~stored_valid)),
                    ]
                    m.next = "RESULT"

            with m.State("RESULT"):
                m.d.comb += self.result.valid.eq(1)
                with m.If(self.result.ready):
                    m.next = "IDLE"

        return m
