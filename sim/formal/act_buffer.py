"""Formal harness of :class:`hw.act_buffer.ActivationBuffer`: the stream rules on ``rdata`` and
``result`` hold under any commands, any write stream and any backpressure (k-induction)."""

from amaranth.hdl import Elaboratable, Module

from ..drivers.act_buffer import build
from . import assume_reset_first_cycle, drive_streams


class ActivationBufferSpec(Elaboratable):
    def __init__(self, params):
        self.params = params

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = build(self.params)
        assume_reset_first_cycle(m)
        drive_streams(m, {"cmd": dut.cmd, "wdata": dut.wdata},
                      {"rdata": dut.rdata, "result": dut.result})
        return m


class ExactlyOnceSpec(Elaboratable):
    """Bounded proof that a full read returns every accepted element exactly once.

    A ``rows x cols`` tensor with arbitrary values and an arbitrary keep mask (``AnyConst``) goes
    through a :class:`hw.mask_packer.MaskPacker` into the buffer, which is then read in row or
    column order with arbitrary backpressure. Every element read must be kept and carry its
    value, elements must come in strictly increasing order (so none twice), the read must end
    on its ``last`` beat with every kept element seen, and the result must report the count.

    With ``deadline``, the consumer may stall ``rdata`` at most ``max_stall`` cycles in a row,
    and the read must have ended by cycle ``deadline``: a bounded check of depth beyond the
    deadline then covers every such run to its end, not only its first cycles.
    """

    def __init__(self, params, *, rows, cols, order, deadline=None, max_stall=2):
        self.params = params
        self.rows, self.cols = rows, cols
        self.order = order
        self.deadline, self.max_stall = deadline, max_stall

    def elaborate(self, platform):
        from amaranth.asserts import AnyConst, AnySeq
        from amaranth.hdl import Assert, Assume, Mux, Signal, signed

        from hw.act_buffer import ActOp
        from hw.mask_packer import MaskPacker

        m = Module()
        p = self.params
        lanes, width = p["lanes"], p["width"]
        write_lanes = p.get("write_lanes") or lanes
        m.submodules.dut = dut = build(p)
        m.submodules.packer = packer = MaskPacker(width=width, lanes=write_lanes,
                                                  max_len=p["max_len"])
        assume_reset_first_cycle(m)
        n = self.rows * self.cols
        values = [AnyConst(width) for _ in range(n)]
        keep = AnyConst(n)

        m.d.comb += [
            dut.wdata.valid.eq(packer.out.valid),
            packer.out.ready.eq(dut.wdata.ready),
            dut.wdata.payload.eq(packer.out.payload),
            packer.result.ready.eq(1),
            dut.rdata.ready.eq(AnySeq(1)),
            dut.result.ready.eq(1),
        ]
        beats = [list(range(i, min(i + write_lanes, n))) for i in range(0, n, write_lanes)]
        step = Signal(range(len(beats) + 4))
        seen = Signal(range(n + 2))
        prev = Signal(range(n + 1))  # position, in read order, of the last element seen + 1
        read_done = Signal()
        read_op = ActOp.READ_ROWS if self.order == "rows" else ActOp.READ_COLS

        with m.Switch(step):
            with m.Case(0):
                m.d.comb += [dut.cmd.valid.eq(1), dut.cmd.payload.op.eq(ActOp.WRITE),
                             dut.cmd.payload.rows.eq(self.rows),
                             dut.cmd.payload.cols.eq(self.cols)]
                with m.If(dut.cmd.ready):
                    m.d.sync += step.eq(1)
            for b, indices in enumerate(beats):
                with m.Case(1 + b):
                    m.d.comb += [
                        packer.i.valid.eq(1),
                        packer.i.payload.count.eq(len(indices)),
                        packer.i.payload.last.eq(b == len(beats) - 1),
                    ]
                    for lane, i in enumerate(indices):
                        m.d.comb += [packer.i.payload.values[lane].eq(values[i]),
                                     packer.i.payload.keep[lane].eq(keep[i])]
                    with m.If(packer.i.ready):
                        m.d.sync += step.eq(2 + b)
            with m.Case(1 + len(beats)):
                with m.If(dut.result.valid):
                    m.d.comb += Assert(~dut.result.payload.error, "write_accepted")
                    m.d.sync += step.eq(2 + len(beats))
            with m.Case(2 + len(beats)):
                m.d.comb += [dut.cmd.valid.eq(1), dut.cmd.payload.op.eq(read_op)]
                with m.If(dut.cmd.ready):
                    m.d.sync += step.eq(3 + len(beats))

        # Check every element read: lanes 0 .. count - 1 of each beat, in increasing order.
        beat = dut.rdata.payload
        fire = Signal()
        m.d.comb += fire.eq(dut.rdata.valid & dut.rdata.ready)
        last_position = prev
        with m.If(fire):
            m.d.comb += [
                Assert(step == 3 + len(beats), "read_only_when_asked"),
                Assert((beat.count >= 1) & (beat.count <= lanes), "beat_count_in_range"),
            ]
        for lane in range(lanes):
            flat = Signal(range(n + 1), name=f"flat{lane}")
            position = Signal(range(n + 1), name=f"position{lane}")
            m.d.comb += [
                flat.eq(beat.row * self.cols + beat.col[lane]),
                position.eq(flat if self.order == "rows" else beat.col[lane] * self.rows
                            + beat.row),
            ]
            expected = Signal(signed(width), name=f"expected{lane}")
            kept_here = Signal(name=f"kept_here{lane}")
            with m.Switch(flat):
                for i in range(n):
                    with m.Case(i):
                        m.d.comb += [expected.eq(values[i]), kept_here.eq(keep[i])]
            with m.If(fire & (lane < beat.count)):
                m.d.comb += [
                    Assert((beat.row < self.rows) & (beat.col[lane] < self.cols),
                           "element_in_range"),
                    Assert(kept_here, "element_was_kept"),
                    Assert(beat.value[lane] == expected, "value_matches"),
                    Assert(position + 1 > last_position, "order_strict_no_duplicates"),
                ]
            following = Signal.like(prev, name=f"following{lane}")
            m.d.comb += following.eq(Mux(lane < beat.count, position + 1, last_position))
            last_position = following
        with m.If(fire):
            m.d.sync += [seen.eq(seen + beat.count), prev.eq(last_position)]
            with m.If(beat.last):
                m.d.sync += read_done.eq(1)
        kept_total = Signal(range(n + 1))
        m.d.comb += kept_total.eq(sum(keep[i] for i in range(n)))
        with m.If((step == 3 + len(beats)) & dut.result.valid):
            m.d.comb += [
                Assert(seen == kept_total, "every_kept_element_read"),
                Assert(read_done | (kept_total == 0), "read_ended_on_last"),
                Assert(dut.result.payload.kept == kept_total, "result_counts"),
                Assert(~dut.result.payload.error, "read_accepted"),
            ]
        if self.deadline is not None:
            cycle = Signal(range(self.deadline + 2))
            stalls = Signal(range(self.max_stall + 2))
            finished = Signal()
            with m.If(cycle <= self.deadline):
                m.d.sync += cycle.eq(cycle + 1)
            with m.If(dut.rdata.valid & ~dut.rdata.ready):
                m.d.sync += stalls.eq(stalls + 1)
            with m.Else():
                m.d.sync += stalls.eq(0)
            m.d.comb += Assume(stalls <= self.max_stall)
            ended = (step == 3 + len(beats)) & dut.result.valid
            with m.If(ended):
                m.d.sync += finished.eq(1)
            with m.If(cycle == self.deadline):
                m.d.comb += Assert(finished | ended, "read_finishes_by_the_deadline")
        return m
