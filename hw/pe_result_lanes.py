"""The PE array's result lanes (:mod:`hw.pe_array`): the PE rows' results, drained into the
slots of the array's ``result`` beats."""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .pe_job import index_shape

__all__ = ["ResultLanes"]


class ResultLanes(wiring.Component):
    """Drains the PE rows' results into an output register of ``lanes`` slots, a ``result``
    beat: PE rows ``q, q + lanes, q + 2 * lanes, ...`` share slot ``q``, taken round robin.
    Counts the results out, and marks the beat with the job's last result ``last``.

    The rows' results are read in place, and their ``ready`` driven from here, rather than
    copied through ports of this component; each slot is a port of its own, a register. A
    copy of the rows' results (``rows * cols`` accumulators) or of the slots as one signal
    would cost generation time in proportion to the array's size.

    Parameters
    ----------
    rows : list of stream.Interface
        The PE rows' results (:attr:`hw.pe_row.PERow.result`), laid out as a slot without
        ``valid``.
    slot_layout : Layout
        A slot: ``valid`` and the fields of a row's result.
    lanes : int
        Slots of a beat.
    max_results : int
        Most results in a job.

    Attributes
    ----------
    slots : Out(slot_layout.size).array(lanes)
        The output register's slots, laid out as ``slot_layout`` (plain vectors: the array
        makes one signal of them, with the layout's fields).
    last : Out(1)
        The beat holds the job's last result.
    valid : Out(1)
        The output register holds a beat.
    ready : In(1)
        The beat is taken this cycle.
    start : In(1)
        A command is taken: forget the results counted, and take ``total``.
    total : In(range(max_results + 1))
        Results of the job taken (with ``start``).
    all_sent : Out(1)
        Every result of the job has left (or leaves this cycle) the output register.
    """

    def __init__(self, *, rows, slot_layout, lanes, max_results):
        self._rows = list(rows)
        self._slot_layout = slot_layout
        self._row_layout = data.StructLayout({name: field.shape for name, field in slot_layout
                                              if name != "valid"})
        super().__init__({
            "slots": Out(slot_layout.size).array(lanes), "last": Out(1),
            "valid": Out(1), "ready": In(1),
            "start": In(1), "total": In(range(max_results + 1)), "all_sent": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        Q = len(self.slots)
        load_out = Signal()  # the output register takes new results this cycle
        m.d.comb += load_out.eq(~self.valid | self.ready)
        lane_moves = []
        for q in range(Q):
            slot = data.View(self._slot_layout, self.slots[q])
            members = self._rows[q::Q]
            n = len(members)
            holds = Signal(n, name=f"lane{q}_holds")
            m.d.comb += holds.eq(Cat(*[row.valid for row in members]))
            last_grant = Signal(index_shape(n), name=f"lane{q}_last")
            grant = Signal(index_shape(n), name=f"lane{q}_grant")
            if n > 1:
                above = Signal(n, name=f"lane{q}_above")
                m.d.comb += above.eq(holds & ~((Const(2, n + 1) << last_grant) - 1)[:n])
                for i in reversed(range(n)):
                    with m.If(holds[i]):
                        m.d.comb += grant.eq(i)
                for i in reversed(range(n)):
                    with m.If(above[i]):
                        m.d.comb += grant.eq(i)
            move = Signal(name=f"lane{q}_move")
            m.d.comb += move.eq(load_out & holds.any())
            lane_moves.append(move)
            for i, row in enumerate(members):
                m.d.comb += row.ready.eq(move & (grant == i))
            with m.If(load_out):
                m.d.sync += slot.valid.eq(holds.any())
            with m.If(move):
                m.d.sync += last_grant.eq(grant)
                with m.Switch(grant):
                    for i, row in enumerate(members):
                        result = data.View(self._row_layout, row.payload)
                        with m.Case(i):
                            m.d.sync += [slot.row.eq(result.row), slot.tile.eq(result.tile),
                                         slot.values.eq(result.values)]
        moved = Signal(range(Q + 1))
        m.d.comb += moved.eq(sum(lane_moves))
        results_out = Signal.like(self.total)
        total = Signal.like(self.total)
        with m.If(load_out):
            m.d.sync += [self.valid.eq(moved != 0), results_out.eq(results_out + moved),
                         self.last.eq((moved != 0) & (results_out + moved == total))]
        with m.If(self.start):
            m.d.sync += [results_out.eq(0), total.eq(self.total)]
        m.d.comb += self.all_sent.eq((results_out == total) & load_out)
        return m
