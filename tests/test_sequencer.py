"""CommandSequencer: its parameters' validation, and in Amaranth's simulator, the steps of a
dense GEMM, a GEMM's reply set aside once its rows are in, and the refusal of a command whose
threshold slot is empty."""

import pytest
from amaranth.sim import Simulator

from hw.sequencer import AccelOp, CommandSequencer, Route, RowMode, ThresholdAccess
from hw.top import SwatAccel

from configs import tiny_config


def layouts():
    accel = SwatAccel(tiny_config(), threshold_slots=4)
    return dict(cmd_layout=accel.cmd_layout, threshold_slots=4,
                selector_cmd_layout=accel.selector.cmd_layout,
                buffer_cmd_layout=accel.act_buffer.cmd_layout,
                pe_cmd_layout=accel.pe_array.cmd_layout)


@pytest.mark.parametrize("changes, error, message", [
    (dict(cmd_layout=8), TypeError, "cmd_layout must be a data.StructLayout, not 8"),
    (dict(pe_cmd_layout=None), TypeError, "pe_cmd_layout must be a data.StructLayout, not None"),
    (dict(threshold_slots=0), ValueError, "threshold_slots must be at least 1, not 0"),
    (dict(threshold_slots=2.0), TypeError, "threshold_slots must be an integer, not 2.0"),
    (dict(threshold_passes=0), ValueError, "threshold_passes must be at least 1, not 0"),
])
def test_parameters_are_validated(changes, error, message):
    with pytest.raises(error) as info:
        CommandSequencer(**{**layouts(), **changes})
    assert str(info.value) == message


def test_threshold_access_is_validated():
    with pytest.raises(ValueError) as info:
        ThresholdAccess(slots=0, key_width=8)
    assert str(info.value) == "slots must be at least 1, not 0"


def run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_dense_gemm_steps():
    """The PE array's command, the dense route until the PE array is done, then the reply."""
    dut = CommandSequencer(**layouts())

    async def bench(ctx):
        ctx.set(dut.pe_cmd.ready, 1)
        ctx.set(dut.cmd.payload, {"op": AccelOp.GEMM, "mode": RowMode.DENSE, "rows": 3,
                                  "depth": 5})
        ctx.set(dut.cmd.valid, 1)
        assert ctx.get(dut.cmd.ready) and ctx.get(dut.reply.start)
        assert not ctx.get(dut.reply.refuse)  # dense rows need no threshold
        await ctx.tick()
        ctx.set(dut.cmd.valid, 0)
        assert ctx.get(dut.busy) and ctx.get(dut.pe_cmd.valid) and ctx.get(dut.rows_start)
        assert ctx.get(dut.pe_cmd.payload.rows) == 3 and ctx.get(dut.pe_cmd.payload.depth) == 5
        await ctx.tick()
        for _ in range(3):
            assert ctx.get(dut.route) == Route.DENSE_ROWS and ctx.get(dut.reply.gather_pe)
            assert not ctx.get(dut.reply.send)
            await ctx.tick()
        ctx.set(dut.reply.pe_done, 1)
        await ctx.tick()
        ctx.set(dut.reply.pe_done, 0)
        assert ctx.get(dut.route) == Route.NONE and ctx.get(dut.reply.send)
        ctx.set(dut.reply.sent, 1)
        await ctx.tick()
        assert ctx.get(dut.cmd.ready) and not ctx.get(dut.busy)

    run(dut, bench)


def test_empty_threshold_slot_is_refused():
    dut = CommandSequencer(**layouts())

    async def bench(ctx):
        ctx.set(dut.thresholds.valid, 0b1101)  # slot 1 holds no threshold
        ctx.set(dut.cmd.payload, {"op": AccelOp.SAVE_ACT, "slot": 1})
        ctx.set(dut.cmd.valid, 1)
        assert ctx.get(dut.reply.start) and ctx.get(dut.reply.refuse)
        await ctx.tick()
        assert ctx.get(dut.reply.send) and not ctx.get(dut.buffer_cmd.valid)
        assert ctx.get(dut.command.slot) == 1

    run(dut, bench)


def test_gemm_reply_set_aside():
    """Once the PE array has the last row and the reply before is sent, the reply is set aside
    and the next command is taken; while one is aside, the next product waits for it."""
    dut = CommandSequencer(**layouts())

    async def bench(ctx):
        ctx.set(dut.pe_cmd.ready, 1)
        ctx.set(dut.cmd.payload, {"op": AccelOp.GEMM, "mode": RowMode.DENSE, "rows": 2,
                                  "depth": 5})
        ctx.set(dut.cmd.valid, 1)
        await ctx.tick()
        ctx.set(dut.cmd.valid, 0)
        await ctx.tick()
        ctx.set(dut.reply.pending, 1)  # the reply of an earlier product is not sent yet
        ctx.set(dut.rows_loaded, 1)
        await ctx.tick()
        ctx.set(dut.rows_loaded, 0)
        await ctx.tick()
        for _ in range(3):
            assert ctx.get(dut.route) == Route.NONE and ctx.get(dut.reply.gather_pe)
            assert not ctx.get(dut.reply.handoff) and not ctx.get(dut.cmd.ready)
            assert ctx.get(dut.busy)
            await ctx.tick()
        ctx.set(dut.reply.pending, 0)
        assert ctx.get(dut.reply.handoff)
        await ctx.tick()
        ctx.set(dut.reply.pending, 1)
        assert ctx.get(dut.cmd.ready) and ctx.get(dut.busy)  # a reply is still to come
        # The next product's PE result comes before its rows are all in: it replies at once.
        ctx.set(dut.cmd.valid, 1)
        await ctx.tick()
        ctx.set(dut.cmd.valid, 0)
        await ctx.tick()
        ctx.set(dut.reply.pe_done, 1)
        await ctx.tick()
        ctx.set(dut.reply.pe_done, 0)
        assert ctx.get(dut.reply.send) and not ctx.get(dut.reply.handoff)

    run(dut, bench)
