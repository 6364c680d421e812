"""The PE array's result lanes (:mod:`hw.pe_array`): the PE rows' results, drained into the
slots of the array's ``result`` beats."""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .pe_job import index_shape

__all__ = ["ResultLanes"]


class ResultLanes(wiring.Component):
    """Drains the PE rows' results into ``result`` beats of ``lanes`` slots. PE rows ``q, q +
    lanes, q + 2 * lanes, ...`` share slot ``q``, taken round robin; the slots move together
    through one output register. Counts the results out, and marks the job's last with
    ``last``.

    Parameters
    ----------
    rows : int
        PE rows.
    result_layout : Layout
        Of a ``result`` beat: ``slots[lanes]`` of ``valid`` and a row's result fields, then
        ``last``.
    max_results : int
        Most results in a job.

    Attributes
    ----------
    rows : In(stream.Signature(row result)).array(rows)
        Each PE row's result (its fields are a slot's but ``valid``).
    result : Out(stream.Signature(result_layout))
        The array's result beats.
    start : In(1)
        A command is taken: forget the results counted, and take ``total``.
    total : In(range(max_results + 1))
        Results of the job taken (with ``start``).
    all_sent : Out(1)
        Every result of the job has left (or leaves this cycle) the output register.
    empty : Out(1)
        The output register holds no beat.
    """

    def __init__(self, *, rows, result_layout, max_results):
        slots = result_layout["slots"].shape
        self._lanes, self._slot_layout = slots.length, slots.elem_shape
        row_layout = data.StructLayout({name: field.shape for name, field in self._slot_layout
                                        if name != "valid"})
        super().__init__({
            "rows": In(stream.Signature(row_layout)).array(rows),
            "result": Out(stream.Signature(result_layout)),
            "start": In(1), "total": In(range(max_results + 1)),
            "all_sent": Out(1), "empty": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        Q = self._lanes
        # each slot and ``last`` its own register: statements on one wide signal cost
        # Amaranth time in proportion to its width
        slots = [Signal(self._slot_layout, name=f"lane{q}_slot") for q in range(Q)]
        out_last = Signal()
        out_valid = Signal()
        m.d.comb += [self.result.payload.eq(Cat(*slots, out_last)),  # the layout's order
                     self.result.valid.eq(out_valid)]
        load_out = Signal()  # the output register takes new results this cycle
        m.d.comb += load_out.eq(~out_valid | self.result.ready)
        lane_moves = []
        for q in range(Q):
            members = self.rows[q::Q]
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
            slot = slots[q]
            with m.If(load_out):
                m.d.sync += slot.valid.eq(holds.any())
            with m.If(move):
                m.d.sync += last_grant.eq(grant)
                with m.Switch(grant):
                    for i, row in enumerate(members):
                        with m.Case(i):
                            m.d.sync += [slot.row.eq(row.payload.row),
                                         slot.tile.eq(row.payload.tile),
                                         slot.values.eq(row.payload.values)]
        moved = Signal(range(Q + 1))
        m.d.comb += moved.eq(sum(lane_moves))
        results_out = Signal.like(self.total)
        total = Signal.like(self.total)
        with m.If(load_out):
            m.d.sync += [out_valid.eq(moved != 0), results_out.eq(results_out + moved),
                         out_last.eq((moved != 0) & (results_out + moved == total))]
        with m.If(self.start):
            m.d.sync += [results_out.eq(0), total.eq(self.total)]
        m.d.comb += [self.all_sent.eq((results_out == total) & load_out),
                     self.empty.eq(~out_valid)]
        return m
