import itertools

import numpy as np
import pytest

from golden import numerics


@pytest.mark.parametrize("width", [2, 3, 4, 5, 8])
@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 100])
def test_acc_width_is_tight_and_safe(width, n):
    lo, hi = numerics.operand_range(width)
    acc = numerics.acc_width(width, n)
    largest, smallest = n * lo * lo, n * lo * hi
    assert largest <= (1 << (acc - 1)) - 1 and smallest >= -(1 << (acc - 1))
    assert largest > (1 << (acc - 2)) - 1  # one bit fewer would overflow


def test_acc_width_examples():
    assert numerics.acc_width(8, 1) == 16
    assert numerics.acc_width(8, 256) == 24
    assert numerics.acc_width(16, 65536) == 48


@pytest.mark.parametrize("width", [2, 3])
def test_gemm_exhaustive_pairs(width):
    lo, hi = numerics.operand_range(width)
    values = list(range(lo, hi + 1))
    for a, b in itertools.product(values, values):
        assert numerics.gemm(np.array([[a]]), np.array([[b]]), width)[0, 0] == a * b


def test_gemm_extremes_fit_the_accumulator():
    k = 300
    a = np.full((2, k), -128)
    b = np.full((k, 3), -128)
    out = numerics.gemm(a, b, 8)
    assert (out == k * 16384).all()
    assert int(out.max()) < 1 << (numerics.acc_width(8, k) - 1)


def test_gemm_wide_operands_use_exact_python_ints():
    a = np.array([[-(1 << 31)] * 2])
    out = numerics.gemm(a, a.T, 32)
    assert out.dtype == object and out[0, 0] == 2 * (1 << 62)


def test_gemm_rejects_out_of_range_and_non_integers():
    with pytest.raises(ValueError, match="must fit in 8 signed bits"):
        numerics.gemm(np.array([[128]]), np.array([[1]]), 8)
    with pytest.raises(ValueError, match="must hold integers"):
        numerics.gemm(np.array([[0.5]]), np.array([[1]]), 8)
    with pytest.raises(ValueError, match="gemm needs"):
        numerics.gemm(np.zeros((2, 3), int), np.zeros((2, 3), int), 8)


@pytest.mark.parametrize("acc, shift, expected", [
    (5, 1, 3), (-5, 1, -2), (4, 1, 2), (-6, 2, -1), (-7, 2, -2), (6, 2, 2), (7, 0, 7),
    (1000, 2, 127), (-1000, 2, -128), (-514, 2, -128), (-515, 2, -128), (510, 2, 127),
])
def test_requantize_rounds_half_up_and_saturates(acc, shift, expected):
    out, sat = numerics.requantize(np.array([acc]), shift, 8)
    assert out[0] == expected
    assert sat[0] == (not -128 <= (acc + ((1 << shift) >> 1)) >> shift <= 127)


def test_requantize_matches_float_reference():
    rng = np.random.default_rng(0)
    acc = rng.integers(-(1 << 20), 1 << 20, size=1000)
    out, _ = numerics.requantize(acc, 6, 16)
    assert np.array_equal(out, np.clip(np.floor(acc / 64 + 0.5), -32768, 32767))


def test_quantize_round_trip():
    q = numerics.quantize([0.5, -0.25, 10.0, -10.0, 0.1], 8, 4)
    assert q.tolist() == [8, -4, 127, -128, 2]
    assert numerics.dequantize(q, 4).tolist()[:2] == [0.5, -0.25]
