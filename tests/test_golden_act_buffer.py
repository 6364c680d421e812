import numpy as np
import pytest

from golden import topk
from golden.act_buffer import ActivationBuffer, BufferFull, format_comparison


def make(**kw):
    args = dict(width=8, bitmap_capacity=1000, value_capacity=300, max_tensors=4)
    args.update(kw)
    return ActivationBuffer(**args)


def sparse(rng, shape, density):
    x = rng.integers(-128, 128, size=shape)
    return x, topk.topk_mask(x, density)


@pytest.mark.parametrize("density", [0.0, 0.1, 0.5, 1.0])
def test_round_trip_in_both_orders(density):
    rng = np.random.default_rng(0)
    buf = make()
    x, mask = sparse(rng, (7, 13), density)
    d = buf.write(2, x, mask)
    kept = np.where(mask, x, 0)
    assert np.array_equal(buf.read_dense(2), kept)
    rows = buf.read_rows(2)
    assert rows == [(r, c, int(x[r, c])) for r in range(7) for c in range(13) if mask[r, c]]
    cols = buf.read_cols(2)
    assert cols == [(r, c, int(x[r, c])) for c in range(13) for r in range(7) if mask[r, c]]
    assert d.stored_bits(8) == 91 + 8 * int(mask.sum()) == buf.stored_bits(2)


def test_interleaved_tensors_and_stack_allocation():
    rng = np.random.default_rng(1)
    buf = make()
    tensors = {s: sparse(rng, (5, 6), 0.3) for s in range(3)}
    for s, (x, m) in tensors.items():
        buf.write(s, x, m)
    assert buf.bitmap_used == 90
    for s, (x, m) in tensors.items():
        assert np.array_equal(buf.read_dense(s), np.where(m, x, 0))
    buf.free(1)  # not on top: its space stays taken until slot 2 is freed
    assert buf.bitmap_used == 90
    buf.free(2)
    assert buf.bitmap_used == 30 and buf.stack == [0]
    x, m = sparse(rng, (4, 4), 0.5)
    buf.write(1, x, m)
    assert np.array_equal(buf.read_dense(0), np.where(tensors[0][1], tensors[0][0], 0))
    with pytest.raises(KeyError):
        buf.free(3)


def test_full_buffer_refuses_whole_and_keeps_contents():
    rng = np.random.default_rng(2)
    buf = make(bitmap_capacity=60, value_capacity=20)
    x, m = sparse(rng, (5, 6), 0.5)
    buf.write(0, x, m)
    y, my = sparse(rng, (5, 7), 0.1)
    with pytest.raises(BufferFull, match="bitmap does not fit"):
        buf.write(1, y, my)
    z, mz = sparse(rng, (5, 6), 0.9)
    with pytest.raises(BufferFull, match="values do not fit"):
        buf.write(1, z, mz)
    assert buf.stack == [0] and np.array_equal(buf.read_dense(0), np.where(m, x, 0))
    with pytest.raises(BufferFull, match="holds a tensor"):
        buf.write(0, x, m)
    with pytest.raises(BufferFull, match="outside the table"):
        buf.write(9, x, m)


def test_format_comparison_bitmap_wins_at_swat_densities():
    for width in (8, 16):
        for density in (0.5, 0.2, 0.1):
            f = format_comparison(1 << 20, density, width)
            assert f["entropy"] <= f["bitmap"] < min(f["dense"], f["index_value"])
    f = format_comparison(1 << 20, 0.01, 8)
    assert f["index_value"] < f["bitmap"]  # very sparse: indices win
