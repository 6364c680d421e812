"""A gate on the host's tensor stream that lets through only the tensors of the command under
way."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .validate import check_int

__all__ = ["TensorGate"]


class TensorGate(wiring.Component):
    """Passes ``tensors`` tensors (each ending with a beat with ``last``) from ``i`` to ``o``
    after each ``start``, then holds the stream until the next ``start``.

    The host may send a command's tensors before the command before it is done (a product's
    reply waits for the PE array while the next commands run). A block that takes its input
    a beat ahead (the top-K selector's input register) would otherwise take the next command's
    first beat. ``o.valid`` and ``i.ready`` depend on the other side and one register.

    Parameters
    ----------
    payload_layout : data.StructLayout
        The tensor beats (with a ``last`` field).
    max_tensors : int
        Most tensors of one command.

    Attributes
    ----------
    start : In(1)
        A command is taken: ``tensors`` of it are to pass.
    tensors : In(range(max_tensors + 1))
        Tensors of the command taken (read with ``start``).
    i, o : stream.Signature(payload_layout)
        In and out.
    """

    def __init__(self, *, payload_layout, max_tensors):
        check_int("max_tensors", max_tensors, 1)
        super().__init__({
            "start": In(1),
            "tensors": In(range(max_tensors + 1)),
            "i": In(stream.Signature(payload_layout)),
            "o": Out(stream.Signature(payload_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        left = Signal.like(self.tensors)  # tensors still to pass
        open_ = Signal()                  # ``left != 0``, as a register of its own
        m.d.comb += [self.o.payload.eq(self.i.payload),
                     self.o.valid.eq(self.i.valid & open_),
                     self.i.ready.eq(self.o.ready & open_)]
        with m.If(self.start):
            m.d.sync += [left.eq(self.tensors), open_.eq(self.tensors != 0)]
        with m.Elif(self.i.valid & self.i.ready & self.i.payload.last):
            m.d.sync += [left.eq(left - 1), open_.eq(left != 1)]
        return m
