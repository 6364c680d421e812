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
    array) in tiles of ``cols`` columns (the last one padded with zeros), ``last`` ending each
    tile: each row in ``cols / dense_lanes`` beats, or, for ``dense_lanes`` a multiple of
    ``cols``, that many rows a beat (the tile's last beat padded with zero rows)."""
    rows = [[int(v) for v in row] for row in d]
    n = len(rows[0])
    tiles = -(-n // cols)
    per_beat = max(1, dense_lanes // cols)
    beats = []
    for t in range(tiles):
        blocks = [(row[t * cols:(t + 1) * cols] + [0] * cols)[:cols] for row in rows]
        if per_beat > 1:
            for k in range(0, len(blocks), per_beat):
                group = blocks[k:k + per_beat]
                group += [[0] * cols] * (per_beat - len(group))
                beats.append({"values": [v for block in group for v in block],
                              "last": int(k + per_beat >= len(blocks))})
        else:
            for k, block in enumerate(blocks):
                for p in range(0, cols, dense_lanes):
                    beats.append({"values": block[p:p + dense_lanes],
                                  "last": int(k == len(blocks) - 1 and p + dense_lanes == cols)})
    return beats
