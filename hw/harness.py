"""A synthesis harness: any component behind registered, narrow I/O.

A bare component has far more ports than a package has pins, and unregistered ports would put
pad delays in its timing paths. :class:`SynthHarness` feeds every input bit from one shift
register filled through a single pin, and folds every output bit into one registered parity bit
on a single pin. Nothing of the component can be optimised away (every output reaches the pin),
and its timing paths start and end at registers.

Overhead, to subtract when reading a report: one flip-flop per input bit, and an XOR tree of
about one LUT4 per three output bits plus one flip-flop.
"""

from amaranth.hdl import Cat, Elaboratable, Module, Signal, Value
from amaranth.lib.wiring import Flow

__all__ = ["SynthHarness"]


class SynthHarness(Elaboratable):
    """``dut`` behind a serial input ``si`` and a serial output ``so`` (both registered).

    Attributes
    ----------
    si, so : Signal
        The harness's only ports besides the clock and reset.
    input_bits, output_bits : int
        Widths of the component's inputs and outputs.
    """

    def __init__(self, dut):
        self.dut = dut
        self.si = Signal()
        self.so = Signal()
        ins, outs = [], []
        for _, member, value in dut.signature.flatten(dut):
            (ins if member.flow == Flow.In else outs).append(Value.cast(value))
        self._ins, self._outs = ins, outs
        self.input_bits = sum(len(v) for v in ins)
        self.output_bits = sum(len(v) for v in outs)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self.dut
        chain = Signal(max(self.input_bits, 1))
        m.d.sync += chain.eq(Cat(self.si, chain[:-1]))
        offset = 0
        for value in self._ins:
            m.d.comb += value.eq(chain[offset:offset + len(value)])
            offset += len(value)
        m.d.sync += self.so.eq(Cat(*self._outs).xor())
        return m
