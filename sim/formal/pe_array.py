"""Formal harness of :class:`hw.pe_array.SparsePEArray`: the stream rules on ``result`` and
``done`` hold under any commands, any operand streams and any backpressure (k-induction)."""

from amaranth.hdl import Elaboratable, Module

from . import assume_reset_first_cycle, drive_streams
from ..drivers.pe_array import build


class PEArraySpec(Elaboratable):
    def __init__(self, config):
        self.config = config

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = build(self.config)
        assume_reset_first_cycle(m)
        drive_streams(m, {"cmd": dut.cmd, "sparse": dut.sparse, "dense": dut.dense},
                      {"result": dut.result, "done": dut.done})
        return m
