"""Formal harness of :class:`hw.act_buffer.ActivationBuffer`: the stream rules on ``rdata`` and
``result`` hold under any commands, any write stream and any backpressure (k-induction)."""

from amaranth.hdl import Elaboratable, Module

from .act_buffer_driver import build
from .formal import assume_reset_first_cycle
from .formal_topk_selector import drive_streams


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
