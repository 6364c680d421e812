"""cocotb testbench of :class:`hw.skid_buffer.SkidBuffer` against its model, a FIFO.

Parameters (``SWAT_TB_PARAMS``): ``width`` (payload bits) and ``count`` (payloads per test).
"""

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from ..drivers.streams import StreamSink, StreamSource
from .util import start_clock_and_reset, tb_params, tb_rng


def _edge_payloads(width):
    """All zeros, all ones, the most negative value, the largest positive one, alternating bits."""
    ones = (1 << width) - 1
    return [0, ones, 1 << (width - 1), ones >> 1, 0x5555555555555555 & ones,
            0xAAAAAAAAAAAAAAAA & ones, 0, 0, ones, ones]


async def _run(dut, name, in_stall, out_stall):
    params = tb_params()
    width, count = params["width"], params["count"]
    rng = tb_rng(name)
    await start_clock_and_reset(dut)
    source = StreamSource(dut, "i", dut.clk, rng=rng, stall=in_stall)
    sink = StreamSink(dut, "o", dut.clk, rng=rng, stall=out_stall)
    expected = _edge_payloads(width) + [rng.getrandbits(width) for _ in range(count)]
    source.send(expected)
    await sink.wait_for(len(expected), timeout_cycles=50 * len(expected))
    await ClockCycles(dut.clk, 10)  # anything extra would show up here
    sink.check()
    assert sink.received == expected, "payloads dropped, duplicated or reordered"
    return sink


@cocotb.test()
async def no_stalls_full_throughput(dut):
    """One transfer per cycle when neither side stalls."""
    sink = await _run(dut, "no_stalls", 0.0, 0.0)
    gaps = [b - a for a, b in zip(sink.cycles, sink.cycles[1:])]
    assert max(gaps) == 1, f"bubble in the output stream: gaps {sorted(set(gaps))}"


@cocotb.test()
async def random_stalls_both_sides(dut):
    await _run(dut, "both", 0.4, 0.4)


@cocotb.test()
async def slow_consumer(dut):
    await _run(dut, "slow_consumer", 0.1, 0.8)


@cocotb.test()
async def slow_producer(dut):
    await _run(dut, "slow_producer", 0.8, 0.1)


@cocotb.test()
async def reset_empties(dut):
    """A payload held when reset arrives is gone afterwards: reset clears both entries."""
    params = tb_params()
    rng = tb_rng("reset")
    await start_clock_and_reset(dut)
    dut.o__ready.value = 0
    dut.i__valid.value = 1
    dut.i__payload.value = rng.getrandbits(params["width"])
    await ClockCycles(dut.clk, 3)  # both entries fill; ready drops
    dut.i__valid.value = 0
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    assert dut.o__valid.value == 0
    assert dut.i__ready.value == 1
