"""Payload layouts shared by the blocks that stream tensors."""

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

__all__ = ["tensor_beat", "masked_beat"]


def tensor_beat(width, lanes, **extra):
    """One beat of a streamed tensor: ``values`` (``lanes`` signed operands), ``count`` (valid
    lanes ``0..count-1``) and ``last`` (the tensor's last beat), plus any ``extra`` fields."""
    return data.StructLayout({
        "values": data.ArrayLayout(signed(width), lanes),
        "count": range(lanes + 1),
        "last": 1,
        **extra,
    })


def masked_beat(width, lanes, **extra):
    """A :func:`tensor_beat` with a ``keep`` bit per lane."""
    return tensor_beat(width, lanes, keep=unsigned(lanes), **extra)
