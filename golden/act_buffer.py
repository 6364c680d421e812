"""The compressed-activation buffer, as the hardware will behave: the model its RTL is checked
against.

SWAT saves the top-K sparsified input activations of every layer in the forward pass and reads
them only in the backward pass, for the weight gradient. This buffer stores them compressed.

Format
------
A tensor is stored as a bitmap (one bit per element, row-major) and its kept values packed in
order: ``n + nnz * width`` bits. At SWAT's densities this is the smallest of the encodings the
hardware has (see :func:`format_comparison`): the index-value encoding costs ``index_width(n)``
bits per kept element instead of one bit per element, so it only wins below a density of about
``1 / index_width(n)`` (5 % for a million elements), and the dense encoding only above
``1 - 1 / width``. The bitmap also gives the transposed read its column walk without decoding
anything else.

Allocation
----------
Tensors are written in the forward pass layer by layer and read back in the backward pass in
reverse, so the buffer allocates as a stack: a write goes on top; a freed tensor's space returns
when every tensor above it is freed too. Tensors are found through a descriptor table of
``max_tensors`` slots (bitmap base, value base, shape, count).

Faults
------
A write that does not fit is refused whole: the buffer keeps consuming the stream (so the
producer never stalls on it) but stores nothing of the tensor, leaves everything stored intact,
and reports ``error``. The bitmap's size is known when the write starts (rows x cols); the
values' only at its end, so a tensor can be refused after it was accepted.
"""

import dataclasses

import numpy as np

from . import encodings
from .numerics import check_operands

__all__ = ["BufferFull", "Descriptor", "ActivationBuffer", "format_comparison"]


class BufferFull(Exception):
    """A write was refused: it does not fit, or the descriptor table is full."""


@dataclasses.dataclass(frozen=True)
class Descriptor:
    bitmap_base: int  # in bits
    value_base: int  # in values
    rows: int
    cols: int
    kept: int

    @property
    def n(self):
        return self.rows * self.cols

    def stored_bits(self, width):
        return encodings.bitmap_bits(self.n, self.kept, width)


class ActivationBuffer:
    """Golden model of the compressed-activation buffer.

    Parameters
    ----------
    width : int
        Activation width (signed).
    bitmap_capacity : int
        Bitmap bits the buffer holds (elements over all stored tensors).
    value_capacity : int
        Kept values the buffer holds over all stored tensors.
    max_tensors : int
        Descriptor table slots.
    """

    def __init__(self, *, width, bitmap_capacity, value_capacity, max_tensors):
        self.width = width
        self.bitmap_capacity = bitmap_capacity
        self.value_capacity = value_capacity
        self.max_tensors = max_tensors
        self.bitmap = np.zeros(bitmap_capacity, dtype=bool)
        self.values = np.zeros(value_capacity, dtype=np.int64)
        self.table = {}  # slot -> Descriptor
        self.stack = []  # slots in allocation order
        self.freed = set()

    # -- occupancy -------------------------------------------------------------------------
    @property
    def bitmap_used(self):
        return sum(self.table[s].n for s in self.stack)

    @property
    def values_used(self):
        return sum(self.table[s].kept for s in self.stack)

    def stored_bits(self, slot):
        return self.table[slot].stored_bits(self.width)

    # -- write -----------------------------------------------------------------------------
    def write(self, slot, x, mask):
        """Store the elements of matrix ``x`` that ``mask`` keeps under ``slot``.

        Raises
        ------
        BufferFull
            If the slot is taken, the table is full, or the bitmap or values do not fit; the
            buffer is then unchanged.
        """
        x = check_operands(x, self.width, "activations")
        if x.ndim != 2:
            raise ValueError(f"the buffer stores matrices (rows, cols), not shape {x.shape}")
        mask = np.asarray(mask, dtype=bool)
        if not 0 <= slot < self.max_tensors:
            raise BufferFull(f"slot {slot} is outside the table (0 to {self.max_tensors - 1})")
        if slot in self.table:
            raise BufferFull(f"slot {slot} holds a tensor")
        rows, cols = x.shape
        bitmap_base, value_base = self.bitmap_used, self.values_used
        kept = int(mask.sum())
        if bitmap_base + rows * cols > self.bitmap_capacity:
            raise BufferFull("the bitmap does not fit")
        if value_base + kept > self.value_capacity:
            raise BufferFull("the values do not fit")
        flat, keep = x.reshape(-1), mask.reshape(-1)
        self.bitmap[bitmap_base:bitmap_base + flat.size] = keep
        self.values[value_base:value_base + kept] = flat[keep]
        self.table[slot] = Descriptor(bitmap_base, value_base, rows, cols, kept)
        self.stack.append(slot)
        return self.table[slot]

    def free(self, slot):
        """Release ``slot``; its space returns once every tensor above it is freed."""
        if slot not in self.table or slot in self.freed:
            raise KeyError(f"slot {slot} holds no tensor")
        self.freed.add(slot)
        while self.stack and self.stack[-1] in self.freed:
            top = self.stack.pop()
            self.freed.discard(top)
            del self.table[top]

    # -- reads -----------------------------------------------------------------------------
    def _stored(self, slot):
        d = self.table[slot]
        keep = self.bitmap[d.bitmap_base:d.bitmap_base + d.n].reshape(d.rows, d.cols)
        dense = np.zeros(d.n, dtype=np.int64)
        dense[keep.reshape(-1)] = self.values[d.value_base:d.value_base + d.kept]
        return keep, dense.reshape(d.rows, d.cols)

    def read_dense(self, slot):
        """The tensor with dropped elements as zeros (the check read-out)."""
        return self._stored(slot)[1]

    def read_rows(self, slot):
        """``(row, col, value)`` of every kept element, row by row (the order written)."""
        keep, dense = self._stored(slot)
        rows, cols = np.nonzero(keep)
        return [(int(r), int(c), int(dense[r, c])) for r, c in zip(rows, cols)]

    def read_cols(self, slot):
        """``(row, col, value)`` of every kept element, column by column.

        This is the weight gradient's order: ``dW.T = A~.T @ dY``, so each sparse row of the
        product is one feature (column of the activation matrix) across the batch.
        """
        keep, dense = self._stored(slot)
        cols, rows = np.nonzero(keep.T)
        return [(int(r), int(c), int(dense[r, c])) for r, c in zip(rows, cols)]


def format_comparison(n, density, width):
    """Bits of each encoding of ``n`` elements at ``density``, and the bounds to compare with.

    Returns a dict with ``dense``, ``bitmap`` (the stored format), ``index_value``, the
    bitmap-format bound ``n + nnz * width`` reached exactly, and ``entropy`` (``log2 C(n, nnz)``
    bits for the mask plus ``nnz * width`` for the values): no encoding of an unknown mask can
    do better on average.
    """
    nnz = int(np.ceil(density * n))
    return {
        "n": n,
        "density": density,
        "width": width,
        "nnz": nnz,
        "dense": encodings.dense_bits(n, width),
        "bitmap": encodings.bitmap_bits(n, nnz, width),
        "index_value": encodings.index_value_bits(n, nnz, width),
        "entropy": encodings.mask_entropy_bits(n, nnz) + nnz * width,
    }
