"""Read consecutive memory words ahead, with the read port's enable held high."""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .validate import check_int

__all__ = ["WordPrefetch"]


class WordPrefetch(wiring.Component):
    """Streams a memory's words from a start address, a few words ahead of their consumer.

    A large memory is many block RAMs: its read port's enable and address reach all of them,
    and its output comes through a multiplexer over them. So this reader keeps the port enabled,
    drives its address from a register (or, in the cycle of ``start``, from ``start_addr``), and
    queues the words read in registers, which is all the consumer sees: the first two queued
    words are ``head``, and ``pop`` takes the first. A read is issued whenever the queue and the
    read in flight leave room, so the queue fills to ``depth`` when nothing is taken.

    After ``start``, one word is queued two cycles later and two words three cycles later;
    from then on, a consumer taking at most one word a cycle always finds at least one word
    (and two when it took none in the cycle before, or once the queue has filled).

    Parameters
    ----------
    width : int
        Word width.
    addr_width : int
        Address width of the read port.
    depth : int
        Queue entries (at least 2); 4 lets the consumer take a word every cycle.

    Attributes
    ----------
    start : Signal, in
        Forget the queue and the read in flight; read from ``start_addr`` on.
    start_addr : Signal(addr_width), in
    pop : Signal, in
        Take ``head[0]``; ignored while the queue is empty.
    head : Signal(ArrayLayout(width, 2)), out
        The first two queued words (valid as ``count`` says).
    count : Signal(range(depth + 1)), out
        Words queued.
    mem_addr : Signal(addr_width), out
        The read port's address (its ``en`` must be 1).
    mem_data : Signal(width), in
        The read port's data.

    Raises
    ------
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, *, width, addr_width, depth=4):
        check_int("width", width, 1)
        check_int("addr_width", addr_width, 0)
        check_int("depth", depth, 2)
        self.width = width
        self.addr_width = addr_width
        self.depth = depth
        super().__init__({
            "start": In(1),
            "start_addr": In(addr_width),
            "pop": In(1),
            "head": Out(data.ArrayLayout(unsigned(width), 2)),
            "count": Out(range(depth + 1)),
            "mem_addr": Out(addr_width),
            "mem_data": In(width),
        })

    def elaborate(self, platform):
        m = Module()
        depth = self.depth
        queue = [Signal(self.width, name=f"word{i}") for i in range(depth)]
        count = self.count
        pending = Signal()  # a read was issued last cycle: its word is on mem_data
        addr = Signal(self.addr_width)  # the address read next
        taken = Signal()
        m.d.comb += [
            taken.eq(self.pop & (count != 0)),
            self.head[0].eq(queue[0]),
            self.head[1].eq(queue[1]),
        ]
        left = Signal(range(depth + 1))  # queued words after this cycle's pop
        m.d.comb += left.eq(count - taken)
        for i in range(depth):
            shifted = Mux(taken, queue[i + 1], queue[i]) if i + 1 < depth else queue[i]
            with m.If(pending & (left == i)):
                m.d.sync += queue[i].eq(self.mem_data)
            with m.Else():
                m.d.sync += queue[i].eq(shifted)
        # Room for one more word even if nothing is taken: the count never passes depth.
        issue = Signal()
        m.d.comb += issue.eq(count + pending < depth)
        with m.If(self.start):
            m.d.comb += self.mem_addr.eq(self.start_addr)
            m.d.sync += [count.eq(0), pending.eq(1), addr.eq(self.start_addr + 1)]
        with m.Else():
            m.d.comb += self.mem_addr.eq(addr)
            m.d.sync += [count.eq(left + pending), pending.eq(issue)]
            with m.If(issue):
                m.d.sync += addr.eq(addr + 1)
        return m
