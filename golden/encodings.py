"""Compressed encodings of sparse tensors that the hardware uses, with their exact sizes in bits.

Three encodings, all of a tensor read in row-major (C) order:

* **bitmap**: one bit per element (1 = kept), then the kept values packed in order.
  ``n + nnz * width`` bits.
* **index-value**: one ``(index, value)`` pair per kept element, the flat index in
  ``index_width(n)`` bits. ``nnz * (index_width(n) + width)`` bits.
* **rows**: a matrix as one list of ``(column, value)`` pairs per row, each row preceded by its
  length. ``rows * length_width(cols) + nnz * (index_width(cols) + width)`` bits. This is the form
  in which the PE array consumes a sparse operand, one row per PE row.

"Kept" follows a mask, not the value: top-K may keep an element whose value is zero (when the
threshold is 0) and the encodings store it, so counts agree with the mask.
"""

import dataclasses
import math

import numpy as np

from .numerics import check_operands

__all__ = [
    "index_width", "length_width", "dense_bits", "smallest_encoding", "bitmap_bits", "index_value_bits", "rows_bits",
    "mask_entropy_bits", "Bitmap", "IndexValue", "Rows",
    "encode_bitmap", "encode_index_value", "encode_rows",
]


def index_width(n):
    """Bits of an index into ``n`` elements (at least 1)."""
    return max(1, (int(n) - 1).bit_length())


def length_width(n):
    """Bits of a count from 0 to ``n``."""
    return max(1, int(n).bit_length())


def bitmap_bits(n, nnz, width):
    return int(n) + int(nnz) * int(width)


def index_value_bits(n, nnz, width):
    return int(nnz) * (index_width(n) + int(width))


def rows_bits(rows, cols, nnz, width):
    return int(rows) * length_width(cols) + int(nnz) * (index_width(cols) + int(width))


def dense_bits(n, width):
    return int(n) * int(width)


def smallest_encoding(n, nnz, width):
    """``(name, bits)`` of the smallest of the dense, bitmap and index-value encodings."""
    sizes = [("dense", dense_bits(n, width)), ("bitmap", bitmap_bits(n, nnz, width)),
             ("index_value", index_value_bits(n, nnz, width))]
    return min(sizes, key=lambda item: item[1])


def mask_entropy_bits(n, nnz):
    """``log2(C(n, nnz))``: the fewest bits any encoding needs, on average, for the mask alone."""
    n, nnz = int(n), int(nnz)
    return (math.lgamma(n + 1) - math.lgamma(nnz + 1) - math.lgamma(n - nnz + 1)) / math.log(2)


def _flat_pair(x, mask, width):
    x = check_operands(x, width, "x")
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != x.shape:
        raise ValueError(f"mask shape {mask.shape} differs from tensor shape {x.shape}")
    return x.reshape(-1), mask.reshape(-1)


@dataclasses.dataclass(frozen=True)
class Bitmap:
    shape: tuple
    bitmap: np.ndarray  # bool, flat
    values: np.ndarray  # int64, kept values in order
    width: int

    @property
    def bits(self):
        return bitmap_bits(self.bitmap.size, self.values.size, self.width)

    def decode(self):
        dense = np.zeros(self.bitmap.size, dtype=np.int64)
        dense[self.bitmap] = self.values
        return dense.reshape(self.shape)


@dataclasses.dataclass(frozen=True)
class IndexValue:
    shape: tuple
    indices: np.ndarray  # int64 flat indices, ascending
    values: np.ndarray
    width: int

    @property
    def bits(self):
        return index_value_bits(int(np.prod(self.shape, dtype=np.int64)), self.values.size,
                                self.width)

    def decode(self):
        dense = np.zeros(int(np.prod(self.shape, dtype=np.int64)), dtype=np.int64)
        dense[self.indices] = self.values
        return dense.reshape(self.shape)


@dataclasses.dataclass(frozen=True)
class Rows:
    shape: tuple  # (rows, cols)
    lengths: np.ndarray  # kept elements per row
    columns: np.ndarray  # column of every kept element, row after row
    values: np.ndarray
    width: int

    @property
    def bits(self):
        return rows_bits(self.shape[0], self.shape[1], self.values.size, self.width)

    def row(self, r):
        """``(columns, values)`` of row ``r``."""
        start = int(self.lengths[:r].sum())
        end = start + int(self.lengths[r])
        return self.columns[start:end], self.values[start:end]

    def decode(self):
        dense = np.zeros(self.shape, dtype=np.int64)
        row_of = np.repeat(np.arange(self.shape[0]), self.lengths)
        dense[row_of, self.columns] = self.values
        return dense


def encode_bitmap(x, mask, width):
    """Bitmap-plus-packed-values encoding of the elements of ``x`` that ``mask`` keeps."""
    flat, keep = _flat_pair(x, mask, width)
    return Bitmap(np.shape(x), keep, flat[keep], int(width))


def encode_index_value(x, mask, width):
    """``(flat index, value)`` encoding of the elements of ``x`` that ``mask`` keeps."""
    flat, keep = _flat_pair(x, mask, width)
    indices = np.flatnonzero(keep)
    return IndexValue(np.shape(x), indices, flat[indices], int(width))


def encode_rows(x, mask, width):
    """Per-row ``(column, value)`` encoding of a matrix ``x`` (kept elements per ``mask``)."""
    if np.ndim(x) != 2:
        raise ValueError(f"rows encoding needs a matrix, not shape {np.shape(x)}")
    check_operands(x, width, "x")
    keep = np.asarray(mask, dtype=bool)
    if keep.shape != np.shape(x):
        raise ValueError(f"mask shape {keep.shape} differs from tensor shape {np.shape(x)}")
    rows, cols = np.nonzero(keep)  # row-major order
    return Rows(np.shape(x), keep.sum(axis=1).astype(np.int64), cols.astype(np.int64),
                np.asarray(x, dtype=np.int64)[rows, cols], int(width))
