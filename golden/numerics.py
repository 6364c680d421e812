"""Hardware numerics, bit-exact: the one module every block's model uses.

Operands are signed two's complement integers of ``width`` bits, optionally read as fixed point
with ``frac_bits`` fractional bits. Products and sums are exact: the accumulator width is derived
from the operand width and the longest reduction so that overflow cannot happen. Results leave the
accumulator through :func:`requantize`: an arithmetic right shift that rounds half up (towards
+infinity), then saturation to the output width. That is what the hardware does: add
``2**(shift-1)``, shift, clamp.
"""

import numpy as np

__all__ = [
    "operand_range", "magnitude_width", "product_width", "acc_width", "check_operands",
    "gemm", "requantize", "quantize", "dequantize",
]


def _check_width(width):
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ValueError(f"width must be a positive integer, not {width!r}")
    return int(width)


def operand_range(width):
    """Return ``(lo, hi)``, the smallest and largest signed ``width``-bit values."""
    width = _check_width(width)
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


def magnitude_width(width):
    """Bits of an unsigned magnitude ``|x|`` of a signed ``width``-bit operand.

    ``|-2**(width-1)| = 2**(width-1)`` needs ``width`` bits, one more than the positive range.
    """
    return _check_width(width)


def product_width(width):
    """Bits of the exact signed product of two ``width``-bit operands.

    The largest product is ``(-2**(width-1))**2 = 2**(2*width-2)``, which needs ``2*width`` bits
    signed.
    """
    return 2 * _check_width(width)


def acc_width(width, reduction_len):
    """Signed accumulator width that holds any sum of ``reduction_len`` products exactly.

    The largest magnitude is ``reduction_len * 2**(2*width-2)`` (every product is
    ``(-2**(width-1))**2``); the most negative sum, ``reduction_len * -2**(width-1) *
    (2**(width-1)-1)``, is smaller in magnitude. One sign bit is added to the bits of the largest
    positive sum.
    """
    width = _check_width(width)
    if isinstance(reduction_len, bool) or not isinstance(reduction_len, (int, np.integer)) \
            or reduction_len < 1:
        raise ValueError(f"reduction_len must be a positive integer, not {reduction_len!r}")
    largest = int(reduction_len) << (2 * width - 2)
    return 1 + largest.bit_length()


def check_operands(x, width, name="operand"):
    """Return ``x`` as an ``int64`` array, or raise if any value is not a ``width``-bit integer.

    Raises
    ------
    ValueError
        If ``x`` holds non-integers or values outside the signed ``width``-bit range.
    """
    lo, hi = operand_range(width)
    arr = np.asarray(x)
    if arr.dtype.kind not in "iub":
        if arr.dtype.kind != "f" or not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name} must hold integers")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < lo or arr.max() > hi):
        raise ValueError(
            f"{name} must fit in {width} signed bits ({lo} to {hi}), "
            f"found {int(arr.min())} to {int(arr.max())}")
    return arr


def gemm(a, b, width):
    """Exact integer product ``a @ b`` of ``width``-bit operands, as the PE array computes it.

    Parameters
    ----------
    a : array of shape (M, K)
    b : array of shape (K, N)
    width : int
        Operand width; both operands must fit in it.

    Returns
    -------
    numpy.ndarray
        ``int64`` (or Python-int ``object`` array when the accumulator exceeds 63 bits) of shape
        (M, N). Every value fits in ``acc_width(width, K)`` bits.
    """
    a = check_operands(a, width, "a")
    b = check_operands(b, width, "b")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"gemm needs (M, K) @ (K, N) operands, got {a.shape} @ {b.shape}")
    k = a.shape[1]
    if k == 0:
        return np.zeros((a.shape[0], b.shape[1]), dtype=np.int64)
    if acc_width(width, k) <= 63:
        # No intermediate sum can exceed the accumulator bound, so int64 is exact.
        return a @ b
    return a.astype(object) @ b.astype(object)


def requantize(acc, shift, out_width):
    """Convert accumulator values to ``out_width``-bit outputs, as the hardware does.

    ``y = clamp((acc + 2**(shift-1)) >> shift)`` for ``shift > 0`` (round half up), ``y =
    clamp(acc)`` for ``shift == 0``; ``>>`` is an arithmetic (flooring) shift.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The ``int64`` outputs and a boolean mask of the values that saturated.
    """
    if isinstance(shift, bool) or not isinstance(shift, (int, np.integer)) or shift < 0:
        raise ValueError(f"shift must be a non-negative integer, not {shift!r}")
    lo, hi = operand_range(out_width)
    acc = np.asarray(acc)
    if acc.dtype == object:
        rounded = np.vectorize(lambda v: (int(v) + ((1 << shift) >> 1)) >> shift,
                               otypes=[object])(acc) if acc.size else acc
    else:
        acc = acc.astype(np.int64)
        rounded = (acc + ((1 << shift) >> 1)) >> shift if shift else acc
    saturated = (rounded < lo) | (rounded > hi)
    out = np.where(rounded < lo, lo, np.where(rounded > hi, hi, rounded)).astype(np.int64)
    return out, np.asarray(saturated, dtype=bool)


def quantize(x, width, frac_bits):
    """Round real values to ``width``-bit fixed point with ``frac_bits`` fractional bits.

    Rounds to nearest (ties to even) and saturates; this is the host's conversion, not the
    hardware's.
    """
    lo, hi = operand_range(width)
    scaled = np.rint(np.asarray(x, dtype=np.float64) * float(1 << frac_bits))
    return np.clip(scaled, lo, hi).astype(np.int64)


def dequantize(q, frac_bits):
    """Real values of fixed-point integers with ``frac_bits`` fractional bits."""
    return np.asarray(q, dtype=np.float64) / float(1 << frac_bits)
