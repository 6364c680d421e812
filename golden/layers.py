"""SWAT layers, forward and backward, with SWAT's dataflow.

Both layer kinds reduce to three matrix products over an activation matrix ``A`` (M x K) and a
weight matrix ``W`` (Cout x K):

* forward:         ``Y  = A @ W~.T``      (dense activations, sparse weights)
* input gradient:  ``dA = dY @ W~``       (dense output gradient, the same sparse weights)
* weight gradient: ``dW = dY.T @ A~``     (dense output gradient, sparse saved activations)

``W~`` is ``W`` after top-K (or a structured / N:M selection) and ``A~`` comes from the layer
input after top-K over the whole input tensor (the whole mini-batch). A linear layer's ``A`` is
its input; a convolution's is ``im2col`` of its input, and ``im2col`` of the sparsified input is
exactly the masked ``im2col`` of the input. The optimizer updates the dense ``W``, so a pruned
weight can grow back.

The products go through one ``gemm`` callable (float ``@`` by default) so that a bit-exact
integer model or the RTL itself can stand in for it.
"""

import numpy as np

from . import topk

__all__ = ["im2col", "col2im", "SwatLinear", "SwatConv2d", "SGD", "MacCounts"]


def _pair(v):
    return (v, v) if np.isscalar(v) else tuple(v)


def conv_out_size(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x, kernel, stride=1, padding=0):
    """Unfold an NCHW tensor into patches: shape (N*Ho*Wo, C*kh*kw), rows in (n, ho, wo) order."""
    kh, kw = _pair(kernel)
    n, c, h, w = x.shape
    ho, wo = conv_out_size(h, kh, stride, padding), conv_out_size(w, kw, stride, padding)
    if ho < 1 or wo < 1:
        raise ValueError(f"kernel {kh}x{kw} does not fit input {h}x{w} with padding {padding}")
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((n, ho, wo, c, kh, kw), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, :, i, j] = xp[:, :, i:i + stride * ho:stride,
                                        j:j + stride * wo:stride].transpose(0, 2, 3, 1)
    return cols.reshape(n * ho * wo, c * kh * kw)


def col2im(cols, x_shape, kernel, stride=1, padding=0):
    """Adjoint of :func:`im2col`: sum patch gradients back into an NCHW tensor."""
    kh, kw = _pair(kernel)
    n, c, h, w = x_shape
    ho, wo = conv_out_size(h, kh, stride, padding), conv_out_size(w, kw, stride, padding)
    cols = cols.reshape(n, ho, wo, c, kh, kw)
    xp = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xp[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride] += \
                cols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return xp[:, :, padding:padding + h, padding:padding + w]


class MacCounts:
    """Multiply-accumulates of one training step of a layer, sparse and dense.

    Sparse counts use the elements each product's sparse operand keeps after selection (what
    the hardware multiplies); dense counts use every element.
    """

    def __init__(self):
        self.forward = self.input_grad = self.weight_grad = 0
        self.dense_forward = self.dense_input_grad = self.dense_weight_grad = 0

    @property
    def sparse_total(self):
        return self.forward + self.input_grad + self.weight_grad

    @property
    def dense_total(self):
        return self.dense_forward + self.dense_input_grad + self.dense_weight_grad


class _SwatGemmLayer:
    """Shared SWAT dataflow of linear and conv layers over (M x K) and (Cout x K) matrices."""

    def __init__(self, weight, bias, *, density, period, selection, nm, gemm, needs_input_grad,
                 scaling=None):
        self.weight = np.array(weight, dtype=np.float64)
        self.bias = None if bias is None else np.array(bias, dtype=np.float64)
        topk.density_fraction(density)  # validates
        if selection not in ("topk", "structured", "nm"):
            raise ValueError(f"selection must be 'topk', 'structured' or 'nm', not {selection!r}")
        self.density = density
        self.selection = selection
        self.nm = nm
        # scaling (golden.scaling.Pow2Scaling) rounds every operand to the accelerator's
        # integers before selection and products; its gemm is the accelerator's product.
        self.scaling = scaling
        self.gemm = gemm if gemm is not None else (
            scaling.gemm if scaling is not None else np.matmul)
        self.needs_input_grad = needs_input_grad
        self.weight_period = topk.TopKPeriod(period)
        self.act_period = topk.TopKPeriod(period)
        self.grad_weight = self.grad_bias = None
        self.macs = MacCounts()
        self.saved_elements = self.saved_kept = 0

    # -- selection ---------------------------------------------------------------------------
    def product_weight(self):
        """The weights the products use: the master copy, rounded to the accelerator's
        integers under ``scaling``."""
        return self.weight if self.scaling is None else self.scaling.weights(self.weight)

    def weight_mask(self, iteration, weight=None):
        weight = self.product_weight() if weight is None else weight
        if self.selection == "structured":
            return topk.structured_mask(weight, self.density)
        if self.selection == "nm":
            n, m = self.nm
            return topk.nm_mask(weight.reshape(weight.shape[0], -1), n, m) \
                .reshape(weight.shape)
        mask, _ = self.weight_period.mask(weight, self.density, iteration)
        return mask

    def params(self):
        return [p for p in (self.weight, self.bias) if p is not None]

    def grads(self):
        return [g for g, p in ((self.grad_weight, self.weight), (self.grad_bias, self.bias))
                if p is not None]

    # -- the three products ------------------------------------------------------------------
    def _forward_matrix(self, a, a_sparse, a_kept, w_sparse_matrix, w_kept):
        # a_kept and w_kept count what the selection keeps (a kept zero still occupies a slot
        # in the compressed operand), so dense layers count as dense.
        self._a_sparse, self._a_kept = a_sparse, a_kept
        self._w_sparse, self._w_kept = w_sparse_matrix, w_kept
        m, k = a.shape
        cout = w_sparse_matrix.shape[0]
        self.macs.forward += m * w_kept
        self.macs.dense_forward += m * k * cout
        y = self.gemm(a, w_sparse_matrix.T)
        if self.bias is not None:
            y = y + self.bias
        return y

    def _backward_matrix(self, dy):
        if self.scaling is not None:
            dy = self.scaling.gradients(dy)
        m, cout = dy.shape
        k = self._w_sparse.shape[1]
        self.grad_weight = self.gemm(dy.T, self._a_sparse).reshape(self.weight.shape)
        self.macs.weight_grad += cout * self._a_kept
        self.macs.dense_weight_grad += m * k * cout
        if self.bias is not None:
            self.grad_bias = dy.sum(axis=0)
        if not self.needs_input_grad:
            return None
        self.macs.input_grad += m * self._w_kept
        self.macs.dense_input_grad += m * k * cout
        return self.gemm(dy, self._w_sparse)

    def _select_input(self, x, iteration):
        """``x`` (rounded under ``scaling``), its sparse copy and mask."""
        if self.scaling is not None:
            x = self.scaling.activations(x)
        mask, _ = self.act_period.mask(x, self.density, iteration)
        self.saved_elements += x.size
        self.saved_kept += int(np.count_nonzero(mask))
        return x, np.where(mask, x, 0.0), mask


class SwatLinear(_SwatGemmLayer):
    """A linear layer ``y = x @ W~.T + b`` trained with SWAT.

    Parameters
    ----------
    weight : array (out_features, in_features)
    bias : array (out_features,) or None
    density : number in [0, 1]
        Fraction of weights and of input activations top-K keeps (the same in a layer).
    period : int
        SWAT's top-K period: thresholds are recomputed every ``period`` iterations.
    selection : {"topk", "structured", "nm"}
        Weight selection; activations always use unstructured top-K.
    nm : (int, int)
        ``(n, m)`` for ``selection="nm"``.
    gemm : callable, optional
        Matrix product used for all three products.
    needs_input_grad : bool
        Whether ``backward`` computes the input gradient (the first layer needs none).
    """

    def __init__(self, weight, bias=None, *, density=1.0, period=1, selection="topk", nm=(2, 4),
                 gemm=None, needs_input_grad=True, scaling=None):
        super().__init__(weight, bias, density=density, period=period, selection=selection,
                         nm=nm, gemm=gemm, needs_input_grad=needs_input_grad, scaling=scaling)
        if self.weight.ndim != 2:
            raise ValueError(f"linear weight must be (out, in), not {self.weight.shape}")

    def forward(self, x, iteration=0):
        weight = self.product_weight()
        w_mask = self.weight_mask(iteration, weight)
        x, x_sparse, x_mask = self._select_input(np.asarray(x, dtype=np.float64), iteration)
        return self._forward_matrix(x, x_sparse, int(x_mask.sum()),
                                    np.where(w_mask, weight, 0.0), int(w_mask.sum()))

    def backward(self, dy):
        return self._backward_matrix(np.asarray(dy, dtype=np.float64))


class SwatConv2d(_SwatGemmLayer):
    """A 2-D convolution (NCHW, square stride and padding) trained with SWAT through im2col.

    Parameters are those of :class:`SwatLinear`, with ``weight`` of shape (Cout, Cin, kh, kw),
    plus ``stride`` and ``padding``.
    """

    def __init__(self, weight, bias=None, *, stride=1, padding=0, density=1.0, period=1,
                 selection="topk", nm=(2, 4), gemm=None, needs_input_grad=True, scaling=None):
        super().__init__(weight, bias, density=density, period=period, selection=selection,
                         nm=nm, gemm=gemm, needs_input_grad=needs_input_grad, scaling=scaling)
        if self.weight.ndim != 4:
            raise ValueError(f"conv weight must be (Cout, Cin, kh, kw), not {self.weight.shape}")
        self.stride, self.padding = int(stride), int(padding)

    @property
    def kernel(self):
        return self.weight.shape[2:]

    def forward(self, x, iteration=0):
        cout = self.weight.shape[0]
        weight = self.product_weight()
        w_mask = self.weight_mask(iteration, weight)
        w_sparse = np.where(w_mask, weight, 0.0).reshape(cout, -1)
        x, x_sparse, x_mask = self._select_input(np.asarray(x, dtype=np.float64), iteration)
        cols = im2col(x, self.kernel, self.stride, self.padding)
        cols_sparse = im2col(x_sparse, self.kernel, self.stride, self.padding)
        cols_kept = int(im2col(x_mask, self.kernel, self.stride, self.padding).sum())
        self._x_shape = x.shape
        ho = conv_out_size(x.shape[2], self.kernel[0], self.stride, self.padding)
        wo = conv_out_size(x.shape[3], self.kernel[1], self.stride, self.padding)
        y = self._forward_matrix(cols, cols_sparse, cols_kept, w_sparse, int(w_mask.sum()))
        return y.reshape(x.shape[0], ho, wo, cout).transpose(0, 3, 1, 2)

    def backward(self, dy):
        dy = np.asarray(dy, dtype=np.float64)
        dy_matrix = dy.transpose(0, 2, 3, 1).reshape(-1, dy.shape[1])
        dcols = self._backward_matrix(dy_matrix)
        if dcols is None:
            return None
        return col2im(dcols, self._x_shape, self.kernel, self.stride, self.padding)


class SGD:
    """SGD with momentum and weight decay, as SWAT trains (PyTorch's update rule).

    ``g = grad + weight_decay * p``; ``v = momentum * v + g``; ``p -= lr * v``. It updates the
    dense parameters.
    """

    def __init__(self, layers, *, lr, momentum=0.9, weight_decay=5e-4):
        self.layers = list(layers)
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.velocity = [np.zeros_like(p) for layer in self.layers for p in layer.params()]

    def step(self):
        params = [p for layer in self.layers for p in layer.params()]
        grads = [g for layer in self.layers for g in layer.grads()]
        for p, g, v in zip(params, grads, self.velocity):
            g = g + self.weight_decay * p
            v *= self.momentum
            v += g
            p -= self.lr * v
