"""Formal harnesses of the top-K selector's blocks.

* :class:`MaskPackerSpec` proves, by k-induction, the stream rules on ``out`` and ``result``
  and that the ``kept`` count the result reports equals the number of entries ``out`` emitted
  for that tensor, under any input and any backpressure.
* :class:`TopKSelectorSpec` proves the stream rules on the selector's ``out`` and ``result``
  ports with both blocks (and the histogram memories) in place.
"""

from amaranth.hdl import Assert, Elaboratable, Module, Signal

from hw.mask_packer import MaskPacker
from hw.topk_selector import TopKSelector

from . import assume_reset_first_cycle, drive_streams


class MaskPackerSpec(Elaboratable):
    def __init__(self, *, width=3, lanes=2, max_len=15):
        self.params = dict(width=width, lanes=lanes, max_len=max_len)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = MaskPacker(**self.params)
        assume_reset_first_cycle(m)
        drive_streams(m, {"in": dut.i}, {"out": dut.out, "result": dut.result})

        lanes = self.params["lanes"]
        emitted = Signal(len(dut.kept))
        out_fire = dut.out.valid & dut.out.ready
        with m.If(dut.result.valid & dut.result.ready):
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
            Assert(~dut.result.valid | ~dut.out.valid, "result_after_last_beat"),
            Assert(dut.running | (dut.leftover == 0), "packing_empty_outside_run"),
            # A compacted beat between the stages keeps at most a beat's lanes.
            Assert(dut.stage.o.payload.nkept <= lanes, "staged_count_bound"),
            Assert(dut.stage.skid_payload.nkept <= lanes, "skid_count_bound"),
        ]
        return m


class TopKSelectorSpec(Elaboratable):
    def __init__(self, *, width=4, lanes=2, max_len=15, max_nm_m=3):
        self.params = dict(width=width, lanes=lanes, max_len=max_len, max_nm_m=max_nm_m)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = TopKSelector(**self.params)
        assume_reset_first_cycle(m)
        drive_streams(m, {"cmd": dut.cmd, "data": dut.data},
                      {"out": dut.out, "result": dut.result})
        return m
