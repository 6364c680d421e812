"""A stream register slice (skid buffer) that cuts every timing path of a ``lib.stream`` link."""

from amaranth.hdl import Module, Shape, ShapeCastable, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SkidBuffer"]


class SkidBuffer(wiring.Component):
    """Two-entry register slice between two ``lib.stream`` interfaces.

    ``o.valid``, ``o.payload`` and ``i.ready`` all come straight from registers, so no
    combinational path crosses the slice in either direction. The second entry (the "skid"
    register) catches the one payload that arrives in the cycle the output stalls, so the slice
    still moves one transfer per cycle when neither side stalls.

    Parameters
    ----------
    payload_shape : shape-like
        Shape of the payload (a ``Shape``, an ``int`` width, or a ``lib.data`` layout).

    Attributes
    ----------
    i : In(stream.Signature(payload_shape))
        Upstream side.
    o : Out(stream.Signature(payload_shape))
        Downstream side.
    occupancy : Signal(range(3)), out
        Payloads held (0 to 2). Exposed for formal invariants and debugging.
    skid_valid, skid_payload : Signal
        The second entry, which holds the newer payload when both are full (internal; read by
        the formal harness).

    Raises
    ------
    TypeError
        If ``payload_shape`` is not shape-castable.
    """

    def __init__(self, payload_shape):
        if not isinstance(payload_shape, (Shape, ShapeCastable, int, range)) \
                or isinstance(payload_shape, bool):
            raise TypeError(
                f"Payload shape must be a shape-castable object, not {payload_shape!r}")
        self._payload_shape = payload_shape
        # The skid entry is created here, not in elaborate(), so that formal harnesses can
        # state invariants about it.
        self.skid_valid = Signal()
        self.skid_payload = Signal(payload_shape)
        super().__init__({
            "i": In(stream.Signature(payload_shape)),
            "o": Out(stream.Signature(payload_shape)),
            "occupancy": Out(range(3)),
        })

    @property
    def payload_shape(self):
        return self._payload_shape

    def elaborate(self, platform):
        m = Module()

        out_valid = Signal()
        out_payload = Signal(self._payload_shape)
        skid_valid, skid_payload = self.skid_valid, self.skid_payload

        m.d.comb += [
            self.o.valid.eq(out_valid),
            self.o.payload.eq(out_payload),
            # ready is the inverse of a register: the slice accepts while its skid entry is free.
            self.i.ready.eq(~skid_valid),
            self.occupancy.eq(out_valid + skid_valid),
        ]

        with m.If(self.o.ready | ~out_valid):
            # The output register is free (or drains this cycle): refill it, oldest data first.
            with m.If(skid_valid):
                m.d.sync += [
                    out_payload.eq(skid_payload),
                    out_valid.eq(1),
                    skid_valid.eq(0),
                ]
            with m.Else():
                m.d.sync += out_valid.eq(self.i.valid)
                with m.If(self.i.valid):
                    m.d.sync += out_payload.eq(self.i.payload)
        with m.Elif(self.i.valid & self.i.ready):
            # The output stalls while a payload arrives: park it in the skid register.
            m.d.sync += [
                skid_payload.eq(self.i.payload),
                skid_valid.eq(1),
            ]

        return m
