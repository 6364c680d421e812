"""Top-K magnitude selection exactly as SWAT's reference code does it, per whole tensor.

* ``k = ceil(density * n)``, computed exactly: the density is read as the decimal it is written
  as, so 0.3 of 10 elements is 3 (SWAT's float code gives 4).
* ``threshold`` is the k-th largest ``|x|``; the mask keeps ``|x| >= threshold``, so ties are
  kept and more than k elements may survive.
* ``k == 0`` keeps nothing: the threshold is then ``math.inf``, above every magnitude (the
  hardware reports this as a separate "keep none" flag). ``k == n`` keeps everything.

Magnitudes of integer tensors are computed in ``int64`` so that the most negative value's
magnitude ``2**(width-1)`` is exact.
"""

import math
from fractions import Fraction

import numpy as np

__all__ = [
    "density_fraction", "topk_k", "magnitudes", "topk_threshold", "kth_largest_magnitude", "apply_threshold", "RADIX_BITS", "threshold_passes", "sent_mask", "topk_mask",
    "TopKPeriod", "nm_mask", "structured_norms", "structured_threshold", "structured_mask",
]


def density_fraction(density):
    """Return ``density`` as an exact :class:`~fractions.Fraction` in [0, 1].

    A float is read as the shortest decimal that prints as it (``0.1`` is 1/10, not the binary
    value slightly above it), which is what a user who typed it meant.

    Raises
    ------
    ValueError
        If ``density`` is not a number in [0, 1].
    """
    if isinstance(density, bool):
        raise ValueError(f"density must be a number in [0, 1], not {density!r}")
    try:
        if isinstance(density, (float, np.floating)):
            if not math.isfinite(density):
                raise ValueError
            value = Fraction(repr(float(density)))
        else:
            value = Fraction(density)
    except (TypeError, ValueError):
        raise ValueError(f"density must be a number in [0, 1], not {density!r}") from None
    if not 0 <= value <= 1:
        raise ValueError(f"density must be a number in [0, 1], not {density!r}")
    return value


def topk_k(n, density):
    """Number of elements to keep: ``ceil(density * n)``, exactly."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, not {n!r}")
    return math.ceil(density_fraction(density) * int(n))


def magnitudes(x):
    """``|x|`` as ``int64`` for integer tensors and ``float64`` otherwise."""
    x = np.asarray(x)
    if x.dtype.kind in "iub":
        return np.abs(x.astype(np.int64))
    return np.abs(x.astype(np.float64))


def _kth_largest(values, k):
    flat = values.reshape(-1)
    return flat[np.argpartition(flat, flat.size - k)[flat.size - k]]


def topk_threshold(x, density):
    """The magnitude threshold of SWAT's top-K over the whole tensor ``x``.

    Returns
    -------
    int or float
        The k-th largest ``|x|`` (a Python ``int`` for integer tensors), or ``math.inf`` when
        ``k == 0``.
    """
    return kth_largest_magnitude(x, topk_k(np.asarray(x).size, density))


def kth_largest_magnitude(x, k):
    """The k-th largest ``|x|`` (``math.inf`` for ``k == 0``): the threshold for a given k.

    Raises
    ------
    ValueError
        If ``k`` is not in ``0..x.size``.
    """
    mags = magnitudes(x)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= mags.size:
        raise ValueError(f"k must be an integer from 0 to {mags.size}, not {k!r}")
    if k == 0:
        return math.inf
    return _kth_largest(mags, int(k)).item()


def apply_threshold(x, threshold):
    """Mask of the elements of ``x`` whose magnitude is at least ``threshold``.

    This is how a stored threshold is reused between recomputations (SWAT's top-K period).
    """
    return magnitudes(x) >= threshold


#: Key bits the hardware ranks per threshold pass (a histogram of ``2**RADIX_BITS`` bins).
RADIX_BITS = 8


def threshold_passes(width, radix_bits=RADIX_BITS):
    """Times a tensor of ``width``-bit operands is streamed to find its exact top-K threshold:
    one radix-select pass per ``radix_bits`` of magnitude (the passes over the key's zero top
    digits are skipped)."""
    return -(-int(width) // radix_bits)


def sent_mask(x, mask):
    """The elements of ``mask`` that the hardware stores and multiplies: the kept ones that are
    not zero.

    A kept zero (every zero ties with a threshold of 0, common after a ReLU) adds nothing to
    any product, so the selector sends neither its bitmap bit nor its value; SWAT's count of
    kept elements (``mask.sum()``) is reported beside it.
    """
    return np.asarray(mask, bool) & (np.asarray(x) != 0)


def topk_mask(x, density):
    """Boolean mask, the shape of ``x``, of the elements SWAT's top-K keeps."""
    return apply_threshold(x, topk_threshold(x, density))


class TopKPeriod:
    """SWAT's top-K period: recompute the threshold every ``period`` iterations, reuse between.

    On iteration ``b`` (counted within the epoch) with ``b % period == 0`` the threshold is
    recomputed and stored; on other iterations the stored one is applied.

    Parameters
    ----------
    period : int
        Iterations between recomputations, at least 1.
    """

    def __init__(self, period):
        if isinstance(period, bool) or not isinstance(period, int) or period < 1:
            raise ValueError(f"period must be a positive integer, not {period!r}")
        self.period = period
        self.threshold = None

    def mask(self, x, density, iteration):
        """Mask for ``x`` on ``iteration``; also returns whether the threshold was recomputed."""
        recompute = self.threshold is None or iteration % self.period == 0
        if recompute:
            self.threshold = topk_threshold(x, density)
        return apply_threshold(x, self.threshold), recompute


def nm_mask(x, n, m):
    """N:M mask: keep the ``n`` largest magnitudes in every group of ``m`` consecutive elements.

    Groups run along the last axis. Ties go to the lower index. A last group shorter than ``m``
    (when the axis is not a multiple of ``m``) keeps its ``min(n, len)`` largest.
    """
    for name, value in (("n", n), ("m", m)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be an integer, not {value!r}")
    if not 1 <= m or not 0 <= n <= m:
        raise ValueError(f"N:M needs 0 <= n <= m and m >= 1, not {n}:{m}")
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError("nm_mask needs at least one axis")
    mags = magnitudes(x)
    length = mags.shape[-1]
    groups = -(-length // m)
    padded = np.full(mags.shape[:-1] + (groups * m,), -1, dtype=mags.dtype)
    padded[..., :length] = mags  # padding (-1) is below every magnitude, so it is never kept
    grouped = padded.reshape(mags.shape[:-1] + (groups, m))
    # A stable sort on the negated magnitude puts ties in index order, lower index first.
    order = np.argsort(-grouped, axis=-1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(m), axis=-1)
    keep = (ranks < n) & (grouped >= 0)
    return keep.reshape(mags.shape[:-1] + (groups * m,))[..., :length]


def structured_norms(w):
    """L1 norm of every (out-channel, in-channel) kernel slice of a conv weight.

    ``w`` has shape (Cout, Cin, kh, kw); a linear weight (Cout, Cin) has one-element slices.
    """
    w = np.asarray(w)
    if w.ndim not in (2, 4):
        raise ValueError(f"structured selection needs a (Cout, Cin[, kh, kw]) weight, not {w.shape}")
    mags = magnitudes(w)
    return mags if w.ndim == 2 else mags.sum(axis=(2, 3))


def structured_threshold(w, density):
    """Norm threshold of structured SWAT: top-K over the slice norms, ``k = ceil(d*Cout*Cin)``."""
    return topk_threshold(structured_norms(w), density)


def structured_mask(w, density):
    """Mask, the shape of ``w``, keeping every kernel slice whose L1 norm reaches the threshold.

    The ranking is global within the layer; ties are kept as in :func:`topk_mask`.
    """
    w = np.asarray(w)
    keep = structured_norms(w) >= structured_threshold(w, density)
    return np.broadcast_to(keep.reshape(keep.shape + (1,) * (w.ndim - 2)), w.shape).copy()
