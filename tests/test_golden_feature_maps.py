import numpy as np
import pytest

from golden.feature_maps import (FeatureMapFormat, FeatureMaps, flipped_weight_matrix,
                                 input_grad_windows, read_row, row_segments)
from golden.layers import col2im, conv_out_size, im2col

# (N, C, H, W, kernel, stride, padding): ResNet kernels, strides and paddings, odd sizes, a map
# smaller than the kernel, one channel, one pixel.
SHAPES = [
    (2, 3, 5, 5, 3, 1, 1), (2, 2, 7, 6, 3, 2, 1), (1, 2, 9, 9, 7, 2, 3), (3, 4, 4, 4, 1, 1, 0),
    (2, 3, 5, 7, 1, 2, 0), (1, 1, 2, 2, 3, 1, 1), (1, 1, 1, 1, 3, 1, 1), (2, 1, 6, 5, 3, 2, 0),
    (1, 2, 3, 3, 7, 1, 3), (2, 2, 8, 8, 3, 1, 0),
]


def _maps(rng, shape, density, width=8):
    x = rng.integers(-(1 << width - 1), 1 << width - 1, size=shape)
    x[rng.random(shape) < 0.2] = 0  # kept zeros are stored too
    x.flat[0] = -(1 << width - 1)  # the most negative value
    mask = rng.random(shape) < density
    return x, mask


def _expected_row(x, mask, feature, kernel, stride, padding):
    c, ky, kx = feature
    column = (c * kernel + ky) * kernel + kx
    values = im2col(np.where(mask, x, 0), kernel, stride, padding)[:, column]
    kept = im2col(mask.astype(np.int64), kernel, stride, padding)[:, column]
    return [(int(m), int(values[m])) for m in np.nonzero(kept)[0]]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("density", [0.0, 0.3, 1.0])
def test_rows_read_through_the_directory_equal_im2col(shape, density):
    rng = np.random.default_rng(hash((shape, density)) % 2**32)
    n, c, h, w, kernel, stride, padding = shape
    x, mask = _maps(rng, (n, c, h, w), density)
    maps = FeatureMaps(x, mask, FeatureMapFormat(width=8, word_bits=8, block_words=2))
    for feature in np.ndindex(c, kernel, kernel):
        assert read_row(maps, feature, kernel, stride, padding) == \
            _expected_row(x, mask, feature, kernel, stride, padding), feature


def test_one_kept_element():
    x = np.zeros((2, 2, 5, 5), dtype=np.int64)
    mask = np.zeros(x.shape, dtype=bool)
    x[1, 1, 4, 0], mask[1, 1, 4, 0] = -128, True
    maps = FeatureMaps(x, mask, FeatureMapFormat(width=8))
    rows = {f: read_row(maps, f, 3, 1, 1) for f in np.ndindex(2, 3, 3)}
    # The element reaches the output pixels whose window covers it: one per kernel offset
    # that keeps it inside the 5x5 output.
    assert sum(len(r) for r in rows.values()) == 4
    assert all(v == -128 for r in rows.values() for _, v in r)


def test_directory_gives_every_kept_value_in_one_step():
    rng = np.random.default_rng(7)
    x, mask = _maps(rng, (3, 5, 7, 9), 0.4)
    maps = FeatureMaps(x, mask, FeatureMapFormat(width=8, word_bits=4, block_words=3))
    bits = np.nonzero(maps.bits)[0]
    assert [maps.value_index(int(b)) for b in bits] == list(range(bits.size))
    assert maps.directory.size == -(-maps.bits.size // 12)


def test_segments_skip_the_padding_and_hold_no_duplicate_columns():
    shape, kernel, stride, padding = (2, 1, 7, 7), 3, 2, 1
    out = conv_out_size(7, kernel, stride, padding)
    for feature in np.ndindex(1, kernel, kernel):
        columns = [s.column + i for s in row_segments(shape, feature, kernel, stride, padding)
                   for i in range(s.count)]
        assert len(columns) == len(set(columns))
        assert all(0 <= col < 2 * out * out for col in columns)
    # The centre tap of a stride-1 "same" conv reads every element once.
    segs = row_segments((2, 1, 7, 7), (0, 1, 1), 3, 1, 1)
    assert sum(s.count for s in segs) == 2 * 49 and len(segs) == 2 * 7


def test_stored_bits_at_swat_densities():
    # The hardware's entry: an 18-bit count and the block's first word's 6-bit popcount (the
    # popcount makes an entry 24 bits, so the ratios are above the count-only 0.27 and 0.37).
    fmt = FeatureMapFormat(width=8, word_bits=32, block_words=2, count_bits=18)
    assert fmt.entry_bits == 24 and fmt == FeatureMapFormat(width=8)
    n = 64 * 32 * 32
    assert fmt.stored_bits(n, 0) == n + (n // 64) * 24
    assert fmt.stored_bits(n, int(0.1 * n)) / (8 * n) < 0.272
    assert fmt.stored_bits(n, int(0.2 * n)) / (8 * n) < 0.372


def test_counts_that_do_not_fit_are_refused():
    x = np.ones((1, 1, 4, 4), dtype=np.int64)
    with pytest.raises(ValueError, match="16 kept values do not fit 4-bit counts"):
        FeatureMaps(x, x > 0, FeatureMapFormat(width=8, count_bits=4))


@pytest.mark.parametrize("name", ["width", "word_bits", "block_words", "count_bits"])
def test_format_is_validated(name):
    with pytest.raises(ValueError, match=f"{name} must be a positive integer, not 0"):
        FeatureMapFormat(**{"width": 8, name: 0})


@pytest.mark.parametrize("shape", [s for s in SHAPES if s[6] <= s[4] - 1])
def test_input_gradient_windows_give_the_input_gradient(shape):
    rng = np.random.default_rng(sum(shape))
    n, cin, h, w, kernel, stride, padding = shape
    cout = 3
    weight = rng.integers(-8, 8, size=(cout, cin, kernel, kernel))
    out_h = conv_out_size(h, kernel, stride, padding)
    out_w = conv_out_size(w, kernel, stride, padding)
    dy = rng.integers(-8, 8, size=(n, cout, out_h, out_w))
    dy_matrix = dy.transpose(0, 2, 3, 1).reshape(-1, cout)
    expected = col2im(dy_matrix @ weight.reshape(cout, -1), (n, cin, h, w), kernel, stride,
                      padding)
    windows = input_grad_windows(dy, (n, cin, h, w), kernel, stride, padding)
    got = (windows @ flipped_weight_matrix(weight).T).reshape(n, h, w, cin).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(got, expected)


def test_input_gradient_windows_refuse_what_they_cannot_build():
    dy = np.zeros((1, 1, 3, 3))
    with pytest.raises(ValueError, match="padding 1 is larger than kernel - 1"):
        input_grad_windows(dy, (1, 1, 3, 3), 1, 1, 1)
    with pytest.raises(ValueError, match="is not the output of a 4x4 map"):
        input_grad_windows(dy, (1, 1, 4, 4), 3, 1, 1)
