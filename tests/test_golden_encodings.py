import numpy as np
import pytest

from golden import encodings, topk


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("density", [0.0, 0.1, 0.5, 1.0])
def test_round_trip_and_sizes(seed, density):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(7, 13))
    mask = topk.topk_mask(x, density)
    nnz = int(mask.sum())
    kept = np.where(mask, x, 0)
    bm = encodings.encode_bitmap(x, mask, 8)
    iv = encodings.encode_index_value(x, mask, 8)
    rows = encodings.encode_rows(x, mask, 8)
    for enc in (bm, iv, rows):
        assert np.array_equal(enc.decode(), kept)
    assert bm.bits == 91 + 8 * nnz
    assert iv.bits == nnz * (7 + 8)  # 91 elements need 7 index bits
    assert rows.bits == 7 * 4 + nnz * (4 + 8)  # 13 columns: 4-bit index, 4-bit length
    assert rows.lengths.tolist() == mask.sum(axis=1).tolist()


def test_kept_zero_is_stored():
    x = np.array([0, 0, 5, 0])
    mask = topk.topk_mask(x, 1.0)
    enc = encodings.encode_bitmap(x, mask, 8)
    assert enc.values.tolist() == [0, 0, 5, 0]


def test_row_access():
    x = np.array([[0, 3, 0], [1, 0, 2]])
    rows = encodings.encode_rows(x, x != 0, 4)
    cols, vals = rows.row(1)
    assert cols.tolist() == [0, 2] and vals.tolist() == [1, 2]


def test_index_width_edges():
    assert encodings.index_width(1) == 1
    assert encodings.index_width(2) == 1
    assert encodings.index_width(3) == 2
    assert encodings.index_width(256) == 8
    assert encodings.length_width(256) == 9


def test_smallest_encoding_and_entropy_bound():
    assert encodings.smallest_encoding(100, 100, 8)[0] == "dense"
    assert encodings.smallest_encoding(1000, 10, 8)[0] == "index_value"
    assert encodings.smallest_encoding(1000, 300, 8)[0] == "bitmap"
    for nnz in (0, 1, 10, 500, 1000):
        assert encodings.mask_entropy_bits(1000, nnz) <= 1000 + 1e-9


def test_mask_shape_mismatch_raises():
    with pytest.raises(ValueError, match="mask shape"):
        encodings.encode_bitmap(np.zeros(4, int), np.zeros(3, bool), 8)
