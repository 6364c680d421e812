"""ThresholdSlots: its parameters' validation, and in Amaranth's simulator, a stored result read
back from its slot while the results pass through."""

import pytest
from amaranth.sim import Simulator

from hw.threshold_slots import ThresholdSlots
from hw.topk_selector import TopKSelector

from configs import tiny_config


def result_layout():
    return TopKSelector.from_config(tiny_config()).result_layout


@pytest.mark.parametrize("changes, error, message", [
    (dict(slots=0), ValueError, "slots must be at least 1, not 0"),
    (dict(slots="2"), TypeError, "slots must be an integer, not '2'"),
    (dict(result_layout=11), TypeError, "result_layout must be a data.StructLayout, not 11"),
])
def test_parameters_are_validated(changes, error, message):
    with pytest.raises(error) as info:
        ThresholdSlots(**{"slots": 3, "result_layout": result_layout(), **changes})
    assert str(info.value) == message


def test_store_and_read_back():
    dut = ThresholdSlots(slots=3, result_layout=result_layout())

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.payload, {"threshold": 77, "keep_none": 1, "error": 0})
        ctx.set(dut.i.valid, 1)
        assert ctx.get(dut.o.valid) and ctx.get(dut.o.payload.threshold) == 77
        assert ctx.get(dut.i.ready)
        await ctx.tick()  # not stored: ``store`` is low
        assert ctx.get(dut.access.valid) == 0
        ctx.set(dut.access.slot, 2)
        ctx.set(dut.access.store, 1)
        await ctx.tick()
        ctx.set(dut.i.payload, {"threshold": 5, "keep_none": 0, "error": 1})
        await ctx.tick()  # an error: slot 2 holds no threshold
        assert ctx.get(dut.access.valid) == 0
        ctx.set(dut.access.slot, 1)
        ctx.set(dut.i.payload, {"threshold": 9, "keep_none": 0, "error": 0})
        await ctx.tick()
        ctx.set(dut.access.store, 0)
        assert ctx.get(dut.access.valid) == 0b010
        assert (ctx.get(dut.access.threshold), ctx.get(dut.access.keep_none)) == (9, 0)
        ctx.set(dut.access.slot, 2)
        assert (ctx.get(dut.access.threshold), ctx.get(dut.access.keep_none)) == (5, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
