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

Feature maps
------------
A convolution's input ``X~`` (N, C, H, W) is written once, its planes in (channel, image) order
as :mod:`golden.feature_maps` lays them out, with a *directory*: one entry per block of two
bitmap words of the tensor (the kept values before the block, and the first word's popcount),
so that a read finds the value of any bit from one entry and a popcount within one word.
:meth:`ActivationBuffer.read_conv` then reads the weight gradient's im2col rows of a range of
channels and output rows, built on read. A buffer built without the conv read
(``conv_read=False``, the configuration's ``act_conv_read=0``) keeps no directories: a write
with one is refused as one that does not fit, and a conv read is refused.

Faults
------
A write that does not fit is refused whole: the buffer keeps consuming the stream (so the
producer never stalls on it) but stores nothing of the tensor, leaves everything stored intact,
and reports ``error``. The bitmap's size is known when the write starts (rows x cols); the
values' only at its end, so a tensor can be refused after it was accepted.
"""

import dataclasses
import math

import numpy as np

from . import encodings
from .feature_maps import FeatureMapFormat, FeatureMaps, read_row
from .layers import conv_out_size
from .numerics import check_operands

__all__ = ["BufferFull", "ReadRefused", "Descriptor", "ActivationBuffer", "format_comparison"]


class BufferFull(Exception):
    """A write was refused: it does not fit, or the descriptor table is full."""


class ReadRefused(Exception):
    """A read was refused (the hardware's ``result.error``, with no beats)."""


@dataclasses.dataclass(frozen=True)
class Descriptor:
    bitmap_base: int  # in bits
    value_base: int  # in values
    rows: int
    cols: int
    kept: int
    directory: FeatureMapFormat | None = None  # the directory's format, if it has one

    @property
    def n(self):
        return self.rows * self.cols

    @property
    def directory_entries(self):
        """Directory entries: one per block of the tensor's bitmap words (0 without one)."""
        return 0 if self.directory is None else math.ceil(self.n / self.directory.block_bits)

    def stored_bits(self, width):
        bits = encodings.bitmap_bits(self.n, self.kept, width)
        if self.directory is not None:
            bits += self.directory_entries * self.directory.entry_bits
        return bits


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
    word_bits : int
        Bits of a bitmap word (a directory entry covers two).
    count_bits : int
        Bits of a directory entry's count (the hardware's value-index width).
    directory_capacity : int or None
        Directory entries the buffer holds (None: unlimited).
    max_rows, max_cols : int or None
        Largest rows and columns of a read (None: unlimited): a conv read of more features
        (``channels * kernel**2``) or columns (``out_rows * out_w``) is refused.
    conv_read : bool
        The buffer keeps directories and has the conv read (:meth:`read_conv`); without it a
        write with a directory raises :class:`BufferFull` and a conv read
        :class:`ReadRefused`.
    """

    def __init__(self, *, width, bitmap_capacity, value_capacity, max_tensors, word_bits=32,
                 count_bits=18, directory_capacity=None, max_rows=None, max_cols=None,
                 conv_read=True):
        self.width = width
        self.bitmap_capacity = bitmap_capacity
        self.value_capacity = value_capacity
        self.max_tensors = max_tensors
        self.directory_format = FeatureMapFormat(width=width, word_bits=word_bits,
                                                 block_words=2, count_bits=count_bits)
        self.directory_capacity = directory_capacity
        self.conv_read = conv_read
        self.max_rows, self.max_cols = max_rows, max_cols
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

    @property
    def directory_used(self):
        return sum(self.table[s].directory_entries for s in self.stack)

    def stored_bits(self, slot):
        return self.table[slot].stored_bits(self.width)

    # -- write -----------------------------------------------------------------------------
    def write(self, slot, x, mask, *, directory=False):
        """Store the elements of matrix ``x`` that ``mask`` keeps under ``slot``; with
        ``directory``, also its directory (for :meth:`read_conv`).

        Raises
        ------
        BufferFull
            If the slot is taken, the table is full, or the bitmap, values or directory do not
            fit (a buffer without the conv read holds no directory); the buffer is then
            unchanged.
        """
        x = check_operands(x, self.width, "activations")
        if x.ndim != 2:
            raise ValueError(f"the buffer stores matrices (rows, cols), not shape {x.shape}")
        mask = np.asarray(mask, dtype=bool)
        if not 0 <= slot < self.max_tensors:
            raise BufferFull(f"slot {slot} is outside the table (0 to {self.max_tensors - 1})")
        if slot in self.table:
            raise BufferFull(f"slot {slot} holds a tensor")
        if directory and not self.conv_read:
            raise BufferFull("the buffer keeps no directories (built without the conv read)")
        rows, cols = x.shape
        bitmap_base, value_base = self.bitmap_used, self.values_used
        kept = int(mask.sum())
        if bitmap_base + rows * cols > self.bitmap_capacity:
            raise BufferFull("the bitmap does not fit")
        if value_base + kept > self.value_capacity:
            raise BufferFull("the values do not fit")
        desc = Descriptor(bitmap_base, value_base, rows, cols, kept,
                          self.directory_format if directory else None)
        if (self.directory_capacity is not None
                and self.directory_used + desc.directory_entries > self.directory_capacity):
            raise BufferFull("the directory does not fit")
        flat, keep = x.reshape(-1), mask.reshape(-1)
        self.bitmap[bitmap_base:bitmap_base + flat.size] = keep
        self.values[value_base:value_base + kept] = flat[keep]
        self.table[slot] = desc
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


    def read_conv(self, slot, *, images, height, width, out_h, out_w, kernel, stride, padding,
                  first_channel, channels, first_out_row, out_rows):
        """The conv read: ``(row, col, value)`` of the kept elements of the weight gradient's
        im2col rows of channels ``first_channel ..`` (``channels`` of them), restricted to the
        output rows (flattened over image and output row) ``first_out_row ..`` (``out_rows``).

        The tensor of ``slot`` holds ``X~`` (``images``, C, ``height``, ``width``) in
        :mod:`golden.feature_maps`' order, written with a directory. ``row`` is the feature
        ``((c - first_channel) * kernel + ky) * kernel + kx``, in increasing order; ``col`` is
        ``(r - first_out_row) * out_w + ox``, increasing within a row. The entries are those of
        :func:`golden.feature_maps.read_row`.

        Raises
        ------
        ReadRefused
            If the buffer was built without the conv read; if the slot holds no tensor or one
            without a directory; if ``kernel`` is 0,
            ``stride`` is not 1 or 2, ``padding >= kernel``, or ``images``, ``height``,
            ``width``, ``channels`` or ``out_rows`` is 0; if ``out_h`` and ``out_w`` are not
            the output sizes of the map; if the channels reach past the tensor's ``n``
            elements, or the output rows past ``images * out_h``; if the read has more rows
            or columns than ``max_rows`` or ``max_cols``.
        """
        if not self.conv_read:
            raise ReadRefused("the buffer has no conv read (built without it)")
        d = self.table.get(slot)
        if d is None or slot in self.freed:
            raise ReadRefused(f"slot {slot} holds no tensor")
        if d.directory is None:
            raise ReadRefused(f"the tensor of slot {slot} has no directory")
        if kernel < 1 or stride not in (1, 2) or padding >= kernel:
            raise ReadRefused(f"kernel {kernel}, stride {stride} and padding {padding} are not a "
                              f"conv the read supports")
        if min(images, height, width, channels, out_rows) < 1:
            raise ReadRefused("images, height, width, channels and out_rows must be positive")
        if (height + 2 * padding < kernel or width + 2 * padding < kernel
                or out_h != conv_out_size(height, kernel, stride, padding)
                or out_w != conv_out_size(width, kernel, stride, padding)):
            raise ReadRefused(f"{out_h}x{out_w} is not the output of a {height}x{width} map")
        plane = height * width
        if (first_channel + channels) * images * plane > d.n:
            raise ReadRefused(f"channels {first_channel} to {first_channel + channels - 1} run "
                              f"past the tensor's {d.n} elements")
        if first_out_row + out_rows > images * out_h:
            raise ReadRefused(f"output rows {first_out_row} to {first_out_row + out_rows - 1} run "
                              f"past {images * out_h}")
        if ((self.max_rows is not None and channels * kernel * kernel > self.max_rows)
                or (self.max_cols is not None and out_rows * out_w > self.max_cols)):
            raise ReadRefused(f"{channels * kernel * kernel} rows of {out_rows * out_w} columns "
                              f"do not fit {self.max_rows} x {self.max_cols}")
        held = (first_channel + channels) * images * plane
        keep = self.bitmap[d.bitmap_base:d.bitmap_base + held]
        dense = np.zeros(held, dtype=np.int64)
        kept_before = int(self.bitmap[d.bitmap_base:d.bitmap_base + held].sum())
        dense[keep] = self.values[d.value_base:d.value_base + kept_before]
        order = (1, 0, 2, 3)  # the stored (channel, image) planes back to (N, C, H, W)
        shape = (first_channel + channels, images, height, width)
        maps = FeatureMaps(dense.reshape(shape).transpose(order),
                           keep.reshape(shape).transpose(order), d.directory)
        lo, hi = first_out_row * out_w, (first_out_row + out_rows) * out_w
        entries = []
        for row, feature in enumerate(np.ndindex(channels, kernel, kernel)):
            c, ky, kx = feature
            for col, value in read_row(maps, (first_channel + c, ky, kx), kernel, stride,
                                       padding):
                if lo <= col < hi:
                    entries.append((row, col - lo, value))
        return entries


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
