"""Pack and unpack ``lib.data`` payloads as plain integers, for cocotb drivers.

The testbench builds the same Amaranth component the Verilog came from and reads its port
layouts, so field offsets are never written down twice.

A value is a Python ``int`` for a plain shape, a ``dict`` for a ``StructLayout`` and a ``list``
for an ``ArrayLayout``; signed fields are given and returned as signed integers.
"""

from amaranth.hdl import Shape
from amaranth.lib import data

__all__ = ["pack", "unpack", "layout_of"]


def layout_of(port):
    """The payload shape of a ``lib.stream`` signature member or interface."""
    signature = getattr(port, "signature", port)
    return signature.members["payload"].shape


def _fields(shape):
    if isinstance(shape, data.StructLayout):
        return [(name, field.offset, field.shape) for name, field in shape]
    if isinstance(shape, data.ArrayLayout):
        width = Shape.cast(shape.elem_shape).width
        return [(i, i * width, shape.elem_shape) for i in range(shape.length)]
    return None


def pack(shape, value):
    """The integer bits of ``value`` laid out as ``shape``."""
    fields = _fields(shape)
    if fields is None:
        cast = Shape.cast(shape)
        value = int(value)
        lo = -(1 << (cast.width - 1)) if cast.signed else 0
        hi = (1 << (cast.width - (1 if cast.signed else 0))) - 1
        if not lo <= value <= hi:
            raise ValueError(f"{value} does not fit in {cast}")
        return value & ((1 << cast.width) - 1)
    bits = 0
    for key, offset, field_shape in fields:
        bits |= pack(field_shape, value[key]) << offset
    return bits


def unpack(shape, bits):
    """The value whose integer bits are ``bits`` in ``shape`` (inverse of :func:`pack`)."""
    fields = _fields(shape)
    if fields is None:
        cast = Shape.cast(shape)
        bits &= (1 << cast.width) - 1
        if cast.signed and bits >> (cast.width - 1):
            bits -= 1 << cast.width
        return bits
    out = {} if isinstance(shape, data.StructLayout) else [None] * len(fields)
    for key, offset, field_shape in fields:
        out[key] = unpack(field_shape, bits >> offset)
    return out
