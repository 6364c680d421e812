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


def _conv_maps(rng, shape, density):
    x = rng.integers(-128, 128, size=shape)
    x[rng.random(shape) < 0.2] = 0  # kept zeros are stored
    return x, rng.random(shape) < density


def _stored_matrix(x):
    """``X~`` (N, C, H, W) as the matrix written: its planes in (channel, image) order."""
    n, c, h, w = x.shape
    return x.transpose(1, 0, 2, 3).reshape(c * n, h * w)


def _conv(shape, kernel, stride, padding, **kw):
    from golden.layers import conv_out_size

    n, c, h, w = shape
    args = dict(images=n, height=h, width=w, kernel=kernel, stride=stride, padding=padding,
                out_h=conv_out_size(h, kernel, stride, padding),
                out_w=conv_out_size(w, kernel, stride, padding), first_channel=0, channels=c,
                first_out_row=0)
    args["out_rows"] = n * args["out_h"]
    args.update(kw)
    return args


@pytest.mark.parametrize("shape, kernel, stride, padding", [
    ((2, 3, 5, 5), 3, 1, 1), ((2, 2, 7, 6), 3, 2, 1), ((1, 2, 9, 9), 7, 2, 3),
    ((1, 1, 1, 1), 3, 1, 1), ((1, 1, 2, 2), 3, 1, 1), ((3, 2, 4, 4), 1, 1, 0)])
@pytest.mark.parametrize("density", [0.0, 0.4, 1.0])
def test_conv_read_gives_the_im2col_rows(shape, kernel, stride, padding, density):
    from golden.layers import im2col

    rng = np.random.default_rng(sum(shape) + kernel)
    x, mask = _conv_maps(rng, shape, density)
    buf = make(bitmap_capacity=4096, value_capacity=4096)
    buf.write(1, _stored_matrix(x), _stored_matrix(mask), directory=True)
    args = _conv(shape, kernel, stride, padding)
    cols = im2col(np.where(mask, x, 0), kernel, stride, padding)
    kept = im2col(mask.astype(np.int64), kernel, stride, padding)
    want = [(f, int(m), int(cols[m, f])) for f in range(cols.shape[1])
            for m in np.nonzero(kept[:, f])[0]]
    assert buf.read_conv(1, **args) == want
    # A range of channels and output rows: the same entries, re-based.
    if shape[1] > 1 and args["out_rows"] > 2:
        k2 = kernel * kernel
        part = buf.read_conv(1, **{**args, "first_channel": 1, "channels": 1,
                                   "first_out_row": 1, "out_rows": 2})
        lo, hi = args["out_w"], 3 * args["out_w"]
        assert part == [(f - k2, c - lo, v) for f, c, v in want
                        if k2 <= f < 2 * k2 and lo <= c < hi]


def test_directory_accounting():
    rng = np.random.default_rng(3)
    buf = make(bitmap_capacity=4096, value_capacity=4096, word_bits=8, count_bits=12,
               directory_capacity=10)
    x, mask = _conv_maps(rng, (1, 2, 5, 5), 0.3)
    d = buf.write(0, _stored_matrix(x), _stored_matrix(mask), directory=True)
    # 50 bits: 7 words of 8, 4 blocks of two, entries of 12 + 4 bits.
    assert d.directory_entries == 4 and buf.directory_used == 4
    assert buf.stored_bits(0) == 50 + 8 * int(mask.sum()) + 4 * 16
    plain = buf.write(1, _stored_matrix(x), _stored_matrix(mask))
    assert plain.directory_entries == 0 and buf.stored_bits(1) == 50 + 8 * int(mask.sum())
    buf.write(2, _stored_matrix(x), _stored_matrix(mask), directory=True)
    with pytest.raises(BufferFull, match="the directory does not fit"):
        buf.write(3, _stored_matrix(x), _stored_matrix(mask), directory=True)
    buf.free(2)
    assert buf.directory_used == 4


def test_conv_reads_are_refused():
    from golden.act_buffer import ReadRefused

    rng = np.random.default_rng(4)
    x, mask = _conv_maps(rng, (2, 2, 4, 4), 0.5)
    buf = make(bitmap_capacity=4096, value_capacity=4096)
    buf.write(0, _stored_matrix(x), _stored_matrix(mask), directory=True)
    buf.write(1, _stored_matrix(x), _stored_matrix(mask))
    args = _conv((2, 2, 4, 4), 3, 1, 1)
    with pytest.raises(ReadRefused, match="has no directory"):
        buf.read_conv(1, **args)
    with pytest.raises(ReadRefused, match="holds no tensor"):
        buf.read_conv(2, **args)
    for bad in ({"kernel": 0}, {"stride": 0}, {"stride": 3}, {"padding": 3}, {"channels": 0},
                {"out_rows": 0}, {"out_w": 5}, {"first_channel": 1},
                {"first_out_row": 1}):
        with pytest.raises(ReadRefused):
            buf.read_conv(0, **{**args, **bad})


def test_without_conv_read_directories_and_conv_reads_are_refused():
    from golden.act_buffer import ReadRefused

    rng = np.random.default_rng(5)
    x, mask = _conv_maps(rng, (2, 2, 4, 4), 0.5)
    buf = make(bitmap_capacity=4096, value_capacity=4096, conv_read=False)
    with pytest.raises(BufferFull, match="keeps no directories"):
        buf.write(0, _stored_matrix(x), _stored_matrix(mask), directory=True)
    assert buf.bitmap_used == 0 and not buf.table
    buf.write(0, _stored_matrix(x), _stored_matrix(mask))
    with pytest.raises(ReadRefused, match="no conv read"):
        buf.read_conv(0, **_conv((2, 2, 4, 4), 3, 1, 1))
    assert np.array_equal(buf.read_dense(0), np.where(_stored_matrix(mask), _stored_matrix(x), 0))
