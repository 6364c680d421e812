import math
from fractions import Fraction

import numpy as np
import pytest

from golden import topk


def brute_threshold(x, k):
    mags = sorted((abs(int(v)) if np.asarray(x).dtype.kind in "iu" else abs(float(v))
                   for v in np.asarray(x).reshape(-1)), reverse=True)
    return math.inf if k == 0 else mags[k - 1]


@pytest.mark.parametrize("n, density, k", [
    (10, 0.3, 3), (10, 0.1, 1), (10, 0.7, 7), (10, 0.0, 0), (10, 1.0, 10), (10, 1, 10),
    (3, Fraction(1, 3), 1), (7, 0.5, 4), (1, 0.01, 1), (0, 0.5, 0), (1000, 0.001, 1),
    (100, "0.29", 29), (2**24, 0.9, 15099495),
])
def test_k_is_exact_ceil(n, density, k):
    assert topk.topk_k(n, density) == k


@pytest.mark.parametrize("bad", [-0.1, 1.1, float("nan"), float("inf"), "abc", True, None])
def test_bad_density_raises(bad):
    with pytest.raises(ValueError, match="density must be a number in \\[0, 1\\]"):
        topk.topk_k(10, bad)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("density", [0.0, 0.05, 0.2, 0.5, 0.9, 1.0])
def test_threshold_matches_brute_force_with_ties(seed, density):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    x = rng.integers(-8, 8, size=n)  # few distinct values: many ties
    k = topk.topk_k(n, density)
    thr = topk.topk_threshold(x, density)
    assert thr == brute_threshold(x, k)
    mask = topk.topk_mask(x, density)
    assert mask.sum() >= k
    assert np.array_equal(mask, np.abs(x) >= thr)
    if 0 < k < n and not mask.all():
        # Everything dropped is strictly smaller than everything kept.
        assert np.abs(x[~mask]).max() < np.abs(x[mask]).min()


def test_ties_are_all_kept():
    x = np.array([3, -3, 3, 1])
    assert topk.topk_threshold(x, 0.25) == 3
    assert topk.topk_mask(x, 0.25).tolist() == [True, True, True, False]


def test_most_negative_value_magnitude_is_exact():
    x = np.array([-128, 127, 5, -1], dtype=np.int8)
    assert topk.topk_threshold(x, 0.25) == 128
    assert topk.topk_mask(x, 0.25).tolist() == [True, False, False, False]
    assert topk.topk_threshold(x, 0.5) == 127


def test_all_zero_and_all_equal():
    z = np.zeros(10, dtype=np.int64)
    assert topk.topk_threshold(z, 0.3) == 0
    assert topk.topk_mask(z, 0.3).all()  # all tie at zero
    e = np.full(9, -7)
    assert topk.topk_mask(e, 0.1).all()


def test_density_zero_keeps_nothing_and_one_keeps_everything():
    x = np.arange(-5, 5)
    assert topk.topk_threshold(x, 0) == math.inf
    assert not topk.topk_mask(x, 0).any()
    assert topk.topk_mask(x, 1).all()
    assert topk.topk_threshold(x, 1) == 0


def test_float_tensor_and_shape_preserved():
    x = np.random.default_rng(1).standard_normal((4, 3, 5))
    mask = topk.topk_mask(x, 0.2)
    assert mask.shape == x.shape and mask.sum() == 12
    assert isinstance(topk.topk_threshold(x, 0.2), float)


def test_integer_threshold_is_python_int():
    assert type(topk.topk_threshold(np.array([1, -2, 3], dtype=np.int16), 0.5)) is int


def test_period_reuses_threshold_between_recomputes():
    period = topk.TopKPeriod(3)
    a = np.array([1, 2, 3, 4])
    mask, fresh = period.mask(a, 0.5, 0)
    assert fresh and mask.tolist() == [False, False, True, True]
    # A new tensor on a reuse iteration is cut at the stored threshold (3), not its own.
    b = np.array([10, 20, 30, 1])
    mask, fresh = period.mask(b, 0.5, 1)
    assert not fresh and mask.tolist() == [True, True, True, False]
    mask, fresh = period.mask(b, 0.5, 3)
    assert fresh and mask.tolist() == [False, True, True, False]
    with pytest.raises(ValueError):
        topk.TopKPeriod(0)


def brute_nm(row, n, m):
    keep = np.zeros(len(row), dtype=bool)
    for start in range(0, len(row), m):
        group = [(-abs(int(v)), start + i) for i, v in enumerate(row[start:start + m])]
        for _, idx in sorted(group)[:n]:
            keep[idx] = True
    return keep


@pytest.mark.parametrize("n, m", [(2, 4), (1, 4), (0, 4), (4, 4), (1, 2), (3, 8)])
@pytest.mark.parametrize("seed", range(5))
def test_nm_mask_matches_brute_force(n, m, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-4, 4, size=(3, 4 * m + 3))  # ties, and a short last group
    mask = topk.nm_mask(x, n, m)
    for r in range(x.shape[0]):
        assert mask[r].tolist() == brute_nm(x[r], n, m).tolist()


def test_nm_ties_go_to_lower_index():
    assert topk.nm_mask(np.array([5, 5, 5, 5, -128, 1, 128, 0]), 2, 4).tolist() == \
        [True, True, False, False, True, False, True, False]


def test_nm_rejects_bad_ratio():
    with pytest.raises(ValueError):
        topk.nm_mask(np.zeros(4), 5, 4)


def test_structured_mask_ranks_slices_by_l1_norm():
    rng = np.random.default_rng(3)
    w = rng.integers(-5, 5, size=(6, 4, 3, 3))
    norms = np.abs(w).sum(axis=(2, 3))
    k = topk.topk_k(24, 0.25)
    thr = sorted(norms.reshape(-1), reverse=True)[k - 1]
    mask = topk.structured_mask(w, 0.25)
    assert mask.shape == w.shape
    for o in range(6):
        for i in range(4):
            assert mask[o, i].all() == (norms[o, i] >= thr)
            assert mask[o, i].all() or not mask[o, i].any()
    assert topk.structured_threshold(w, 0.25) == thr
