"""TensorGate: its parameter's validation, and in Amaranth's simulator, the tensors of one
command through and the next command's held back until its start."""

import pytest
from amaranth.lib import data
from amaranth.sim import Simulator

from hw.tensor_gate import TensorGate

LAYOUT = data.StructLayout({"values": 8, "last": 1})


def test_parameters_are_validated():
    with pytest.raises(ValueError) as info:
        TensorGate(payload_layout=LAYOUT, max_tensors=0)
    assert str(info.value) == "max_tensors must be at least 1, not 0"


def test_only_the_commands_tensors_pass():
    dut = TensorGate(payload_layout=LAYOUT, max_tensors=3)

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        assert not ctx.get(dut.o.valid) and not ctx.get(dut.i.ready)  # closed after reset
        await ctx.tick()
        ctx.set(dut.start, 1)
        ctx.set(dut.tensors, 2)
        await ctx.tick()
        ctx.set(dut.start, 0)
        # Two tensors of 3 and 1 beats; the output stalls on the second beat for a cycle.
        for beat, last in ((1, 0), (2, 0), (3, 1), (4, 1)):
            ctx.set(dut.i.payload, {"values": beat, "last": last})
            if beat == 2:
                ctx.set(dut.o.ready, 0)
                assert ctx.get(dut.o.valid) and not ctx.get(dut.i.ready)
                await ctx.tick()
                ctx.set(dut.o.ready, 1)
            assert ctx.get(dut.o.valid) and ctx.get(dut.i.ready)
            assert ctx.get(dut.o.payload.values) == beat
            await ctx.tick()
        ctx.set(dut.i.payload, {"values": 5, "last": 1})  # the next command's
        for _ in range(3):
            assert not ctx.get(dut.o.valid) and not ctx.get(dut.i.ready)
            await ctx.tick()
        ctx.set(dut.start, 1)
        ctx.set(dut.tensors, 0)  # a command with no tensor: still closed
        await ctx.tick()
        ctx.set(dut.start, 0)
        assert not ctx.get(dut.o.valid)
        ctx.set(dut.start, 1)
        ctx.set(dut.tensors, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        assert ctx.get(dut.o.valid) and ctx.get(dut.i.ready)
        await ctx.tick()
        assert not ctx.get(dut.o.valid)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
