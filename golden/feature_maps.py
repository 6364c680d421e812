"""A convolution's saved activations stored once as compressed feature maps, read back as the
rows of its im2col matrix; and the windows of the input gradient's dense operand.

SWAT's weight gradient of a convolution is ``dW = dY.T @ im2col(X~)``: each row of the sparse
operand is one feature ``(c, ky, kx)`` across the batch, that is plane ``c`` of every image
shifted by the kernel offset, with zeros outside the map. Storing ``im2col(X~)`` keeps ``k*k``
copies of every element; this model stores ``X~`` once and builds the rows on read, as the
hardware does.

Format
------
The planes of ``X~`` (N, C, H, W) in (channel, image) order, each plane's ``H*W`` mask bits row
by row, all planes one bit string in words of ``word_bits`` (no padding between rows or planes,
so small maps waste nothing); the kept values packed in the same order. A *directory* holds, for
every block of ``block_words`` bitmap words, the number of kept values before the block
(``count_bits`` bits) and the kept bits of each of the block's words but its last
(``popcount_bits`` bits each, a running count). The value of any kept bit is then found from one
directory entry and a popcount inside one word, without walking from the start::

    stored bits = n + kept * width + ceil(n / block_bits) * entry_bits
    entry_bits = count_bits + (block_words - 1) * popcount_bits

The defaults are the hardware's (:class:`hw.act_buffer.ActivationBuffer` with the default
:class:`golden.config.AccelConfig`): blocks of two 32-bit words, 18-bit counts (its value-index
width, for 2**17 values) and 6-bit popcounts, 24 bits per 64 elements.

Reads
-----
A weight-gradient row is a list of *segments*, one per image and output row: the bits of one
input row from the first to the last column the kernel offset reaches, every ``stride``-th bit.
:func:`row_segments` gives them (the read unit's address sequence, computed from the shape
alone) and :func:`read_row` reads them through the directory.
"""

import dataclasses
import math

import numpy as np

from .layers import conv_out_size, im2col
from .numerics import check_operands

__all__ = ["FeatureMapFormat", "FeatureMaps", "Segment", "row_segments", "read_row",
           "input_grad_windows", "flipped_weight_matrix"]


@dataclasses.dataclass(frozen=True)
class FeatureMapFormat:
    """How feature maps are laid out: value ``width``, bitmap ``word_bits``, and one directory
    entry per ``block_words`` words: a ``count_bits``-bit count and a popcount of each word of
    the block but its last."""

    width: int
    word_bits: int = 32
    block_words: int = 2
    count_bits: int = 18

    def __post_init__(self):
        for name in ("width", "word_bits", "block_words", "count_bits"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")

    @property
    def block_bits(self):
        return self.word_bits * self.block_words

    @property
    def popcount_bits(self):
        """Bits of a word's popcount (0 to ``word_bits``)."""
        return self.word_bits.bit_length()

    @property
    def entry_bits(self):
        """Bits of a directory entry."""
        return self.count_bits + (self.block_words - 1) * self.popcount_bits

    def stored_bits(self, n, kept):
        """Bits of ``n`` elements with ``kept`` values: bitmap, values and directory."""
        return n + kept * self.width + math.ceil(n / self.block_bits) * self.entry_bits


@dataclasses.dataclass(frozen=True)
class Segment:
    """Bits ``start, start + stride, ...`` (``count`` of them) of the stored bit string, which
    are the im2col row's columns ``column, column + 1, ...``."""

    start: int
    count: int
    stride: int
    column: int


class FeatureMaps:
    """``X~`` (N, C, H, W) stored in :class:`FeatureMapFormat` ``fmt``: the elements ``mask``
    keeps (a kept zero is stored, as the selector keeps it)."""

    def __init__(self, x, mask, fmt):
        x = check_operands(x, fmt.width, "activations")
        mask = np.asarray(mask, dtype=bool)
        if x.ndim != 4 or mask.shape != x.shape:
            raise ValueError(f"feature maps are (N, C, H, W) with a mask of the same shape, "
                             f"not {x.shape} and {mask.shape}")
        self.fmt, self.shape = fmt, x.shape
        order = (1, 0, 2, 3)  # planes in (channel, image) order
        self.bits = mask.transpose(order).reshape(-1)
        self.values = x.transpose(order).reshape(-1)[self.bits]
        starts = np.arange(0, self.bits.size, fmt.block_bits)
        counts = np.concatenate([[0], np.cumsum(self.bits)])
        self.directory = counts[starts]
        # Each word's kept bits (the entries' popcounts are those of a block's first words).
        words = -(-self.bits.size // fmt.word_bits)
        padded = np.zeros(words * fmt.word_bits, dtype=bool)
        padded[:self.bits.size] = self.bits
        self.word_counts = padded.reshape(words, fmt.word_bits).sum(axis=1)
        if counts[-1] >= 1 << fmt.count_bits:
            raise ValueError(f"{counts[-1]} kept values do not fit {fmt.count_bits}-bit counts")

    @property
    def kept(self):
        return int(self.values.size)

    def stored_bits(self):
        return self.fmt.stored_bits(self.bits.size, self.kept)

    def value_index(self, bit):
        """Index into the packed values of the kept element at ``bit``: the directory entry of
        the bit's block (its count, and the popcounts of the block's words before the bit's)
        plus a popcount within the bit's word."""
        word = bit // self.fmt.word_bits
        block_first = word - word % self.fmt.block_words
        word_start = word * self.fmt.word_bits
        return int(self.directory[bit // self.fmt.block_bits]
                   + self.word_counts[block_first:word].sum()
                   + np.count_nonzero(self.bits[word_start:bit]))


def row_segments(shape, feature, kernel, stride, padding):
    """The segments of the weight-gradient row of ``feature = (c, ky, kx)`` for input ``shape``
    (N, C, H, W): for every image and output row whose input row lies inside the map, the
    input columns the output columns reach inside the map (rows and columns in the padding
    are zeros, so they have no segment). Columns of the row are ``(n, oy, ox)`` flattened."""
    n_images, channels, height, width = shape
    c, ky, kx = feature
    if not (0 <= c < channels and 0 <= ky < kernel and 0 <= kx < kernel):
        raise ValueError(f"feature {feature} is outside {channels} channels of a {kernel}x"
                         f"{kernel} kernel")
    out_h = conv_out_size(height, kernel, stride, padding)
    out_w = conv_out_size(width, kernel, stride, padding)
    # Output columns whose input column kx - padding + stride * ox lies in [0, width).
    first = max(0, -((kx - padding) // stride))
    last = min(out_w - 1, (width - 1 - kx + padding) // stride)
    segments = []
    if first > last:
        return segments
    for image in range(n_images):
        plane = (c * n_images + image) * height * width
        for oy in range(out_h):
            y = oy * stride + ky - padding
            if 0 <= y < height:
                x = kx - padding + stride * first
                segments.append(Segment(plane + y * width + x, last - first + 1, stride,
                                        (image * out_h + oy) * out_w + first))
    return segments


def read_row(maps, feature, kernel, stride, padding):
    """``(column, value)`` of every kept element of the weight-gradient row of ``feature``,
    read segment by segment through the directory."""
    entries = []
    for seg in row_segments(maps.shape, feature, kernel, stride, padding):
        # The directory gives the segment's first value; the values after it follow by a
        # running count over every bit of the span (the stride's gaps hold kept values of
        # other columns).
        span = maps.bits[seg.start:seg.start + (seg.count - 1) * seg.stride + 1]
        indices = maps.value_index(seg.start) + np.cumsum(span) - span
        for offset in np.nonzero(span[::seg.stride])[0].tolist():
            index = int(indices[offset * seg.stride])
            entries.append((seg.column + offset, int(maps.values[index])))
    return entries


def input_grad_windows(dy, x_shape, kernel, stride, padding):
    """The input gradient's dense operand, built from ``dY`` the way the forward's is built from
    ``X``: ``dY`` dilated by ``stride`` (zeros between its elements), padded by
    ``kernel - 1 - padding`` before and enough after to give ``x_shape``'s size, and unfolded
    into ``kernel x kernel`` windows at stride 1. Shape (N*H*W, Cout*k*k), so that the input
    gradient is ``windows @ flipped_weight_matrix(W~).T``, rows in (n, y, x) order."""
    dy = np.asarray(dy)
    n_images, cout, out_h, out_w = dy.shape
    _, _, height, width = x_shape
    if padding > kernel - 1:
        raise ValueError(f"padding {padding} is larger than kernel - 1 ({kernel - 1})")
    if (out_h, out_w) != (conv_out_size(height, kernel, stride, padding),
                          conv_out_size(width, kernel, stride, padding)):
        raise ValueError(f"dY of {out_h}x{out_w} is not the output of a {height}x{width} map")
    dilated = np.zeros((n_images, cout, (out_h - 1) * stride + 1, (out_w - 1) * stride + 1),
                       dtype=dy.dtype)
    dilated[:, :, ::stride, ::stride] = dy
    low = kernel - 1 - padding
    padded = np.pad(dilated, ((0, 0), (0, 0),
                              (low, height + kernel - 1 - low - dilated.shape[2]),
                              (low, width + kernel - 1 - low - dilated.shape[3])))
    return im2col(padded, kernel, 1, 0)


def flipped_weight_matrix(weight):
    """``W`` (Cout, Cin, k, k) as the input gradient's weight matrix (Cin, Cout*k*k): each
    kernel rotated by 180 degrees, input and output channels swapped."""
    weight = np.asarray(weight)
    return weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).reshape(weight.shape[1], -1)
