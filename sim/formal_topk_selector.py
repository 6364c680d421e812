"""Formal harnesses of the top-K selector's blocks.

* :class:`SparsifySpec` proves, by k-induction, the stream rules on ``out`` and ``result`` and
  that the ``kept`` count the result reports equals the number of entries ``out`` emitted for
  that tensor, under any input and any backpressure.
* :class:`TopKSelectorSpec` proves the stream rules on the selector's ``out`` and ``result``
  ports with both blocks (and the histogram memories) in place.
"""

from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Elaboratable, Module, Signal, Value

from hw.sparsify import Sparsify
from hw.topk_selector import TopKSelector

from .formal import assert_stream_rules, assume_reset_first_cycle, assume_stream_rules


def _drive_inputs(m, dut):
    """The command and data streams are arbitrary within the stream rules; the consumers
    apply arbitrary backpressure."""
    for port, name in ((dut.cmd, "cmd"), (dut.data, "data")):
        payload = Value.cast(port.payload)
        m.d.comb += [port.valid.eq(AnySeq(1)), payload.eq(AnySeq(len(payload)))]
        assume_stream_rules(m, port, name=name)
    m.d.comb += [dut.out.ready.eq(AnySeq(1)), dut.result.ready.eq(AnySeq(1))]


class SparsifySpec(Elaboratable):
    def __init__(self, *, width=3, lanes=2, max_len=15):
        self.params = dict(width=width, lanes=lanes, max_len=max_len)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = Sparsify(**self.params)
        assume_reset_first_cycle(m)
        _drive_inputs(m, dut)
        assert_stream_rules(m, dut.out, name="out")
        assert_stream_rules(m, dut.result, name="result")

        lanes = self.params["lanes"]
        emitted = Signal(len(dut.kept))
        out_fire = dut.out.valid & dut.out.ready
        with m.If(dut.cmd.valid & dut.cmd.ready):
            m.d.sync += emitted.eq(0)
        with m.Elif(out_fire):
            m.d.sync += emitted.eq(emitted + dut.out.payload.count)

        # The property: the count reported is the count emitted.
        with m.If(dut.result.valid):
            m.d.comb += Assert(dut.result.payload.kept == emitted[:len(dut.result.payload.kept)],
                               "reported_count_is_emitted_count")

        # Invariants: every kept entry is emitted, waiting in the output register, or packed.
        pending = Signal(range(lanes + 1))
        m.d.comb += pending.eq(dut.out.valid * dut.out.payload.count)
        m.d.comb += [
            Assert(dut.kept == (emitted + pending + dut.leftover)[:len(dut.kept)],
                   "kept_is_emitted_pending_packed"),
            Assert(dut.leftover <= lanes, "leftover_bound"),
            Assert(dut.out.payload.count <= lanes, "count_bound"),
            Assert(~dut.cmd.ready | ~dut.out.valid, "idle_means_drained"),
            Assert(~dut.result.valid | ~dut.out.valid, "result_after_last_beat"),
            Assert(dut.running | (dut.leftover == 0), "packing_empty_outside_run"),
        ]
        return m


class TopKSelectorSpec(Elaboratable):
    def __init__(self, *, width=4, lanes=2, max_len=15):
        self.params = dict(width=width, lanes=lanes, max_len=max_len)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = TopKSelector(**self.params)
        assume_reset_first_cycle(m)
        _drive_inputs(m, dut)
        assert_stream_rules(m, dut.out, name="out")
        assert_stream_rules(m, dut.result, name="result")
        return m
