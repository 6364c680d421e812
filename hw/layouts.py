"""Payload layouts shared by the blocks that stream tensors."""

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

__all__ = ["tensor_beat", "masked_beat", "full_beats", "dense_beats"]


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


def full_beats(values, lanes):
    """A flat tensor as :func:`tensor_beat` payloads (dicts), ``lanes`` values a beat (the last
    beat short), ``last`` on the final one."""
    values = [int(v) for v in values]
    beats = []
    for pos in range(0, max(len(values), 1), lanes):
        chunk = values[pos:pos + lanes]
        beats.append({"values": chunk + [0] * (lanes - len(chunk)), "count": len(chunk),
                      "last": int(pos + lanes >= len(values))})
    return beats


def dense_beats(d, cols, dense_lanes):
    """Beats (dicts) of the PE array's dense operand ``d`` (``depth x n``, nested lists or an
    array) in tiles of ``cols`` columns (the last one padded with zeros), each row in
    ``cols / dense_lanes`` beats, ``last`` ending each tile."""
    rows = [[int(v) for v in row] for row in d]
    n = len(rows[0])
    tiles = -(-n // cols)
    beats = []
    for t in range(tiles):
        for k, row in enumerate(rows):
            block = (row[t * cols:(t + 1) * cols] + [0] * cols)[:cols]
            for p in range(0, cols, dense_lanes):
                beats.append({"values": block[p:p + dense_lanes],
                              "last": int(k == len(rows) - 1 and p + dense_lanes == cols)})
    return beats
