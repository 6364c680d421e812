"""The accelerator top: a SWAT layer engine joining the top-K selector, the compressed-activation
buffer and the sparse PE array under one controller, driven by host streams."""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.config import ConfigError

from .act_buffer import ActivationBuffer, ActOp
from .hierarchy import instantiate
from .pe_array import COUNTER_WIDTH, PEMode, SparsePEArray
from .row_adapters import ElementsToRows, EntriesToRows
from .row_packer import RowPacker
from .skid_buffer import SkidBuffer
from .topk_selector import TopKOp, TopKSelector

__all__ = ["AccelOp", "RowMode", "SwatAccel", "check_config"]


class AccelOp(enum.Enum, shape=3):
    #: Threshold refresh: the exact top-K threshold (``k``) of the next tensor on ``tensor``
    #: goes to threshold slot ``slot``. Between refreshes the stored one is reused.
    THRESHOLD = 0
    #: Save activations: the next tensor on ``tensor`` (``rows x depth``), sparsified with
    #: threshold slot ``slot``, is stored in activation-buffer slot ``act_slot``.
    SAVE_ACT = 1
    #: Forward or input gradient: ``rows`` sparse rows streamed on ``tensor`` (one tensor of
    #: ``depth`` a row: ``W`` for the forward product, ``W`` read by columns for the input
    #: gradient), sparsified by ``mode``, times the dense tiles on ``dense``.
    GEMM = 2
    #: Weight gradient: the activations in slot ``act_slot`` as sparse rows (``rows`` of them,
    #: each ``depth`` long) times the dense tiles on ``dense``. Saved batch-major (``X``), they
    #: are read column by column; saved feature-major (``X`` transposed, ``feature_major``), row
    #: by row, which is faster.
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


def check_config(config):
    """Refuse a configuration whose blocks cannot work together (a one-line reason)."""
    if config.sparse_port_lanes < config.topk_lanes:
        raise ConfigError(f"pe_sparse_lanes ({config.sparse_port_lanes}) must be at least "
                          f"topk_lanes ({config.topk_lanes}): the PE array takes the "
                          "selector's beats whole", "pe_sparse_lanes")
    if config.tile_depth > config.max_tensor_len:
        raise ConfigError(f"tile_depth ({config.tile_depth}) must not exceed max_tensor_len "
                          f"({config.max_tensor_len}): every sparse row passes the selector",
                          "tile_depth")
    if config.tile_depth > config.act_max_rows:
        raise ConfigError(f"tile_depth ({config.tile_depth}) must not exceed act_max_rows "
                          f"({config.act_max_rows}): a saved activation's rows are the weight "
                          "gradient's reduction", "tile_depth")


class SwatAccel(wiring.Component):
    """A SWAT layer engine.

    One command at a time (:class:`AccelOp`), each answered by one ``reply``. Host streams:
    ``cmd``, ``tensor`` (tensors to threshold, save or sparsify, ``topk_lanes`` values a beat),
    ``dense`` (the PE array's dense tiles), ``result`` (the PE array's results) and ``act_out``
    (read-outs). See the README for the protocol and a timing example.

    Parameters
    ----------
    config : golden.config.AccelConfig
        Every block is built from it.
    threshold_slots : int
        Thresholds kept (one per tensor whose threshold is reused between refreshes).

    Raises
    ------
    golden.config.ConfigError
        If the blocks cannot work together (:func:`check_config`).
    """

    def __init__(self, config, *, threshold_slots=8):
        check_config(config)
        self.config = config
        self.selector = TopKSelector.from_config(config)
        self.act_buffer = ActivationBuffer.from_config(config)
        self.pe_array = SparsePEArray.from_config(config)
        self.threshold_slots = threshold_slots
        pe, sel, act = self.pe_array, self.selector, self.act_buffer
        self.cmd_layout = data.StructLayout({
            "op": AccelOp,
            "mode": RowMode,
            "slot": range(threshold_slots),
            "act_slot": range(config.act_tensors),
            "k": sel.cmd_layout["k"].shape,
            "rows": range(max(config.pe_max_rows, config.act_max_rows) + 1),
            "depth": range(max(config.tile_depth, config.act_max_cols) + 1),
            "cols": range(config.pe_cols + 1),
            "tiles": range(config.pe_max_tiles + 1),
            "nm_n": range(config.nm_max_m + 1),
            "nm_m": range(config.nm_max_m + 1),
            "feature_major": 1,
        })
        self.reply_layout = data.StructLayout({
            "op": AccelOp,
            "error": 1,
            "threshold": unsigned(sel.key_width),
            "keep_none": 1,
            "n": sel.result_layout["n"].shape,
            "kept": sel.result_layout["kept"].shape,
            "nonzero": sel.result_layout["nonzero"].shape,
            "stored_bits": act.result_layout["stored_bits"].shape,
            "pe_error": pe.done_layout["error"].shape,
            "cycles": unsigned(COUNTER_WIDTH),
            "busy": unsigned(COUNTER_WIDTH),
            "macs": unsigned(COUNTER_WIDTH),
            "stalls": unsigned(COUNTER_WIDTH),
        })
        super().__init__({
            "cmd": In(stream.Signature(self.cmd_layout)),
            "tensor": In(stream.Signature(sel.data_layout)),
            "dense": In(stream.Signature(pe.dense_layout)),
            "result": Out(stream.Signature(pe.result_layout)),
            "act_out": Out(stream.Signature(act.rdata_layout)),
            "reply": Out(stream.Signature(self.reply_layout)),
            "busy": Out(1),
            "bitmap_used": Out(act.bitmap_used.shape()),
            "values_used": Out(act.values_used.shape()),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        # the three blocks as modules of their own: converted apart (and in parallel)
        sel, act, pe = self.selector, self.act_buffer, self.pe_array
        for name, block in (("selector", sel), ("act_buffer", act), ("pe_array", pe)):
            m.submodules[name] = instantiate(block, type(block).params_from_config(cfg))
        index_bits = pe.sparse_layout["index"].shape.elem_shape.width
        m.submodules.entries_to_rows = e2r = EntriesToRows(
            width=cfg.width, in_lanes=cfg.topk_lanes, out_lanes=pe.lanes,
            index_bits=index_bits, max_rows=pe.max_rows, sparse_layout=pe.sparse_layout)
        m.submodules.elements_to_rows = el2r = ElementsToRows(
            width=cfg.width, element_layout=act.rdata_layout, sparse_layout=pe.sparse_layout,
            index_bits=index_bits, max_features=pe.max_rows)

        # The PE array's dense operand and results go straight to and from the host.
        wiring.connect(m, wiring.flipped(self.dense), pe.dense)
        wiring.connect(m, pe.result, wiring.flipped(self.result))
        m.d.comb += [self.bitmap_used.eq(act.bitmap_used), self.values_used.eq(act.values_used)]

        cmd = Signal(self.cmd_layout)
        reply = Signal(self.reply_layout)
        m.d.comb += self.reply.payload.eq(reply)
        thresholds = [Signal(sel.key_width, name=f"threshold{i}")
                      for i in range(self.threshold_slots)]
        keep_nones = Signal(self.threshold_slots)
        valids = Signal(self.threshold_slots)
        slot_threshold = Signal(sel.key_width)
        with m.Switch(cmd.slot):
            for i in range(self.threshold_slots):
                with m.Case(i):
                    m.d.comb += slot_threshold.eq(thresholds[i])
        slot_keep_none = keep_nones.bit_select(cmd.slot, 1)
        cycles = Signal(COUNTER_WIDTH)
        rows_left = Signal.like(cmd.rows)

        # -- stream routes, chosen by the state ---------------------------------------------
        tensor_to_selector = Signal()
        tensor_to_rows = Signal()      # dense mode: the host's rows go to the PE array as is
        selector_to_buffer = Signal()
        selector_to_rows = Signal()
        buffer_to_rows = Signal()
        buffer_to_host = Signal()
        entries_to_pe = Signal()
        elements_to_pe = Signal()

        t = self.tensor
        m.d.comb += sel.data.payload.eq(t.payload)
        with m.If(tensor_to_selector):
            m.d.comb += [sel.data.valid.eq(t.valid), t.ready.eq(sel.data.ready)]
        for lane in range(cfg.topk_lanes):
            m.d.comb += [
                e2r.i.payload.index[lane].eq(Mux(tensor_to_rows, 0,
                                                 sel.out.payload.entries[lane].index)),
                e2r.i.payload.value[lane].eq(Mux(tensor_to_rows, t.payload.values[lane],
                                                 sel.out.payload.entries[lane].value)),
            ]
        m.d.comb += [
            e2r.i.payload.count.eq(Mux(tensor_to_rows, t.payload.count, sel.out.payload.count)),
            e2r.i.payload.row_end.eq(Mux(tensor_to_rows, t.payload.last, sel.out.payload.last)),
        ]
        with m.If(tensor_to_rows):
            m.d.comb += [e2r.i.valid.eq(t.valid), t.ready.eq(e2r.i.ready)]
        with m.If(selector_to_rows):
            m.d.comb += [e2r.i.valid.eq(sel.out.valid), sel.out.ready.eq(e2r.i.ready)]
        m.d.comb += act.wdata.payload.eq(sel.out.payload)
        with m.If(selector_to_buffer):
            m.d.comb += [act.wdata.valid.eq(sel.out.valid), sel.out.ready.eq(act.wdata.ready)]
        m.d.comb += [el2r.i.payload.eq(act.rdata.payload),
                     self.act_out.payload.eq(act.rdata.payload)]
        with m.If(buffer_to_rows):
            m.d.comb += [el2r.i.valid.eq(act.rdata.valid), act.rdata.ready.eq(el2r.i.ready)]
        with m.If(buffer_to_host):
            m.d.comb += [self.act_out.valid.eq(act.rdata.valid),
                         act.rdata.ready.eq(self.act_out.ready)]
        # The sparse rows reach the PE array through a register slice: the routes (decoded
        # from the state) and the adapters' logic would otherwise run on into the PE array's
        # loader (its N:M and index checks), one path of some twenty LUTs. It costs each row
        # beat a cycle (golden.perf_model.SPARSE_SLICE).
        m.submodules.sparse_slice = sparse_slice = SkidBuffer(pe.sparse_layout)
        wiring.connect(m, sparse_slice.o, pe.sparse)
        # The adapters' beats carry at most ``topk_lanes`` entries (a column walk's one); the
        # packer fills each bank word, so a job takes as many words in either read order.
        m.submodules.row_packer = row_packer = RowPacker(pe.sparse_layout,
                                                         in_lanes=cfg.topk_lanes)
        wiring.connect(m, row_packer.o, sparse_slice.i)
        rows_in = row_packer.i
        with m.If(entries_to_pe):
            m.d.comb += [rows_in.valid.eq(e2r.o.valid), e2r.o.ready.eq(rows_in.ready),
                         rows_in.payload.eq(e2r.o.payload)]
        with m.If(elements_to_pe):
            m.d.comb += [rows_in.valid.eq(el2r.o.valid), el2r.o.ready.eq(rows_in.ready),
                         rows_in.payload.eq(el2r.o.payload)]

        # -- sub-commands ---------------------------------------------------------------------
        m.d.comb += [
            sel.cmd.payload.k.eq(cmd.k),
            sel.cmd.payload.threshold.eq(slot_threshold),
            sel.cmd.payload.keep_none.eq(slot_keep_none),
            sel.cmd.payload.use_stored.eq(0),
            sel.cmd.payload.nm_n.eq(cmd.nm_n),
            sel.cmd.payload.nm_m.eq(cmd.nm_m),
            act.cmd.payload.slot.eq(cmd.act_slot),
            act.cmd.payload.rows.eq(cmd.rows),
            act.cmd.payload.cols.eq(cmd.depth),
            pe.cmd.payload.rows.eq(cmd.rows),
            pe.cmd.payload.depth.eq(cmd.depth),
            pe.cmd.payload.cols.eq(cmd.cols),
            pe.cmd.payload.tiles.eq(cmd.tiles),
            pe.cmd.payload.mode.eq(Mux(cmd.mode == RowMode.DENSE, PEMode.DENSE,
                                       PEMode.SPARSE)),
            e2r.rows.eq(cmd.rows),
            el2r.rows.eq(cmd.rows),
            el2r.transpose.eq(~cmd.feature_major),
            sel.result.ready.eq(1),
            act.result.ready.eq(1),
            pe.done.ready.eq(1),
        ]

        def take_selector_result():
            with m.If(sel.result.valid):
                m.d.sync += [reply.threshold.eq(sel.result.payload.threshold),
                             reply.keep_none.eq(sel.result.payload.keep_none),
                             reply.n.eq(sel.result.payload.n),
                             reply.kept.eq(reply.kept + sel.result.payload.kept),
                             reply.nonzero.eq(reply.nonzero + sel.result.payload.nonzero)]
                with m.If(sel.result.payload.error):
                    m.d.sync += reply.error.eq(1)

        def take_buffer_result():
            with m.If(act.result.valid):
                m.d.sync += reply.stored_bits.eq(act.result.payload.stored_bits)
                with m.If(act.result.payload.error):
                    m.d.sync += reply.error.eq(1)

        def take_pe_done():
            d = pe.done.payload
            m.d.sync += [reply.pe_error.eq(d.error), reply.busy.eq(d.busy),
                         reply.macs.eq(d.macs), reply.stalls.eq(d.stalls)]
            with m.If(d.error.as_value().any()):
                m.d.sync += reply.error.eq(1)

        m.d.comb += self.reply.payload.cycles.eq(cycles)  # overrides the field of ``reply``
        with m.If(self.busy & ~self.reply.valid):
            m.d.sync += cycles.eq(cycles + 1)  # command to reply

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    c = self.cmd.payload
                    m.d.sync += [cmd.eq(c), reply.eq(0), reply.op.eq(c.op), cycles.eq(1),
                                 rows_left.eq(c.rows)]
                    needs_threshold = (((c.op == AccelOp.GEMM) & (c.mode == RowMode.TOPK))
                                       | (c.op == AccelOp.SAVE_ACT))
                    with m.If(needs_threshold & ~valids.bit_select(c.slot, 1)):
                        # Nothing to sparsify with: refused before anything is consumed.
                        m.d.sync += reply.error.eq(1)
                        m.next = "REPLY"
                    with m.Else():
                        with m.Switch(c.op):
                            with m.Case(AccelOp.THRESHOLD):
                                m.next = "THRESHOLD"
                            with m.Case(AccelOp.SAVE_ACT):
                                m.next = "SAVE_BUFFER_CMD"
                            with m.Case(AccelOp.GEMM, AccelOp.GEMM_SAVED):
                                m.next = "GEMM_PE_CMD"
                            with m.Case(AccelOp.READ_OUT, AccelOp.FREE):
                                m.next = "BUFFER_CMD"
                            with m.Default():
                                m.d.sync += reply.error.eq(1)
                                m.next = "REPLY"

            with m.State("THRESHOLD"):
                m.d.comb += [sel.cmd.valid.eq(1), sel.cmd.payload.op.eq(TopKOp.THRESHOLD)]
                with m.If(sel.cmd.ready):
                    m.next = "THRESHOLD_RUN"
            with m.State("THRESHOLD_RUN"):
                m.d.comb += tensor_to_selector.eq(1)
                take_selector_result()
                with m.If(sel.result.valid):
                    with m.Switch(cmd.slot):
                        for i in range(self.threshold_slots):
                            with m.Case(i):
                                m.d.sync += [
                                    thresholds[i].eq(sel.result.payload.threshold),
                                    keep_nones[i].eq(sel.result.payload.keep_none),
                                    valids[i].eq(~sel.result.payload.error),
                                ]
                    m.next = "REPLY"

            with m.State("SAVE_BUFFER_CMD"):
                m.d.comb += [act.cmd.valid.eq(1), act.cmd.payload.op.eq(ActOp.WRITE)]
                with m.If(act.cmd.ready):
                    m.next = "SAVE_SELECTOR_CMD"
            with m.State("SAVE_SELECTOR_CMD"):
                m.d.comb += [sel.cmd.valid.eq(1), sel.cmd.payload.op.eq(TopKOp.APPLY)]
                with m.If(sel.cmd.ready):
                    m.next = "SAVE_RUN"
            with m.State("SAVE_RUN"):
                # The selector's result comes before or after the buffer's: wait for both.
                got_sel, got_act = Signal(), Signal()
                m.d.comb += [tensor_to_selector.eq(1), selector_to_buffer.eq(1)]
                take_selector_result()
                take_buffer_result()
                with m.If(sel.result.valid):
                    m.d.sync += got_sel.eq(1)
                with m.If(act.result.valid):
                    m.d.sync += got_act.eq(1)
                with m.If((got_sel | sel.result.valid) & (got_act | act.result.valid)):
                    m.d.sync += [got_sel.eq(0), got_act.eq(0)]
                    m.next = "REPLY"

            with m.State("GEMM_PE_CMD"):
                m.d.comb += pe.cmd.valid.eq(1)
                with m.If(pe.cmd.ready):
                    m.d.comb += [e2r.start.eq(1), el2r.start.eq(1)]
                    with m.If(cmd.op == AccelOp.GEMM_SAVED):
                        m.next = "SAVED_BUFFER_CMD"
                    with m.Elif(cmd.mode == RowMode.DENSE):
                        m.next = "GEMM_DENSE_RUN"
                    with m.Else():
                        m.next = "GEMM_ROW_CMD"
            with m.State("GEMM_ROW_CMD"):
                m.d.comb += [entries_to_pe.eq(1), selector_to_rows.eq(1), sel.cmd.valid.eq(1),
                             sel.cmd.payload.op.eq(Mux(cmd.mode == RowMode.NM, TopKOp.NM,
                                                       TopKOp.APPLY))]
                with m.If(sel.cmd.ready):
                    m.next = "GEMM_ROW_RUN"
            with m.State("GEMM_ROW_RUN"):
                m.d.comb += [entries_to_pe.eq(1), selector_to_rows.eq(1),
                             tensor_to_selector.eq(1)]
                take_selector_result()
                with m.If(sel.result.valid):
                    with m.If(sel.result.payload.n != cmd.depth):
                        m.d.sync += reply.error.eq(1)  # a row of the wrong length
                    m.d.sync += rows_left.eq(rows_left - 1)
                    with m.If(rows_left == 1):
                        m.next = "GEMM_DRAIN"
                    with m.Else():
                        m.next = "GEMM_ROW_CMD"
            with m.State("GEMM_DENSE_RUN"):
                m.d.comb += [entries_to_pe.eq(1), tensor_to_rows.eq(1)]
                with m.If(pe.done.valid):
                    take_pe_done()
                    m.next = "REPLY"
            with m.State("GEMM_DRAIN"):
                m.d.comb += [entries_to_pe.eq(1), selector_to_rows.eq(1)]
                with m.If(pe.done.valid):
                    take_pe_done()
                    m.next = "REPLY"

            with m.State("SAVED_BUFFER_CMD"):
                m.d.comb += [act.cmd.valid.eq(1),
                             act.cmd.payload.op.eq(Mux(cmd.feature_major, ActOp.READ_ROWS,
                                                       ActOp.READ_COLS))]
                with m.If(act.cmd.ready):
                    m.next = "SAVED_RUN"
            with m.State("SAVED_RUN"):
                m.d.comb += [buffer_to_rows.eq(1), elements_to_pe.eq(1)]
                take_buffer_result()
                with m.If(act.result.valid):
                    m.d.comb += el2r.end.eq(1)
                    with m.If(act.result.payload.n != cmd.rows * cmd.depth):
                        m.d.sync += reply.error.eq(1)  # not the shape the command says
                with m.If(pe.done.valid):
                    take_pe_done()
                    m.next = "REPLY"

            with m.State("BUFFER_CMD"):
                m.d.comb += [act.cmd.valid.eq(1),
                             act.cmd.payload.op.eq(Mux(cmd.op == AccelOp.FREE, ActOp.FREE,
                                                       ActOp.READ_DENSE))]
                with m.If(act.cmd.ready):
                    m.next = "BUFFER_RUN"
            with m.State("BUFFER_RUN"):
                m.d.comb += buffer_to_host.eq(1)
                take_buffer_result()
                with m.If(act.result.valid):
                    m.next = "REPLY"

            with m.State("REPLY"):
                m.d.comb += self.reply.valid.eq(1)
                with m.If(self.reply.ready):
                    m.next = "IDLE"
            m.d.comb += self.busy.eq(~self.cmd.ready)
        return m
