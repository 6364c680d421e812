"""Helpers shared by the cocotb testbenches: parameters, clock and reset."""

import json
import os
import random

from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from ..runner import PARAMS_ENV

__all__ = ["tb_params", "tb_rng", "start_clock_and_reset", "CycleCounter"]

CLOCK_PERIOD_NS = 10


def tb_params():
    """The parameters :func:`sim.runner.run_cocotb` passed to this testbench, as a dict."""
    return json.loads(os.environ.get(PARAMS_ENV, "{}"))


def tb_rng(name):
    """A ``random.Random`` seeded from cocotb's seed and the test's name, reproducible per test."""
    import cocotb

    return random.Random(f"{cocotb.RANDOM_SEED}:{name}")


async def start_clock_and_reset(dut, cycles=3):
    """Start ``clk`` and hold Amaranth's synchronous ``rst`` high for ``cycles`` cycles."""
    Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start()
    dut.rst.value = 1
    await ClockCycles(dut.clk, cycles)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


class CycleCounter:
    """Counts rising edges of ``clock`` from its creation; read ``count``."""

    def __init__(self, clock):
        import cocotb

        self.clock = clock
        self.count = 0
        self._task = cocotb.start_soon(self._run())

    async def _run(self):
        while True:
            await RisingEdge(self.clock)
            self.count += 1
