"""The reply to each accelerator command, built from the results of its sub-commands."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .sequencer import AccelOp, ReplySteps

__all__ = ["ReplyBuilder"]


class ReplyBuilder(wiring.Component):
    """Builds the reply to each command from the results of its sub-commands.

    Every result of the selector, the activation buffer and the PE array is taken as it comes
    (their ``ready`` is always high); those the sequencer says belong to the command under way
    (``steps.gather_*``) go into the reply. The reply starts afresh when a command is taken
    (``steps.start``) and goes out on ``reply`` while the sequencer offers it (``steps.send``).

    A product's reply set aside (``steps.handoff``) waits in a second register for the PE
    array's next result, which completes it; it is then offered, and the reply under way is
    offered only once it is sent (replies leave in command order).

    Reply fields: ``op`` is the command's. ``error`` is set when the command is refused or any
    result is an error, when a GEMM's row is not ``depth`` long, or when a saved tensor read for
    a weight gradient is not ``rows x depth`` (a conv read's geometry the buffer checks itself).
    ``threshold``, ``keep_none`` and ``n`` are the selector's last result's, ``kept`` and ``nonzero`` add up its results, ``stored_bits`` is
    the activation buffer's, ``pe_error``, ``busy``, ``macs`` and ``stalls`` the PE array's.
    ``cycles`` counts the cycles from the command's transfer to the reply's first offer.

    Parameters
    ----------
    cmd_layout : data.StructLayout
        The host's command (``op``, ``rows``, ``depth`` and ``conv_read`` are read).
    reply_layout : data.StructLayout
        The reply (:attr:`hw.top.SwatAccel.reply_layout`).
    selector_result_layout, buffer_result_layout, pe_done_layout : data.StructLayout
        The results of the top-K selector, the activation buffer and the PE array.

    Attributes
    ----------
    steps : In(ReplySteps())
        The sequencer's side.
    command : In(cmd_layout)
        The command under way.
    selector_result, buffer_result, pe_done : In(stream.Signature(...))
        The results.
    reply : Out(stream.Signature(reply_layout))
        The replies.

    Raises
    ------
    TypeError
        If a layout is not a ``data.StructLayout``.
    """

    def __init__(self, *, cmd_layout, reply_layout, selector_result_layout,
                 buffer_result_layout, pe_done_layout):
        for name, layout in (("cmd_layout", cmd_layout), ("reply_layout", reply_layout),
                             ("selector_result_layout", selector_result_layout),
                             ("buffer_result_layout", buffer_result_layout),
                             ("pe_done_layout", pe_done_layout)):
            if not isinstance(layout, data.StructLayout):
                raise TypeError(f"{name} must be a data.StructLayout, not {layout!r}")
        self._reply_layout = reply_layout
        super().__init__({
            "steps": In(ReplySteps()),
            "command": In(cmd_layout),
            "selector_result": In(stream.Signature(selector_result_layout)),
            "buffer_result": In(stream.Signature(buffer_result_layout)),
            "pe_done": In(stream.Signature(pe_done_layout)),
            "reply": Out(stream.Signature(reply_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        steps, cmd = self.steps, self.command
        sel, buf, pe = self.selector_result, self.buffer_result, self.pe_done
        reply = Signal(self._reply_layout)  # every field but ``op`` and ``cycles``
        cycles = Signal.like(self.reply.payload.cycles)
        # The reply set aside: complete once ``aside_done`` (it has its PE result).
        aside = Signal(self._reply_layout)
        aside_valid, aside_done = Signal(), Signal()
        aside_waits = Signal()  # the PE array's next result is the reply set aside's
        m.d.comb += aside_waits.eq(aside_valid & ~aside_done)
        offered = Signal()  # the reply under way is offered this cycle
        m.d.comb += offered.eq(steps.send & ~aside_valid)

        m.d.comb += [
            sel.ready.eq(1), buf.ready.eq(1), pe.ready.eq(1),
            steps.selector_done.eq(sel.valid),
            steps.buffer_done.eq(buf.valid),
            steps.pe_done.eq(pe.valid & ~aside_waits),
            steps.pending.eq(aside_valid),
            steps.sent.eq(offered & self.reply.ready),
        ]
        with m.If(aside_valid):
            m.d.comb += [self.reply.valid.eq(aside_done), self.reply.payload.eq(aside)]
        with m.Else():
            m.d.comb += [self.reply.valid.eq(steps.send), self.reply.payload.eq(reply),
                         self.reply.payload.op.eq(cmd.op), self.reply.payload.cycles.eq(cycles)]

        with m.If(steps.start):
            m.d.sync += [reply.eq(0), reply.error.eq(steps.refuse), cycles.eq(1)]
        with m.Elif(steps.busy & ~offered):
            m.d.sync += cycles.eq(cycles + 1)

        with m.If(steps.gather_selector & sel.valid):
            r = sel.payload
            m.d.sync += [reply.threshold.eq(r.threshold), reply.keep_none.eq(r.keep_none),
                         reply.n.eq(r.n), reply.kept.eq(reply.kept + r.kept),
                         reply.nonzero.eq(reply.nonzero + r.nonzero)]
            # Each of a GEMM's rows is ``depth`` long.
            with m.If(r.error | ((cmd.op == AccelOp.GEMM) & (r.n != cmd.depth))):
                m.d.sync += reply.error.eq(1)
        with m.If(steps.gather_buffer & buf.valid):
            r = buf.payload
            m.d.sync += reply.stored_bits.eq(r.stored_bits)
            # A weight gradient's saved tensor has the shape its command says.
            # A conv read's geometry is checked by the buffer against the tensor itself.
            with m.If(r.error | ((cmd.op == AccelOp.GEMM_SAVED) & ~cmd.conv_read
                                 & (r.n != cmd.rows * cmd.depth))):
                m.d.sync += reply.error.eq(1)

        def gather_pe(target):
            """The PE array's result into ``target`` (a reply register)."""
            r = pe.payload
            m.d.sync += [target.pe_error.eq(r.error), target.busy.eq(r.busy),
                         target.macs.eq(r.macs), target.stalls.eq(r.stalls)]
            with m.If(r.error.as_value().any()):
                m.d.sync += target.error.eq(1)

        with m.If(steps.gather_pe & steps.pe_done):
            gather_pe(reply)

        # -- the reply set aside
        with m.If(steps.handoff):
            m.d.sync += [aside.eq(reply), aside.op.eq(cmd.op), aside.cycles.eq(cycles + 1),
                         aside_valid.eq(1), aside_done.eq(0)]
        with m.Elif(aside_waits):
            m.d.sync += aside.cycles.eq(aside.cycles + 1)
            with m.If(pe.valid):
                m.d.sync += aside_done.eq(1)
                gather_pe(aside)
        with m.Elif(aside_valid & self.reply.ready):
            m.d.sync += aside_valid.eq(0)
        return m
