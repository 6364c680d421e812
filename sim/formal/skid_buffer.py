"""Formal harness of :class:`hw.skid_buffer.SkidBuffer`.

It proves, by k-induction, that the slice keeps the stream rules on its output and that every
payload leaves exactly once, in order: an arbitrary transfer number ``tracked`` (an
``AnyConst``) is followed through the slice, and the ``tracked``-th output must carry the
payload of the ``tracked``-th input. Because ``tracked`` is arbitrary, this holds for every
transfer: nothing is dropped, duplicated, reordered or invented.
"""

from amaranth.asserts import AnyConst
from amaranth.hdl import Assert, Elaboratable, Module, Signal

from hw.skid_buffer import SkidBuffer

from . import assume_reset_first_cycle, drive_streams

COUNT_BITS = 4  # transfer counters wrap; 4 bits are ample for a 2-entry slice


class SkidBufferSpec(Elaboratable):
    def __init__(self, width):
        self.width = width

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = SkidBuffer(self.width)
        assume_reset_first_cycle(m)
        drive_streams(m, {"in": dut.i}, {"out": dut.o})

        in_fire = dut.i.valid & dut.i.ready
        out_fire = dut.o.valid & dut.o.ready
        in_count = Signal(COUNT_BITS)
        out_count = Signal(COUNT_BITS)
        with m.If(in_fire):
            m.d.sync += in_count.eq(in_count + 1)
        with m.If(out_fire):
            m.d.sync += out_count.eq(out_count + 1)

        tracked = AnyConst(COUNT_BITS)
        recorded = Signal(self.width)
        tracked_in = Signal()
        tracked_out = Signal()
        with m.If(in_fire & (in_count == tracked) & ~tracked_in):
            m.d.sync += [recorded.eq(dut.i.payload), tracked_in.eq(1)]
        with m.If(out_fire & (out_count == tracked) & tracked_in & ~tracked_out):
            m.d.sync += tracked_out.eq(1)

        # The property: the tracked-th output is the tracked-th input, and comes after it.
        with m.If(out_fire & (out_count == tracked) & ~tracked_out):
            m.d.comb += [
                Assert(tracked_in, "no_output_before_input"),
                Assert(dut.o.payload == recorded, "payload_in_order"),
            ]

        # Invariants that make the property inductive.
        occupancy = dut.occupancy
        distance = Signal(COUNT_BITS)  # position of the tracked payload from the output
        m.d.comb += [
            distance.eq(tracked - out_count),
            Assert(occupancy == (in_count - out_count)[:COUNT_BITS], "occupancy_counts"),
            Assert(occupancy <= 2, "occupancy_bound"),
            Assert(~dut.skid_valid | dut.o.valid, "skid_only_behind_output"),
            Assert(dut.o.valid == (occupancy != 0), "valid_iff_occupied"),
            Assert(~tracked_out | tracked_in, "out_after_in"),
        ]
        with m.If(~tracked_in):
            m.d.comb += Assert(distance >= occupancy, "untracked_not_inside")
        with m.Elif(~tracked_out):
            m.d.comb += Assert(distance < occupancy, "tracked_inside")
            with m.If(distance == 0):
                m.d.comb += Assert(dut.o.payload == recorded, "tracked_at_output")
            with m.Else():
                m.d.comb += Assert(dut.skid_payload == recorded, "tracked_in_skid")
        return m
