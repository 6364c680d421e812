"""Small arithmetic helpers shared by the blocks."""

from amaranth.hdl import Mux, Value

__all__ = ["magnitude"]


def magnitude(value):
    """``|value|`` of a signed value, as an unsigned value of the same width.

    The most negative value ``-2**(w-1)`` has magnitude ``2**(w-1)``, which still fits in
    ``w`` unsigned bits, so no width is lost.
    """
    value = Value.cast(value)
    width = len(value)
    return Mux(value[-1], -value, value)[:width]
