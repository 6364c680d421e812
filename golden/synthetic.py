"""Synthetic training tensors for benchmarks where no trained tensors exist, and their tiles.

The distributions are chosen to reproduce what makes SWAT's sparsity irregular, not to mimic
one trained network:

* weights: Gaussian, with a scale per output channel and per input channel, each drawn from
  a log-normal (sigma 0.5). Per-tensor top-K then keeps many more weights in some rows (rows of
  large-scale channels) than in others, as trained networks do;
* activations: post-ReLU, ``relu(N(mu_c, 1)) * s_c`` with a per-channel offset
  ``mu_c ~ N(0, 0.5)`` and scale ``s_c`` log-normal (sigma 0.5): about half are zero, and the
  zero fraction varies by channel;
* output gradients: Gaussian with a log-normal (sigma 0.5) scale per channel; dense.

Each is quantised to the operand width by mapping the 99.9th percentile of its magnitudes to the
largest value and saturating the rest (max-abs scaling would let a few outliers squeeze most
values into a handful of levels, where per-tensor top-K's ties keep far more than k).
"""

import math

import numpy as np

from . import topk
from .layers import im2col
from .numerics import operand_range

__all__ = ["quantize_max", "weights", "activations", "gradients", "gemm_tile"]


def quantize_max(x, width):
    """Scale ``x`` so the 99.9th percentile of its magnitudes is the largest ``width``-bit
    value, round, and saturate."""
    lo, hi = operand_range(width)
    peak = float(np.percentile(np.abs(x), 99.9)) or float(np.max(np.abs(x))) or 1.0
    return np.clip(np.rint(x * (hi / peak)), lo, hi).astype(np.int64)


def _scales(rng, n):
    return rng.lognormal(0.0, 0.5, size=n)


def weights(rng, cout, cin, kernel, width):
    w = rng.standard_normal((cout, cin, kernel, kernel))
    w *= _scales(rng, cout)[:, None, None, None] * _scales(rng, cin)[None, :, None, None]
    return quantize_max(w, width)


def activations(rng, batch, channels, size, width):
    mu = rng.normal(0.0, 0.5, size=channels)[None, :, None, None]
    x = np.maximum(rng.standard_normal((batch, channels, size, size)) + mu, 0.0)
    return quantize_max(x * _scales(rng, channels)[None, :, None, None], width)


def gradients(rng, rows, channels, width):
    return quantize_max(rng.standard_normal((rows, channels)) * _scales(rng, channels)[None, :],
                        width)


def gemm_tile(rng, layer, gemm, density, *, depth, columns, width):
    """One PE-array tile of ``layer``'s product ``gemm`` at SWAT ``density``.

    Returns ``(sparse, mask, dense)``: the sparse operand's rows (all of the layer's) over
    ``depth`` evenly spaced positions of the reduction, unsparsified; its SWAT top-K mask (taken over the whole
    tensor, as SWAT does); and the dense operand (``depth x columns``).
    """
    per_image = layer.out_size * layer.out_size
    need = max(depth, columns) if gemm != "forward" else columns
    batch = max(1, math.ceil(need / per_image))
    w = weights(rng, layer.cout, layer.cin, layer.kernel, width)
    w_mask = topk.topk_mask(w, density)
    w_matrix = w.reshape(layer.cout, -1)
    w_mask_matrix = w_mask.reshape(layer.cout, -1)
    if gemm == "forward":
        x = activations(rng, batch, layer.cin, layer.size, width)
        x_cols = im2col(x, layer.kernel, layer.stride, layer.padding)
        s, mask = w_matrix, w_mask_matrix
        d = x_cols.T
    elif gemm == "input_grad":
        dy = gradients(rng, batch * per_image, layer.cout, width)
        s, mask = w_matrix.T, w_mask_matrix.T
        d = dy.T
    else:
        x = activations(rng, batch, layer.cin, layer.size, width)
        x_mask = topk.topk_mask(x, density)
        x_cols = im2col(x, layer.kernel, layer.stride, layer.padding)
        mask_cols = im2col(x_mask.astype(np.int64), layer.kernel, layer.stride,
                           layer.padding) != 0
        dy = gradients(rng, batch * per_image, layer.cout, width)
        s, mask = x_cols.T, mask_cols.T
        d = dy
    # The reduction is sampled evenly, so the tile sees every channel (or batch position) the
    # per-tensor top-K ranked, not only the first few.
    take = np.unique(np.linspace(0, s.shape[1] - 1, min(depth, s.shape[1])).round().astype(int))
    n = min(columns, d.shape[1])
    return (np.ascontiguousarray(s[:, take]), np.ascontiguousarray(mask[:, take]),
            np.ascontiguousarray(d[take, :n]))
