"""The host's scaling for training in the accelerator's integer numerics.

The accelerator multiplies ``width``-bit integers exactly and returns exact sums
(:func:`golden.numerics.gemm`). A driver that trains real-valued networks on it scales every
tensor it sends into that range, per tensor, by a power of two (so that the host, or hardware,
only shifts), and scales the sums back:

* a tensor ``x`` becomes ``q = round(x * 2**e)`` with the largest ``e`` for which every ``q``
  fits in ``width`` signed bits; activations and weights round half up (as
  :func:`golden.numerics.requantize` does), gradients half up or stochastically;
* a product of two scaled tensors is the exact integer product times ``2**-(e_a + e_b)``.

:class:`Pow2Scaling` holds one choice of width and gradient rounding. Its :meth:`~Pow2Scaling.gemm`
re-derives each operand's scale from the values, so it gives the same result for operands that
its :meth:`~Pow2Scaling.activations`, :meth:`~Pow2Scaling.weights` and
:meth:`~Pow2Scaling.gradients` already rounded: the layers round a tensor once, select top-K on
the rounded values (as the selector does), and pass the rounded tensors to the products.
"""

import math

import numpy as np

from . import numerics

__all__ = ["NUMERICS", "GRAD_ROUNDINGS", "pow2_exponent", "quantize_pow2", "Pow2Scaling",
           "scaling_for"]

#: Numerics of ``python -m golden.train --numerics``: operand width, None for floating point.
NUMERICS = {"float": None, "int16": 16, "int8": 8}
GRAD_ROUNDINGS = ("nearest", "stochastic")


def _round_half_up(v):
    return np.floor(v + 0.5)


def pow2_exponent(x, width):
    """The largest ``e`` for which ``round_half_up(x * 2**e)`` fits in ``width`` signed bits
    (0 for an all-zero tensor)."""
    lo, hi = numerics.operand_range(width)
    x = np.asarray(x, dtype=np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0.0:
        return 0
    e = math.floor(math.log2(hi / peak)) + 1
    # log2 is close, not exact: step down to the first exponent whose rounding fits.
    while True:
        q = _round_half_up(x * 2.0 ** e)
        if q.min() >= lo and q.max() <= hi:
            return e
        e -= 1


def quantize_pow2(x, width, *, rounding="nearest", rng=None):
    """``(q, e)``: ``x`` as ``width``-bit integers ``q`` with ``x ~ q * 2**-e``.

    ``rounding="stochastic"`` rounds up with probability equal to the fraction dropped (an
    unbiased rounding; ``rng`` draws it), clamped to the range.
    """
    e = pow2_exponent(x, width)
    scaled = np.asarray(x, dtype=np.float64) * 2.0 ** e
    if rounding == "nearest":
        q = _round_half_up(scaled)
    elif rounding == "stochastic":
        q = np.floor(scaled + rng.random(scaled.shape))
    else:
        raise ValueError(f"rounding must be one of {', '.join(GRAD_ROUNDINGS)}, not {rounding!r}")
    lo, hi = numerics.operand_range(width)
    return np.clip(q, lo, hi).astype(np.int64), e


class Pow2Scaling:
    """Per-tensor power-of-two scaling into ``width``-bit integers.

    Parameters
    ----------
    width : int
        The accelerator's operand width.
    grad_rounding : {"nearest", "stochastic"}
        Rounding of output gradients; activations and weights round to nearest (half up).
    seed : int
        Seed of the stochastic rounding.
    """

    def __init__(self, width, *, grad_rounding="nearest", seed=0):
        numerics.operand_range(width)  # validates
        if grad_rounding not in GRAD_ROUNDINGS:
            raise ValueError(f"grad_rounding must be one of {', '.join(GRAD_ROUNDINGS)}, not "
                             f"{grad_rounding!r}")
        self.width, self.grad_rounding = width, grad_rounding
        self.rng = np.random.default_rng(seed)

    def _rounded(self, x, rounding):
        q, e = quantize_pow2(x, self.width, rounding=rounding, rng=self.rng)
        return q * 2.0 ** -e

    def activations(self, x):
        """``x`` rounded to its scaled integers (as real values)."""
        return self._rounded(x, "nearest")

    def weights(self, w):
        return self._rounded(w, "nearest")

    def gradients(self, g):
        return self._rounded(g, self.grad_rounding)

    def gemm(self, a, b):
        """``a @ b`` as the accelerator computes it: each operand scaled to integers, the exact
        integer product (:func:`golden.numerics.gemm`), scaled back."""
        qa, ea = quantize_pow2(a, self.width)
        qb, eb = quantize_pow2(b, self.width)
        acc = numerics.gemm(qa, qb, self.width)
        return np.asarray(acc, dtype=np.float64) * 2.0 ** -(ea + eb)


def scaling_for(name, *, grad_rounding="nearest", seed=0):
    """The :class:`Pow2Scaling` of ``--numerics name``, or None for floating point."""
    if name not in NUMERICS:
        raise ValueError(f"numerics must be one of {', '.join(NUMERICS)}, not {name!r}")
    width = NUMERICS[name]
    return None if width is None else Pow2Scaling(width, grad_rounding=grad_rounding, seed=seed)
