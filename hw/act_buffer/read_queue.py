"""A memory read whose words wait in a queue of registers, each with what came with its
address."""

from amaranth.hdl import Const, Mux, Signal
from amaranth.lib import data

__all__ = ["ReadQueue"]


class ReadQueue:
    """Reads a memory a cycle after an address register, and queues each word with what came
    with its address, in registers (``depth`` entries): the memory's output goes only to a
    register. ``issue`` may be high only while ``room``.

    With ``lagged``, an entry popped leaves the registers a cycle later, so that ``pop`` (the
    consumer's ready, late in its cycle) goes to one register instead of every entry's
    enable: the head is then the entry after the one popped last (a two-way choice by a
    register), and one entry more holds the one popped. ``count``, ``head`` and ``room`` are
    the same cycle by cycle."""

    def __init__(self, m, name, info_layout, data_width, depth=4, lagged=False):
        self.layout = data.StructLayout({"info": info_layout, "data": data_width})
        slots = depth + lagged
        self.entries = [Signal(self.layout, name=f"{name}_q{i}") for i in range(slots)]
        self.stored = Signal(range(slots + 1), name=f"{name}_stored")  # entries held
        self.lag = Signal(name=f"{name}_lag") if lagged else Const(0)  # [0] popped, held
        self.count = Signal(range(depth + 1), name=f"{name}_count")  # entries not popped
        self.pending = Signal(name=f"{name}_pending")
        self.pending_info = Signal(info_layout, name=f"{name}_pending_info")
        self.issue = Signal(name=f"{name}_issue")
        self.issue_info = Signal(info_layout, name=f"{name}_issue_info")
        self.pop = Signal(name=f"{name}_pop")
        self.room = Signal(name=f"{name}_room")
        self.mem_data = Signal(data_width, name=f"{name}_mem_data")
        self.head = Signal(self.layout, name=f"{name}_head")
        self.m, self.depth, self.slots = m, depth, slots

    def build(self):
        m, depth, slots, stored, lag = self.m, self.depth, self.slots, self.stored, self.lag
        count = self.count
        taken = Signal.like(self.pop)
        m.d.comb += [count.eq(stored - lag), taken.eq(self.pop & (count != 0)),
                     self.room.eq(count + self.pending < depth),
                     self.head.eq(Mux(lag, self.entries[1], self.entries[0]) if slots > depth
                                  else self.entries[0])]
        # Entries leave by ``shift`` this cycle: the one popped now, or the one popped before.
        shift = lag if slots > depth else taken
        left = Signal.like(stored)
        m.d.comb += left.eq(stored - shift)
        if slots > depth:
            m.d.sync += lag.eq(taken)
        arriving = Signal(self.layout)
        m.d.comb += [arriving.info.eq(self.pending_info), arriving.data.eq(self.mem_data)]
        for i, entry in enumerate(self.entries):
            shifted = Mux(shift, self.entries[i + 1], entry) if i + 1 < slots else entry
            with m.If(self.pending & (left == i)):
                m.d.sync += entry.eq(arriving)
            with m.Else():
                m.d.sync += entry.eq(shifted)
        m.d.sync += [stored.eq(left + self.pending), self.pending.eq(self.issue),
                     self.pending_info.eq(self.issue_info)]
