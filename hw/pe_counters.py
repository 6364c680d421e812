"""The PE array's job counters (:mod:`hw.pe_array`): what ``done`` reports of a job's work."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .pe_job import COUNTER_WIDTH

__all__ = ["JobCounters"]


class JobCounters(wiring.Component):
    """Counts a job's cycles and the work of its PE rows.

    The PE rows' flags are added a cycle late (registered first: they come from the banks'
    outputs); the outputs include the flags still to be added, so ``done``'s payload is
    complete and steady from its first cycle.

    Parameters
    ----------
    rows, cols : int
        PE rows and PE columns.

    Attributes
    ----------
    start : In(1)
        A job starts computing: ``cycles`` becomes ``first_cycles``, the others 0.
    first_cycles : In(COUNTER_WIDTH)
        Cycles from the job's command to the cycle after ``start``.
    elapse : In(1)
        The job runs another cycle.
    computing : In(1)
        The PE rows compute: their flags count.
    issue, issue_entry, stall : In(rows)
        Each PE row issued; issued a real entry; had work and could not issue.
    cols_used : In(range(cols + 1))
        The job's valid columns (a real entry's multiply-accumulates).
    cycles, busy, macs, stalls : Out(COUNTER_WIDTH)
        Cycles from the command; PE-row cycles that issued; entries times valid columns;
        PE-row cycles with work left that could not issue.
    """

    def __init__(self, *, rows, cols):
        self._rows = rows
        super().__init__({
            "start": In(1), "first_cycles": In(COUNTER_WIDTH), "elapse": In(1),
            "computing": In(1),
            "issue": In(rows), "issue_entry": In(rows), "stall": In(rows),
            "cols_used": In(range(cols + 1)),
            "cycles": Out(COUNTER_WIDTH), "busy": Out(COUNTER_WIDTH),
            "macs": Out(COUNTER_WIDTH), "stalls": Out(COUNTER_WIDTH),
        })

    def elaborate(self, platform):
        m = Module()
        R = self._rows

        def popcount(bits):
            return sum(bits[i] for i in range(len(bits)))

        counted = [Signal(R, name=f"counted_{name}") for name in ("issues", "real", "stalled")]
        for flags, reg in zip((self.issue, self.issue_entry, self.stall), counted):
            m.d.sync += reg.eq(Mux(self.computing, flags, 0))
        issues_late, real_late, stalled_late = counted
        cycles, busy, macs, stalls = (Signal(COUNTER_WIDTH, name=name)
                                      for name in ("cycles", "busy", "macs", "stalls"))
        m.d.comb += [
            self.cycles.eq(cycles),
            self.busy.eq(busy + popcount(issues_late)),
            self.macs.eq(macs + sum(Mux(real_late[r], self.cols_used, 0) for r in range(R))),
            self.stalls.eq(stalls + popcount(stalled_late)),
        ]
        with m.If(self.start):
            m.d.sync += [cycles.eq(self.first_cycles), busy.eq(0), macs.eq(0), stalls.eq(0)]
        with m.Else():
            m.d.sync += [busy.eq(self.busy), macs.eq(self.macs), stalls.eq(self.stalls)]
            with m.If(self.elapse):
                m.d.sync += cycles.eq(cycles + 1)
        return m
