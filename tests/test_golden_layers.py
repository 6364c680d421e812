import numpy as np
import pytest

from golden import topk
from golden.layers import SGD, SwatConv2d, SwatLinear, col2im, im2col


def direct_conv(x, w, stride, padding):
    n, c, h, wd = x.shape
    cout, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (wd + 2 * padding - kw) // stride + 1
    y = np.zeros((n, cout, ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            y[:, :, i, j] = np.einsum("nckl,ockl->no", patch, w)
    return y


@pytest.mark.parametrize("stride, padding", [(1, 0), (1, 1), (2, 1), (2, 0)])
def test_im2col_conv_and_adjoint(stride, padding):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    layer = SwatConv2d(w, stride=stride, padding=padding)
    assert np.allclose(layer.forward(x), direct_conv(x, w, stride, padding))
    cols = im2col(x, 3, stride, padding)
    c = rng.standard_normal(cols.shape)
    assert np.isclose((cols * c).sum(), (x * col2im(c, x.shape, 3, stride, padding)).sum())


def numeric_grad(f, p, eps=1e-6):
    g = np.zeros_like(p)
    for idx in np.ndindex(p.shape):
        old = p[idx]
        p[idx] = old + eps
        hi = f()
        p[idx] = old - eps
        lo = f()
        p[idx] = old
        g[idx] = (hi - lo) / (2 * eps)
    return g


def _check_dense_gradients(layer, x, rng):
    y = layer.forward(x)
    r = rng.standard_normal(y.shape)
    dx = layer.backward(r)
    loss = lambda: float((layer.forward(x) * r).sum())  # noqa: E731
    assert np.allclose(layer.grad_weight, numeric_grad(loss, layer.weight), atol=1e-5)
    assert np.allclose(layer.grad_bias, numeric_grad(loss, layer.bias), atol=1e-5)
    assert np.allclose(dx, numeric_grad(loss, x), atol=1e-5)


def test_dense_linear_matches_finite_differences():
    rng = np.random.default_rng(1)
    layer = SwatLinear(rng.standard_normal((4, 5)), rng.standard_normal(4))
    _check_dense_gradients(layer, rng.standard_normal((3, 5)), rng)


@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 0)])
def test_dense_conv_matches_finite_differences(stride, padding):
    rng = np.random.default_rng(2)
    layer = SwatConv2d(rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3),
                       stride=stride, padding=padding)
    _check_dense_gradients(layer, rng.standard_normal((2, 2, 5, 5)), rng)


@pytest.mark.parametrize("density", [0.1, 0.3, 0.8])
def test_sparse_linear_is_masked_dense_products(density):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((6, 9))
    x = np.maximum(rng.standard_normal((5, 9)), 0)
    layer = SwatLinear(w, np.zeros(6), density=density)
    y = layer.forward(x)
    w_masked = w * topk.topk_mask(w, density)
    x_masked = x * topk.topk_mask(x, density)
    assert np.allclose(y, x @ w_masked.T)  # dense activations, sparse weights
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    assert np.allclose(dx, dy @ w_masked)  # dense output gradient, same sparse weights
    assert np.allclose(layer.grad_weight, dy.T @ x_masked)  # sparse saved activations
    assert np.allclose(layer.grad_bias, dy.sum(0))
    assert layer.macs.forward == 5 * int(topk.topk_mask(w, density).sum())
    assert layer.macs.weight_grad == 6 * int(topk.topk_mask(x, density).sum())
    assert layer.macs.dense_forward == 5 * 9 * 6


def test_sparse_conv_is_masked_dense_products():
    rng = np.random.default_rng(4)
    w = rng.standard_normal((4, 3, 3, 3))
    x = rng.standard_normal((2, 3, 6, 6))
    d = 0.25
    layer = SwatConv2d(w, stride=1, padding=1, density=d)
    y = layer.forward(x)
    w_masked = w * topk.topk_mask(w, d)
    x_masked = x * topk.topk_mask(x, d)
    assert np.allclose(y, direct_conv(x, w_masked, 1, 1))
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    # Reference gradients: the dense conv's gradients with the masked operands plugged in.
    ref = SwatConv2d(w_masked, stride=1, padding=1)
    ref.forward(x)
    assert np.allclose(dx, ref.backward(dy))
    ref_w = SwatConv2d(w, stride=1, padding=1)
    ref_w.forward(x_masked)
    ref_w.backward(dy)
    assert np.allclose(layer.grad_weight, ref_w.grad_weight)


def test_weight_period_reuses_threshold():
    w = np.array([[1.0, 2.0, 3.0, 4.0]])
    layer = SwatLinear(w.copy(), density=0.5, period=2)
    layer.forward(np.ones((1, 4)), iteration=0)
    layer.weight[:] = [[10.0, 20.0, 30.0, 1.0]]
    y = layer.forward(np.ones((1, 4)), iteration=1)  # threshold 3 reused
    assert y[0, 0] == 60.0
    y = layer.forward(np.ones((1, 4)), iteration=2)  # recomputed: 20
    assert y[0, 0] == 50.0


def test_structured_and_nm_selection():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((4, 4, 3, 3))
    layer = SwatConv2d(w, density=0.25, selection="structured")
    assert np.array_equal(layer.weight_mask(0), topk.structured_mask(w, 0.25))
    layer = SwatConv2d(w, selection="nm", nm=(2, 4))
    assert np.array_equal(layer.weight_mask(0).reshape(4, -1),
                          topk.nm_mask(w.reshape(4, -1), 2, 4))
    with pytest.raises(ValueError, match="selection must be"):
        SwatLinear(np.ones((2, 2)), selection="magic")


def test_sgd_updates_dense_weights_with_momentum_and_decay():
    w = np.array([[1.0, -2.0]])
    layer = SwatLinear(w.copy(), np.zeros(1), density=0.5)
    opt = SGD([layer], lr=0.1, momentum=0.9, weight_decay=0.01)
    layer.forward(np.array([[1.0, 1.0]]))
    layer.backward(np.array([[1.0]]))
    g = layer.grad_weight.copy()
    opt.step()
    expected = w - 0.1 * (g + 0.01 * w)
    assert np.allclose(layer.weight, expected)
    # The masked weight (1.0) still moved: the dense weights are updated.
    assert layer.weight[0, 0] != 1.0
