"""ReplyBuilder: its parameters' validation, and in Amaranth's simulator, a GEMM's reply: the
selector's results summed, a row of the wrong length flagged, the PE array's counters."""

import pytest
from amaranth.sim import Simulator

from hw.reply_builder import ReplyBuilder
from hw.sequencer import AccelOp
from hw.top import SwatAccel

from configs import tiny_config


def layouts():
    accel = SwatAccel(tiny_config())
    return dict(cmd_layout=accel.cmd_layout, reply_layout=accel.reply_layout,
                selector_result_layout=accel.selector.result_layout,
                buffer_result_layout=accel.act_buffer.result_layout,
                pe_done_layout=accel.pe_array.done_layout)


@pytest.mark.parametrize("name", ["cmd_layout", "reply_layout", "pe_done_layout"])
def test_parameters_are_validated(name):
    with pytest.raises(TypeError) as info:
        ReplyBuilder(**{**layouts(), name: "x"})
    assert str(info.value) == f"{name} must be a data.StructLayout, not 'x'"


def test_gemm_reply():
    dut = ReplyBuilder(**layouts())
    steps, sel = dut.steps, dut.selector_result

    async def bench(ctx):
        ctx.set(dut.command, {"op": AccelOp.GEMM, "rows": 2, "depth": 4})
        ctx.set(steps.start, 1)
        await ctx.tick()
        ctx.set(steps.start, 0)
        ctx.set(steps.busy, 1)
        ctx.set(steps.gather_selector, 1)
        ctx.set(sel.valid, 1)
        for n, kept in ((4, 3), (4, 1)):
            ctx.set(sel.payload, {"n": n, "kept": kept, "nonzero": kept, "threshold": 6})
            assert ctx.get(steps.selector_done) and ctx.get(sel.ready)
            await ctx.tick()
        ctx.set(sel.valid, 0)
        ctx.set(steps.gather_selector, 0)
        ctx.set(steps.gather_pe, 1)
        ctx.set(dut.pe_done.payload, {"macs": 12, "busy": 7})
        ctx.set(dut.pe_done.valid, 1)
        await ctx.tick()
        ctx.set(dut.pe_done.valid, 0)
        ctx.set(steps.send, 1)
        assert ctx.get(dut.reply.valid)
        reply = ctx.get(dut.reply.payload)
        assert reply.op == AccelOp.GEMM and not reply.error
        assert (reply.kept, reply.nonzero, reply.threshold, reply.n) == (4, 4, 6, 4)
        assert (reply.macs, reply.busy, reply.cycles) == (12, 7, 4)
        # The next command: a row one short is an error.
        ctx.set(steps.send, 0)
        ctx.set(steps.start, 1)
        await ctx.tick()
        ctx.set(steps.start, 0)
        assert ctx.get(dut.reply.payload).kept == 0
        ctx.set(steps.gather_selector, 1)
        ctx.set(sel.payload, {"n": 3})
        ctx.set(sel.valid, 1)
        await ctx.tick()
        assert ctx.get(dut.reply.payload).error

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_reply_set_aside_goes_first():
    """A product's reply set aside takes the PE array's next result and is sent before the reply
    of the command after it, which gathers the PE result after that."""
    dut = ReplyBuilder(**layouts())
    steps, pe = dut.steps, dut.pe_done

    async def bench(ctx):
        ctx.set(dut.command, {"op": AccelOp.GEMM, "rows": 1, "depth": 4})
        ctx.set(steps.start, 1)
        await ctx.tick()
        ctx.set(steps.start, 0)
        ctx.set(steps.busy, 1)
        await ctx.tick()
        ctx.set(steps.handoff, 1)  # cycle 2: the streams are done
        await ctx.tick()
        ctx.set(steps.handoff, 0)
        assert ctx.get(steps.pending) and not ctx.get(dut.reply.valid)
        # The next command, a dense GEMM, starts and is soon done with its streams.
        ctx.set(dut.command, {"op": AccelOp.GEMM_SAVED, "rows": 1, "depth": 4})
        ctx.set(steps.start, 1)
        await ctx.tick()
        ctx.set(steps.start, 0)
        ctx.set(steps.gather_pe, 1)
        # The first PE result is the aside reply's: the command under way does not see it.
        ctx.set(pe.payload, {"macs": 5, "busy": 2})
        ctx.set(pe.valid, 1)
        assert not ctx.get(steps.pe_done)
        await ctx.tick()
        ctx.set(pe.valid, 0)
        ctx.set(dut.reply.ready, 0)
        for _ in range(2):  # offered until taken
            reply = ctx.get(dut.reply.payload)
            assert ctx.get(dut.reply.valid) and reply.op == AccelOp.GEMM
            assert (reply.macs, reply.busy, reply.cycles) == (5, 2, 5)
            await ctx.tick()
        # The second PE result is the command under way's; its reply waits for the first.
        ctx.set(pe.payload, {"macs": 9, "busy": 3})
        ctx.set(pe.valid, 1)
        assert ctx.get(steps.pe_done)
        await ctx.tick()
        ctx.set(pe.valid, 0)
        ctx.set(steps.send, 1)
        assert ctx.get(dut.reply.payload).op == AccelOp.GEMM and not ctx.get(steps.sent)
        ctx.set(dut.reply.ready, 1)
        await ctx.tick()
        assert not ctx.get(steps.pending) and ctx.get(steps.sent)
        reply = ctx.get(dut.reply.payload)
        assert reply.op == AccelOp.GEMM_SAVED and (reply.macs, reply.busy) == (9, 3)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
