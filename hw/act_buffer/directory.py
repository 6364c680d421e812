"""The directory of a tensor written with one: where each block's values start."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..arith import popcount
from .geometry import MemoryWriteSignature

__all__ = ["DirectoryBuilder"]


class DirectoryBuilder(wiring.Component):
    """Writes a tensor's directory as its bitmap words are written.

    It watches the writer's bitmap words (the tensor's words in order, from ``start``). Word
    ``2b`` of the tensor gives entry ``b`` at ``directory_top + b``: the kept values of the
    tensor before the word (a running count) and the word's own kept bits, so that a read
    finds the value index of any bit from one entry and a popcount within its word. A word is
    registered, then counted in the next cycle, and its entry goes to the memory from a
    register: the last entry is written three cycles after its word. Entries go only below the
    memory's end (a write that does not fit is refused).

    Parameters
    ----------
    geometry : :class:`hw.act_buffer.BufferGeometry`

    Attributes
    ----------
    start : Signal, in
        A write begins; ``enable`` (it has a directory) is taken with it.
    enable : Signal, in
    directory_top : Signal, in
        The first free directory entry, taken with ``start``.
    bitmap_write : In(MemoryWriteSignature(...))
        The writer's bitmap writes (watched, not driven).
    directory_write : Out(MemoryWriteSignature(...))
        The directory memory's write port, from registers.
    """

    def __init__(self, geometry):
        self.geometry = g = geometry
        super().__init__({
            "start": In(1),
            "enable": In(1),
            "directory_top": In(range(g.directory_words + 1)),
            "bitmap_write": In(MemoryWriteSignature(g.bitmap_addr_width, g.word_bits)),
            "directory_write": Out(MemoryWriteSignature(g.directory_addr_width,
                                                        g.directory_entry_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geometry
        enabled = Signal()
        word = Signal(g.word_bits)
        word_valid = Signal()
        index = Signal(range(g.bitmap_words + 2))  # the tensor's words counted so far
        running = Signal(g.cursor_shape)  # kept values before the word being counted
        ones = Signal(range(g.word_bits + 1))
        entry = Signal(g.directory_entry_layout)
        address = Signal(range(g.directory_words + g.bitmap_words + 2))
        # The first entry's address, taken at ``start``: the table moves its top up as the
        # tensor commits, before the last entries are written.
        base = Signal.like(self.directory_top)
        m.d.comb += [ones.eq(popcount(word)), entry.count.eq(running), entry.first.eq(ones),
                     address.eq(base + (index >> 1))]
        m.d.sync += [word.eq(self.bitmap_write.data), word_valid.eq(self.bitmap_write.en)]
        port = self.directory_write
        m.d.sync += port.en.eq(0)
        with m.If(word_valid):
            m.d.sync += [running.eq(running + ones), index.eq(index + 1)]
            with m.If(enabled & ~index[0] & (address < g.directory_words)):
                m.d.sync += [port.en.eq(1), port.addr.eq(address), port.data.eq(entry)]
        with m.If(self.start):
            m.d.sync += [enabled.eq(self.enable), index.eq(0), running.eq(0),
                         base.eq(self.directory_top)]
        return m
