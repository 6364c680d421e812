"""The thresholds the accelerator keeps between refreshes, one per slot."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .sequencer import ThresholdAccess
from .validate import check_int

__all__ = ["ThresholdSlots"]


class ThresholdSlots(wiring.Component):
    """Threshold slots, written by the selector's results of threshold refreshes.

    The selector's results pass from ``i`` to ``o`` unchanged. While ``access.store`` is high,
    a result (``i.valid``) also goes to slot ``access.slot``: its ``threshold`` and
    ``keep_none``, and the slot holds a threshold (``access.valid``) unless the result is an
    error. ``access.threshold`` and ``access.keep_none`` are what slot ``access.slot`` holds
    (zero for a slot number past the last).

    Parameters
    ----------
    slots : int
        Threshold slots.
    result_layout : data.StructLayout
        The selector's result (``threshold``, ``keep_none`` and ``error`` are read).

    Attributes
    ----------
    access : In(ThresholdAccess(slots=slots, key_width=...))
        The sequencer's side.
    i : In(stream.Signature(result_layout))
        The selector's results.
    o : Out(stream.Signature(result_layout))
        The same, for whoever takes them.

    Raises
    ------
    TypeError
        If ``slots`` is not an integer, or ``result_layout`` not a ``data.StructLayout``.
    ValueError
        If ``slots`` is less than 1.
    """

    def __init__(self, *, slots, result_layout):
        check_int("slots", slots, 1)
        if not isinstance(result_layout, data.StructLayout):
            raise TypeError(f"result_layout must be a data.StructLayout, not {result_layout!r}")
        self.slots = slots
        self.key_width = result_layout["threshold"].shape.width
        super().__init__({
            "access": In(ThresholdAccess(slots=slots, key_width=self.key_width)),
            "i": In(stream.Signature(result_layout)),
            "o": Out(stream.Signature(result_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        access, result = self.access, self.i.payload
        thresholds = [Signal(self.key_width, name=f"threshold{i}") for i in range(self.slots)]
        keep_nones = Signal(self.slots)
        valids = Signal(self.slots)

        m.d.comb += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload),
                     self.i.ready.eq(self.o.ready)]
        m.d.comb += [access.keep_none.eq(keep_nones.bit_select(access.slot, 1)),
                     access.valid.eq(valids)]
        with m.Switch(access.slot):
            for i in range(self.slots):
                with m.Case(i):
                    m.d.comb += access.threshold.eq(thresholds[i])
        with m.If(access.store & self.i.valid):
            with m.Switch(access.slot):
                for i in range(self.slots):
                    with m.Case(i):
                        m.d.sync += [thresholds[i].eq(result.threshold),
                                     keep_nones[i].eq(result.keep_none),
                                     valids[i].eq(~result.error)]
        return m
