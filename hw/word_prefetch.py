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
    queues the words read in registers, which is all the consumer sees: the first ``heads``
    queued words are ``head``, and ``pop`` takes the first. A read is issued whenever the queue and the
    read in flight leave room, so the queue fills to ``depth`` when nothing is taken.

    After ``start``, one word is queued two cycles later and two words three cycles later;
    from then on, a consumer taking at most one word a cycle always finds at least one word
    (and two when it took none in the cycle before, or once the queue has filled).

    A *bounded* reader follows a memory that is still being written: it reads an address only
    below ``limit`` (the words written so far), so a word written in cycle ``t`` (``limit``
    counting it from ``t + 1``) is queued in cycle ``t + 3`` at the earliest. When it reaches
    ``limit`` while ``wrap`` is high, it goes on from address 0: a consumer that reads the
    memory again and again from the start finds the next pass's first words queued. ``start``
    reads nothing (its address may not be written yet).

    Parameters
    ----------
    width : int
        Word width.
    addr_width : int
        Address width of the read port.
    depth : int
        Queue entries (at least 2); 4 lets the consumer take a word every cycle.
    bounded : bool
        Add ``limit`` and ``wrap`` (see above).
    heads : int
        Queued words shown on ``head`` (2 or more, at most ``depth``): a consumer that pops a
        cycle after it takes a word (from a register, off its own loop) reads past the word
        not yet popped.

    Attributes
    ----------
    start : Signal, in
        Forget the queue and the read in flight; read from ``start_addr`` on.
    start_addr : Signal(addr_width), in
    pop : Signal, in
        Take ``head[0]``; ignored while the queue is empty.
    head : Signal(ArrayLayout(width, heads)), out
        The first ``heads`` queued words (valid as ``count`` says).
    count : Signal(range(depth + 1)), out
        Words queued.
    mem_addr : Signal(addr_width), out
        The read port's address (its ``en`` must be 1).
    mem_data : Signal(width), in
        The read port's data.
    limit : Signal(addr_width + 1), in
        Bounded only: addresses below it may be read.
    wrap : Signal, in
        Bounded only: ``limit`` is final; read from address 0 again on reaching it.

    Raises
    ------
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, *, width, addr_width, depth=4, bounded=False, heads=2):
        check_int("width", width, 1)
        check_int("addr_width", addr_width, 0)
        check_int("depth", depth, 2)
        check_int("heads", heads, 2, depth)
        if not isinstance(bounded, bool):
            raise TypeError(f"bounded must be a bool, not {bounded!r}")
        self.width = width
        self.addr_width = addr_width
        self.depth = depth
        self.bounded = bounded
        self.heads = heads
        members = {
            "start": In(1),
            "start_addr": In(addr_width),
            "pop": In(1),
            "head": Out(data.ArrayLayout(unsigned(width), heads)),
            "count": Out(range(depth + 1)),
            "mem_addr": Out(addr_width),
            "mem_data": In(width),
        }
        if bounded:
            members.update({"limit": In(addr_width + 1), "wrap": In(1)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        depth = self.depth
        queue = [Signal(self.width, name=f"word{i}") for i in range(depth)]
        count = self.count
        pending = Signal()  # a read was issued last cycle: its word is on mem_data
        taken = Signal()
        m.d.comb += taken.eq(self.pop & (count != 0))
        m.d.comb += [self.head[i].eq(queue[i]) for i in range(self.heads)]
        left = Signal(range(depth + 1))  # queued words after this cycle's pop
        m.d.comb += left.eq(count - taken)
        for i in range(depth):
            shifted = Mux(taken, queue[i + 1], queue[i]) if i + 1 < depth else queue[i]
            with m.If(pending & (left == i)):
                m.d.sync += queue[i].eq(self.mem_data)
            with m.Else():
                m.d.sync += queue[i].eq(shifted)
        # Room for one more word even if nothing is taken: the count never passes depth.
        room = Signal()
        m.d.comb += room.eq(count + pending < depth)
        # ``addr`` is one bit wider when bounded: it may equal ``limit``.
        addr = Signal(self.addr_width + self.bounded)  # the address read next
        issue = Signal()
        read_addr = Signal(self.addr_width + self.bounded)
        if self.bounded:
            at_limit = Signal()
            m.d.comb += [
                at_limit.eq(addr >= self.limit),
                read_addr.eq(Mux(at_limit, 0, addr)),
                issue.eq(room & (~at_limit | (self.wrap & (self.limit != 0)))),
            ]
        else:
            m.d.comb += [read_addr.eq(addr), issue.eq(room)]
        with m.If(self.start):
            m.d.sync += [count.eq(0), pending.eq(0 if self.bounded else 1)]
            if self.bounded:
                m.d.comb += self.mem_addr.eq(read_addr)
                m.d.sync += addr.eq(self.start_addr)
            else:
                m.d.comb += self.mem_addr.eq(self.start_addr)
                m.d.sync += addr.eq(self.start_addr + 1)
        with m.Else():
            m.d.comb += self.mem_addr.eq(read_addr)
            m.d.sync += [count.eq(left + pending), pending.eq(issue)]
            with m.If(issue):
                m.d.sync += addr.eq(read_addr + 1)
        return m
