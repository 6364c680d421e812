"""The sizes an activation buffer is built from, and the layouts its parts exchange."""

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import Out

from ..memory import address_width
from ..validate import check_int

__all__ = ["BufferGeometry", "MemoryWriteSignature"]


class MemoryWriteSignature(wiring.Signature):
    """A memory write port as its writer drives it: ``data`` goes to ``addr`` when ``en``.

    Parameters
    ----------
    addr_width, data_width : int
        Widths of the address and of a word.
    """

    def __init__(self, addr_width, data_width):
        super().__init__({"en": Out(1), "addr": Out(addr_width), "data": Out(data_width)})


class BufferGeometry:
    """The sizes of a compressed-activation buffer, checked, with the layouts derived from them.

    :class:`hw.act_buffer.ActivationBuffer` and each of its parts are built from one of these,
    so that every part agrees on the width of each count, address and field.

    Parameters
    ----------
    width, lanes, word_bits, bitmap_capacity, value_capacity, max_tensors, max_rows, max_cols
        As :class:`hw.act_buffer.ActivationBuffer`'s.
    conv_read : bool
        As :class:`hw.act_buffer.ActivationBuffer`'s: without it there is no directory memory.
    conv_words : int
        As :class:`hw.act_buffer.ActivationBuffer`'s: bitmap words a conv read scans a cycle
        (1 or 2).

    Attributes
    ----------
    width, lanes, word_bits, max_tensors, max_rows, max_cols : int
        As given.
    conv_read : bool
        As given.
    conv_words : int
        As given (1 without ``conv_read``).
    read_lanes : int
        Elements a beat of the buffer's reads: ``lanes * conv_words``.
    bitmap_words, value_words : int
        Words of the bitmap memory (``word_bits`` bits each) and of the value memory
        (``lanes`` values each).
    directory_words : int
        Entries of the directory memory: one per block of two bitmap words,
        ``ceil(bitmap_words / 2)``; 0 without ``conv_read`` (a write with a directory is then
        refused as one that does not fit).
    count_shape : range
        An element or value count of one tensor (``n``, ``kept``).
    bitmap_addr_width, value_addr_width, cursor_addr_width, directory_addr_width : int
        Address widths of the bitmap, value, cursor and directory memories.
    cursor_shape : Shape
        A cursor: a value's index in the whole value memory (also the width of a directory
        entry's count).
    directory_entry_layout : StructLayout
        A directory entry: ``count`` (the tensor's kept values before the block) and ``first``
        (the kept bits of the block's first word).
    directory_entry_bits : int
        Its width.
    descriptor_layout : StructLayout
        A stored tensor's descriptor: ``valid``, ``freed``, ``bitmap_base``, ``value_base``,
        ``directory_base`` (in words), ``directory`` (it has one), ``rows``, ``cols``, ``n``
        (``rows * cols``), ``kept``.
    entry_layout : StructLayout
        A written tensor as the table stores it: ``rows``, ``cols``, ``n``, ``kept``,
        ``directory``, and the words it takes, ``bitmap_words``, ``value_words`` and
        ``directory_words``.
    conv_layout : StructLayout
        A conv read's geometry (the ``conv`` field of the buffer's command): ``images``,
        ``height``, ``width``, ``out_h``, ``out_w``, ``kernel``, ``stride``, ``padding``,
        ``first_channel``, ``channels``, ``first_out_row``, ``out_rows``.
    rdata_layout : StructLayout
        A read beat of the row scan and the walks: ``row``, ``count``, ``col`` and ``value``
        (``lanes`` each), ``last``.
    output_layout : StructLayout
        A beat of the buffer's ``rdata``: the same with ``read_lanes`` lanes.

    Raises
    ------
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, *, width, lanes, word_bits, bitmap_capacity, value_capacity, max_tensors,
                 max_rows, max_cols, conv_read=True, conv_words=1):
        check_int("width", width, 2)
        check_int("lanes", lanes, 1)
        if lanes & (lanes - 1):
            raise ValueError(f"lanes must be a power of two, not {lanes}")
        check_int("word_bits", word_bits, lanes)
        if word_bits & (word_bits - 1):
            raise ValueError(f"word_bits must be a power of two, not {word_bits}")
        check_int("bitmap_capacity", bitmap_capacity, 1)
        check_int("value_capacity", value_capacity, 1)
        check_int("max_tensors", max_tensors, 1)
        check_int("max_rows", max_rows, 1)
        check_int("max_cols", max_cols, 1)
        check_int("conv_words", conv_words, 1, 2)
        if conv_words == 2 and word_bits < 2:
            raise ValueError("conv_words 2 needs word_bits of at least 2, not 1")
        self.width = width
        self.lanes = lanes
        self.word_bits = word_bits
        self.bitmap_words = -(-bitmap_capacity // word_bits)
        self.value_words = -(-value_capacity // lanes)
        self.conv_read = bool(conv_read)
        self.conv_words = conv_words if conv_read else 1
        self.read_lanes = lanes * self.conv_words
        self.directory_words = -(-self.bitmap_words // 2) if conv_read else 0
        self.max_tensors = max_tensors
        #: A slot field: at least one bit (no empty vectors); codes from ``max_tensors`` on
        #: name no slot and are refused.
        self.slot_shape = range(max(2, max_tensors))
        self.max_rows = max_rows
        self.max_cols = max_cols
        max_n = max_rows * max_cols
        self.count_shape = range(max(max_n, self.value_words * lanes) + 1)
        self.bitmap_addr_width = address_width(self.bitmap_words)
        self.value_addr_width = address_width(self.value_words)
        self.cursor_addr_width = address_width(max_rows)
        self.directory_addr_width = address_width(self.directory_words)
        self.cursor_shape = unsigned(Shape.cast(range(self.value_words * lanes + 1)).width)
        self.directory_entry_layout = data.StructLayout({
            "count": self.cursor_shape,
            "first": range(word_bits + 1),
        })
        self.directory_entry_bits = self.directory_entry_layout.size
        self.descriptor_layout = data.StructLayout({
            "valid": 1,
            "freed": 1,
            "directory": 1,
            "bitmap_base": range(self.bitmap_words + 1),
            "value_base": range(self.value_words + 1),
            # At least a bit, without directory words too: Verilog has no empty vector.
            "directory_base": range(max(self.directory_words, 1) + 1),
            "rows": range(max_rows + 1),
            "cols": range(max_cols + 1),
            "n": range(max_n + 1),  # rows * cols, kept so that no read multiplies
            "kept": self.count_shape,
        })
        self.entry_layout = data.StructLayout({
            "rows": range(max_rows + 1),
            "cols": range(max_cols + 1),
            "n": self.count_shape,
            "kept": self.count_shape,
            "directory": 1,
            "bitmap_words": range(max_n // word_bits + 2),
            "value_words": range(self.value_words + 2),
            "directory_words": range(max_n // word_bits // 2 + 2),
        })
        self.conv_layout = data.StructLayout({
            "images": range(max_rows + 1),
            "height": range(max_cols + 1),
            "width": range(max_cols + 1),
            "out_h": range(max_cols + 1),
            "out_w": range(max_cols + 1),
            "kernel": range(8),
            "stride": range(4),
            "padding": range(4),
            "first_channel": range(max_rows + 1),
            "channels": range(max_rows + 1),
            "first_out_row": range(max_n + 1),
            "out_rows": range(max_n + 1),
        })
        self.rdata_layout, self.output_layout = (data.StructLayout({
            "row": range(max_rows),
            "count": range(n + 1),
            "col": data.ArrayLayout(range(max_cols), n),
            "value": data.ArrayLayout(signed(width), n),
            "last": 1,
        }) for n in (lanes, self.read_lanes))
