import numpy as np
import pytest

from golden import numerics
from golden.layers import SwatConv2d, SwatLinear
from golden.scaling import Pow2Scaling, pow2_exponent, quantize_pow2, scaling_for


@pytest.mark.parametrize("width", [2, 8, 16])
def test_the_exponent_is_the_largest_that_fits(width):
    rng = np.random.default_rng(width)
    lo, hi = numerics.operand_range(width)
    for scale in (1e-6, 0.3, 1.0, 7.0, 1e5):
        x = rng.standard_normal(50) * scale
        e = pow2_exponent(x, width)
        q = np.floor(x * 2.0 ** e + 0.5)
        assert lo <= q.min() and q.max() <= hi
        q_up = np.floor(x * 2.0 ** (e + 1) + 0.5)
        assert q_up.min() < lo or q_up.max() > hi


def test_edges_of_the_range():
    assert pow2_exponent(np.zeros(4), 8) == 0
    assert quantize_pow2(np.array([-1.0]), 8) == (np.array([-128]), 7)  # most negative value
    q, e = quantize_pow2(np.array([1.0, -1.0]), 8)
    assert e == 6 and q.tolist() == [64, -64]
    # Half rounds up, towards +infinity, as golden.numerics.requantize does.
    q, e = quantize_pow2(np.array([127.0, 0.5, -0.5, 1.5]), 8)
    assert e == 0 and q.tolist() == [127, 1, 0, 2]


def test_stochastic_rounding_is_unbiased_and_in_range():
    rng = np.random.default_rng(0)
    x = np.array([100.0, 0.25, -0.75, -128.0])
    draws = np.array([quantize_pow2(x, 8, rounding="stochastic", rng=rng)[0]
                      for _ in range(4000)])
    assert draws.min() >= -128 and draws.max() <= 127
    assert np.allclose(draws.mean(axis=0), x, atol=0.05)


def test_products_are_the_exact_integer_products_scaled_back():
    rng = np.random.default_rng(1)
    scaling = Pow2Scaling(8)
    a = scaling.activations(rng.standard_normal((5, 7)))
    b = scaling.weights(rng.standard_normal((7, 3)) * 0.01)
    qa, ea = quantize_pow2(a, 8)
    qb, eb = quantize_pow2(b, 8)
    assert np.array_equal(qa * 2.0 ** -ea, a)  # rounding once is rounding for good
    assert np.array_equal(scaling.gemm(a, b), numerics.gemm(qa, qb, 8) * 2.0 ** -(ea + eb))


def test_every_product_of_a_layer_is_an_integer_product_of_width_bits(monkeypatch):
    """In the integer numerics, the forward, input-gradient and weight-gradient products all
    go through golden.numerics.gemm with operands of the width (what the RTL is checked
    against), and top-K selects on the rounded values."""
    calls = []
    real = numerics.gemm

    def recording(a, b, width):
        calls.append((np.asarray(a), np.asarray(b), width))
        return real(a, b, width)

    monkeypatch.setattr(numerics, "gemm", recording)
    rng = np.random.default_rng(2)
    scaling = Pow2Scaling(8)
    conv = SwatConv2d(rng.standard_normal((4, 3, 3, 3)), np.zeros(4), stride=2, padding=1,
                      density=0.3, scaling=scaling)
    linear = SwatLinear(rng.standard_normal((2, 36)), density=0.5, scaling=scaling)
    y = conv.forward(rng.standard_normal((2, 3, 6, 6)))
    out = linear.forward(np.maximum(y, 0).reshape(2, -1))
    conv.backward(linear.backward(rng.standard_normal(out.shape)).reshape(y.shape))
    assert len(calls) == 6
    for a, b, width in calls:
        assert width == 8 and a.dtype == np.int64 and b.dtype == np.int64
        assert max(abs(a).max(), abs(b).max()) <= 128
    # The weights the products use are the rounded ones, and top-K chose among those.
    w = scaling.weights(conv.weight)
    assert np.array_equal(conv._w_sparse, np.where(conv.weight_mask(0, w), w, 0).reshape(4, -1))


def test_numerics_names():
    assert scaling_for("float") is None
    assert scaling_for("int16").width == 16 and scaling_for("int8").width == 8
    with pytest.raises(ValueError, match="numerics must be one of float, int16, int8, not 'x'"):
        scaling_for("x")
    with pytest.raises(ValueError, match="grad_rounding must be one of nearest, stochastic"):
        Pow2Scaling(8, grad_rounding="down")
