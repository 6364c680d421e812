"""The accelerator's commands, and the sequencer that runs them in order: it selects the stream
route of each step and issues the sub-commands of the top-K selector, the activation buffer and
the PE array. A product's reply may wait for the PE array while the next commands run."""

from amaranth.hdl import Module, Mux, Shape, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from .act_buffer import ActOp
from .pe_array import PEMode
from .topk_selector import TopKOp
from .validate import check_int

__all__ = ["AccelOp", "RowMode", "Route", "ThresholdAccess", "ReplySteps", "CommandSequencer"]


class AccelOp(enum.Enum, shape=3):
    #: Threshold refresh: the exact top-K threshold (``k``) of the next tensor on ``tensor``
    #: goes to threshold slot ``slot``. Between refreshes the stored one is reused.
    THRESHOLD = 0
    #: Save activations: the next tensor on ``tensor`` (``rows x depth``), sparsified with
    #: threshold slot ``slot``, is stored in activation-buffer slot ``act_slot``; with
    #: ``directory``, as feature maps a conv read can build im2col rows from.
    SAVE_ACT = 1
    #: Forward or input gradient: ``rows`` sparse rows streamed on ``tensor`` (one tensor of
    #: ``depth`` a row: ``W`` for the forward product, ``W`` read by columns for the input
    #: gradient), sparsified by ``mode``, times the dense tiles on ``dense``.
    GEMM = 2
    #: Weight gradient: the activations in slot ``act_slot`` as sparse rows (``rows`` of them,
    #: each ``depth`` long) times the dense tiles on ``dense``. Saved batch-major (``X``), they
    #: are read column by column; saved feature-major (``X`` transposed, ``feature_major``), row
    #: by row, which is faster. With ``conv_read``, the slot holds a conv layer's ``X~`` as
    #: feature maps and the rows are its im2col rows, built on read for the geometry ``conv``.
    GEMM_SAVED = 3
    #: Read-out: activation-buffer slot ``act_slot``, every element, on ``act_out``.
    READ_OUT = 4
    #: Release activation-buffer slot ``act_slot``.
    FREE = 5


class RowMode(enum.Enum, shape=2):
    #: Keep ``|x| >=`` the threshold in slot ``slot`` (SWAT's top-K).
    TOPK = 0
    #: Keep the ``nm_n`` largest of every ``nm_m`` (the selector's N:M mode).
    NM = 1
    #: Keep everything, zeros included: the PE array's dense mode, the speedup baseline.
    DENSE = 2


class Route(enum.Enum, shape=3):
    """Where the accelerator's streams go in a step of a command."""
    #: Nothing moves: a sub-command is being issued, or the reply waits.
    NONE = 0
    #: The host's tensor into the selector (a threshold refresh).
    THRESHOLD = 1
    #: The host's tensor through the selector into the activation buffer.
    SAVE = 2
    #: The selector's last entries on to the PE array; no tensor enters the selector (between
    #: and after a GEMM's rows).
    SELECTOR_ROWS = 3
    #: The host's tensor through the selector into the PE array.
    SPARSE_ROWS = 4
    #: The host's tensor into the PE array as it is (dense mode).
    DENSE_ROWS = 5
    #: A saved tensor from the activation buffer into the PE array.
    SAVED_ROWS = 6
    #: A saved tensor from the activation buffer to the host (``act_out``).
    READ_OUT = 7


class ThresholdAccess(wiring.Signature):
    """The sequencer's link to the stored thresholds (:class:`hw.threshold_slots.ThresholdSlots`).

    Members, as the sequencer sees them:

    * ``slot`` (out): the command's threshold slot.
    * ``store`` (out): the selector's result, when it comes, goes to ``slot``.
    * ``threshold``, ``keep_none`` (in): what ``slot`` holds.
    * ``valid`` (in): one bit a slot, set while it holds a threshold.

    Parameters
    ----------
    slots : int
        Threshold slots.
    key_width : int
        Width of a threshold.
    """

    def __init__(self, *, slots, key_width):
        check_int("slots", slots, 1)
        check_int("key_width", key_width, 1)
        super().__init__({
            "slot": Out(range(slots)),
            "store": Out(1),
            "threshold": In(key_width),
            "keep_none": In(1),
            "valid": In(slots),
        })


class ReplySteps(wiring.Signature):
    """The sequencer's link to the reply it has built (:class:`hw.reply_builder.ReplyBuilder`).

    Members, as the sequencer sees them:

    * ``start`` (out): a command is taken; its reply starts afresh.
    * ``refuse`` (out): with ``start``, the command is refused before anything runs.
    * ``busy`` (out): a command is under way, from its transfer to its reply's.
    * ``gather_selector``, ``gather_buffer``, ``gather_pe`` (out): a result the selector, the
      activation buffer or the PE array gives now belongs to the reply.
    * ``send`` (out): the reply is complete (it is offered to the host once the replies before
      it are sent).
    * ``sent`` (in): the host takes it.
    * ``handoff`` (out): the command's streams are done and its reply waits only for the PE
      array's result: it is set aside (it gathers that result and is sent in its turn) and the
      next command may start.
    * ``pending`` (in): a reply set aside has not been sent; another cannot be set aside.
    * ``selector_done``, ``buffer_done``, ``pe_done`` (in): the selector, the activation buffer
      or the PE array gives its result now (for ``pe_done``: one the reply set aside does not
      take).
    """

    def __init__(self):
        super().__init__({
            "start": Out(1),
            "refuse": Out(1),
            "busy": Out(1),
            "gather_selector": Out(1),
            "gather_buffer": Out(1),
            "gather_pe": Out(1),
            "send": Out(1),
            "sent": In(1),
            "handoff": Out(1),
            "pending": In(1),
            "selector_done": In(1),
            "buffer_done": In(1),
            "pe_done": In(1),
        })


class CommandSequencer(wiring.Component):
    """Runs the accelerator's commands (:class:`AccelOp`) in order.

    A command taken from ``cmd`` is kept in ``command`` until the next one. The sequencer
    issues the command's sub-commands to the selector, the activation buffer and the PE array
    in turn, selects the stream route of each step (``route``), waits for the results that end
    the command, and then has its reply sent. It does not see the results themselves, only when
    they come (``reply``); a command that needs a threshold its slot does not hold, or with an
    unknown op, is refused before anything runs.

    A product (``GEMM``, ``GEMM_SAVED``) is over for the sequencer once the PE array has taken
    its last sparse beat (``rows_loaded``) and the selector's or the buffer's results are in:
    its reply is set aside to wait for the PE array's result (``reply.handoff``), and the next
    command starts while the PE array computes. The PE array loads the next product's rows
    while it computes this one; replies stay in command order.

    Parameters
    ----------
    cmd_layout : data.StructLayout
        The host's command (:attr:`hw.top.SwatAccel.cmd_layout`).
    threshold_slots : int
        Threshold slots.
    threshold_passes : int
        Times a threshold refresh streams its tensor (the selector's ``passes``).
    selector_cmd_layout, buffer_cmd_layout, pe_cmd_layout : data.StructLayout
        The ``cmd`` payloads of the top-K selector, the activation buffer and the PE array.

    Attributes
    ----------
    cmd : In(stream.Signature(cmd_layout))
        The host's commands.
    command : Out(cmd_layout)
        The command under way (the last one taken).
    route : Out(Route)
        Where the streams go.
    selector_cmd, buffer_cmd, pe_cmd : Out(stream.Signature(...))
        The sub-commands.
    rows_start : Out(1)
        The PE array took a GEMM: the row adapters start its rows.
    rows_end : Out(1)
        The activation buffer's read of a weight gradient's rows has ended.
    rows_loaded : In(1)
        The PE array takes a job's last sparse beat.
    tensors : Out
        With ``reply.start``: the tensors the command taken streams on the host's ``tensor``
        port (none if it is refused).
    thresholds : Out(ThresholdAccess(slots=threshold_slots, key_width=...))
        The command's threshold slot.
    reply : Out(ReplySteps())
        When the reply starts, gathers results, and is sent.
    busy : Out(1)
        A command is under way.

    Raises
    ------
    TypeError
        If a layout is not a ``data.StructLayout``, or ``threshold_slots`` not an integer.
    ValueError
        If ``threshold_slots`` is less than 1.
    """

    def __init__(self, *, cmd_layout, threshold_slots, selector_cmd_layout, buffer_cmd_layout,
                 pe_cmd_layout, threshold_passes=1):
        for name, layout in (("cmd_layout", cmd_layout),
                             ("selector_cmd_layout", selector_cmd_layout),
                             ("buffer_cmd_layout", buffer_cmd_layout),
                             ("pe_cmd_layout", pe_cmd_layout)):
            if not isinstance(layout, data.StructLayout):
                raise TypeError(f"{name} must be a data.StructLayout, not {layout!r}")
        check_int("threshold_slots", threshold_slots, 1)
        check_int("threshold_passes", threshold_passes, 1)
        self._threshold_passes = threshold_passes
        key_width = selector_cmd_layout["threshold"].shape.width
        super().__init__({
            "cmd": In(stream.Signature(cmd_layout)),
            "command": Out(cmd_layout),
            "route": Out(Route),
            "selector_cmd": Out(stream.Signature(selector_cmd_layout)),
            "buffer_cmd": Out(stream.Signature(buffer_cmd_layout)),
            "pe_cmd": Out(stream.Signature(pe_cmd_layout)),
            "rows_start": Out(1),
            "rows_end": Out(1),
            "rows_loaded": In(1),
            "tensors": Out(max(Shape.cast(cmd_layout["rows"].shape).width,
                               threshold_passes.bit_length())),
            "thresholds": Out(ThresholdAccess(slots=threshold_slots, key_width=key_width)),
            "reply": Out(ReplySteps()),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cmd, reply, slots = self.command, self.reply, self.thresholds
        sel, buf, pe = self.selector_cmd, self.buffer_cmd, self.pe_cmd
        rows_left = Signal.like(cmd.rows)

        # Every field of a sub-command but its op comes from the command under way.
        m.d.comb += [
            sel.payload.k.eq(cmd.k),
            sel.payload.threshold.eq(slots.threshold),
            sel.payload.keep_none.eq(slots.keep_none),
            sel.payload.use_stored.eq(0),
            sel.payload.nm_n.eq(cmd.nm_n),
            sel.payload.nm_m.eq(cmd.nm_m),
            buf.payload.slot.eq(cmd.act_slot),
            buf.payload.rows.eq(cmd.rows),
            buf.payload.cols.eq(cmd.depth),
            buf.payload.directory.eq(cmd.directory),
            buf.payload.conv.eq(cmd.conv),
            pe.payload.rows.eq(cmd.rows),
            pe.payload.depth.eq(cmd.depth),
            pe.payload.cols.eq(cmd.cols),
            pe.payload.tiles.eq(cmd.tiles),
            pe.payload.mode.eq(Mux(cmd.mode == RowMode.DENSE, PEMode.DENSE, PEMode.SPARSE)),
            slots.slot.eq(cmd.slot),
            self.busy.eq(~self.cmd.ready | reply.pending),
            reply.busy.eq(~self.cmd.ready),
        ]
        # The PE array has taken the product's last sparse beat (since its command).
        fed, got_buffer = Signal(), Signal()
        with m.If(self.cmd.ready):
            m.d.sync += [fed.eq(0), got_buffer.eq(0)]
        with m.Else():
            with m.If(self.rows_loaded):
                m.d.sync += fed.eq(1)
            with m.If(reply.buffer_done):
                m.d.sync += got_buffer.eq(1)

        def product_end(streams_done):
            """The product's PE result has come: reply. Or its streams are done: set the
            reply aside."""
            with m.If(reply.pe_done):
                m.next = "REPLY"
            with m.Elif(streams_done):
                m.next = "HANDOFF"

        def issue(port, op, then):
            """Offer a sub-command; go to state ``then`` once it is taken."""
            m.d.comb += [port.valid.eq(1), port.payload.op.eq(op)]
            with m.If(port.ready):
                m.next = then

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    c = self.cmd.payload
                    m.d.sync += [cmd.eq(c), rows_left.eq(c.rows)]
                    m.d.comb += reply.start.eq(1)
                    needs_threshold = (((c.op == AccelOp.GEMM) & (c.mode == RowMode.TOPK))
                                       | (c.op == AccelOp.SAVE_ACT))
                    with m.If(needs_threshold & ~slots.valid.bit_select(c.slot, 1)):
                        # Nothing to sparsify with: refused before anything is consumed.
                        m.d.comb += reply.refuse.eq(1)
                        m.next = "REPLY"
                    with m.Else():
                        with m.Switch(c.op):
                            with m.Case(AccelOp.THRESHOLD):
                                m.d.comb += self.tensors.eq(self._threshold_passes)
                                m.next = "THRESHOLD"
                            with m.Case(AccelOp.SAVE_ACT):
                                m.d.comb += self.tensors.eq(1)
                                m.next = "SAVE_BUFFER_CMD"
                            with m.Case(AccelOp.GEMM):
                                m.d.comb += self.tensors.eq(c.rows)
                                m.next = "GEMM_PE_CMD"
                            with m.Case(AccelOp.GEMM_SAVED):
                                m.next = "GEMM_PE_CMD"
                            with m.Case(AccelOp.READ_OUT, AccelOp.FREE):
                                m.next = "BUFFER_CMD"
                            with m.Default():
                                m.d.comb += reply.refuse.eq(1)
                                m.next = "REPLY"

            with m.State("THRESHOLD"):
                issue(sel, TopKOp.THRESHOLD, "THRESHOLD_RUN")
            with m.State("THRESHOLD_RUN"):
                m.d.comb += [self.route.eq(Route.THRESHOLD), reply.gather_selector.eq(1),
                             slots.store.eq(1)]
                with m.If(reply.selector_done):
                    m.next = "REPLY"

            with m.State("SAVE_BUFFER_CMD"):
                issue(buf, ActOp.WRITE, "SAVE_SELECTOR_CMD")
            with m.State("SAVE_SELECTOR_CMD"):
                issue(sel, TopKOp.APPLY, "SAVE_RUN")
            with m.State("SAVE_RUN"):
                # The selector's result comes before or after the buffer's: wait for both.
                got_sel, got_buf = Signal(), Signal()
                m.d.comb += [self.route.eq(Route.SAVE), reply.gather_selector.eq(1),
                             reply.gather_buffer.eq(1)]
                with m.If(reply.selector_done):
                    m.d.sync += got_sel.eq(1)
                with m.If(reply.buffer_done):
                    m.d.sync += got_buf.eq(1)
                with m.If((got_sel | reply.selector_done) & (got_buf | reply.buffer_done)):
                    m.d.sync += [got_sel.eq(0), got_buf.eq(0)]
                    m.next = "REPLY"

            with m.State("GEMM_PE_CMD"):
                m.d.comb += pe.valid.eq(1)
                with m.If(pe.ready):
                    m.d.comb += self.rows_start.eq(1)
                    with m.If(cmd.op == AccelOp.GEMM_SAVED):
                        m.next = "SAVED_BUFFER_CMD"
                    with m.Elif(cmd.mode == RowMode.DENSE):
                        m.next = "GEMM_DENSE_RUN"
                    with m.Else():
                        m.next = "GEMM_ROW_CMD"
            with m.State("GEMM_ROW_CMD"):
                m.d.comb += self.route.eq(Route.SELECTOR_ROWS)
                issue(sel, Mux(cmd.mode == RowMode.NM, TopKOp.NM, TopKOp.APPLY), "GEMM_ROW_RUN")
            with m.State("GEMM_ROW_RUN"):
                m.d.comb += [self.route.eq(Route.SPARSE_ROWS), reply.gather_selector.eq(1)]
                with m.If(reply.selector_done):
                    m.d.sync += rows_left.eq(rows_left - 1)
                    with m.If(rows_left == 1):
                        m.next = "GEMM_DRAIN"
                    with m.Else():
                        m.next = "GEMM_ROW_CMD"
            with m.State("GEMM_DENSE_RUN"):
                m.d.comb += [self.route.eq(Route.DENSE_ROWS), reply.gather_pe.eq(1)]
                product_end(fed)
            with m.State("GEMM_DRAIN"):
                m.d.comb += [self.route.eq(Route.SELECTOR_ROWS), reply.gather_pe.eq(1)]
                product_end(fed)

            with m.State("SAVED_BUFFER_CMD"):
                issue(buf, Mux(cmd.conv_read, ActOp.READ_CONV,
                               Mux(cmd.feature_major, ActOp.READ_ROWS, ActOp.READ_COLS)),
                      "SAVED_RUN")
            with m.State("SAVED_RUN"):
                m.d.comb += [self.route.eq(Route.SAVED_ROWS), reply.gather_buffer.eq(1),
                             reply.gather_pe.eq(1), self.rows_end.eq(reply.buffer_done)]
                product_end(fed & got_buffer)
            with m.State("HANDOFF"):
                # Nothing of the product is left in the streams; the reply before it may still
                # wait for its own PE result.
                m.d.comb += reply.gather_pe.eq(1)
                with m.If(reply.pe_done):
                    m.next = "REPLY"
                with m.Elif(~reply.pending):
                    m.d.comb += reply.handoff.eq(1)
                    m.next = "IDLE"

            with m.State("BUFFER_CMD"):
                issue(buf, Mux(cmd.op == AccelOp.FREE, ActOp.FREE, ActOp.READ_DENSE),
                      "BUFFER_RUN")
            with m.State("BUFFER_RUN"):
                m.d.comb += [self.route.eq(Route.READ_OUT), reply.gather_buffer.eq(1)]
                with m.If(reply.buffer_done):
                    m.next = "REPLY"

            with m.State("REPLY"):
                m.d.comb += reply.send.eq(1)
                with m.If(reply.sent):
                    m.next = "IDLE"
        return m
