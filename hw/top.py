"""The accelerator top: a SWAT layer engine joining the top-K selector, the compressed-activation
buffer and the sparse PE array, driven by host streams. A sequencer runs the commands; a stream
router joins the blocks' streams as each step of a command needs."""

from amaranth.hdl import Module, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.config import ConfigError

from .act_buffer import ActivationBuffer
from .hierarchy import instantiate
from .pe_array import COUNTER_WIDTH, SparsePEArray
from .reply_builder import ReplyBuilder
from .row_adapters import ElementsToRows, EntriesToRows
from .row_packer import RowPacker
from .sequencer import AccelOp, CommandSequencer, Route, RowMode
from .skid_buffer import SkidBuffer
from .stream_router import StreamRouter
from .tensor_gate import TensorGate
from .threshold_slots import ThresholdSlots
from .topk_selector import TopKSelector

__all__ = ["AccelOp", "RowMode", "SwatAccel", "check_config"]

#: Each route's links, ``{sink: source}``. Sources: the host's ``tensor``, the ``selector``'s
#: compressed output, the activation ``buffer``'s read data, and the row adapters' PE-array rows
#: (``entry_rows``, ``element_rows``). Sinks: the ``selector``'s input, the ``buffer``'s write
#: data, the row adapters' inputs (``entries``, ``elements``), the host's ``act_out``, and the
#: PE array's sparse ``rows``.
ROUTES = {
    Route.NONE: {},
    Route.THRESHOLD: {"selector": "tensor"},
    Route.SAVE: {"selector": "tensor", "buffer": "selector"},
    Route.SELECTOR_ROWS: {"entries": "selector", "rows": "entry_rows"},
    Route.SPARSE_ROWS: {"selector": "tensor", "entries": "selector", "rows": "entry_rows"},
    Route.DENSE_ROWS: {"entries": "tensor", "rows": "entry_rows"},
    Route.SAVED_ROWS: {"elements": "buffer", "rows": "element_rows"},
    Route.READ_OUT: {"act_out": "buffer"},
}


def selector_entries(beat, entries):
    """The selector's compressed beat as a beat of row entries; its tensor's end ends the row."""
    stmts = [entries.count.eq(beat.count), entries.row_end.eq(beat.last)]
    for lane in range(beat.entries.shape().length):
        stmts += [entries.index[lane].eq(beat.entries[lane].index),
                  entries.value[lane].eq(beat.entries[lane].value)]
    return stmts


def tensor_entries(beat, entries):
    """A host tensor beat as a beat of row entries, every value one (the PE array's dense mode
    implies their indices)."""
    return [entries.index.eq(0), entries.value.eq(beat.values), entries.count.eq(beat.count),
            entries.row_end.eq(beat.last)]


def check_config(config):
    """Refuse a configuration whose blocks cannot work together (a one-line reason)."""
    if config.sparse_port_lanes < config.selector_lanes:
        raise ConfigError(f"pe_sparse_lanes ({config.sparse_port_lanes}) must be at least "
                          f"the selector's lanes ({config.selector_lanes}): the PE array takes the "
                          "selector's beats whole", "pe_sparse_lanes")
    read_lanes = config.buffer_lanes * config.conv_read_words
    if config.sparse_port_lanes < read_lanes:
        # (Only two conv words a cycle make the buffer's beats wider than the selector's.)
        raise ConfigError(f"act_conv_words {config.conv_read_words} needs pe_sparse_lanes of "
                          f"at least {read_lanes} (the activation buffer's {config.buffer_lanes} "
                          f"lanes a word, and the PE array takes its beats whole), not "
                          f"{config.sparse_port_lanes}", "act_conv_words")
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

    Commands (:class:`AccelOp`) run in order, each answered by one ``reply``, in order; a
    product's PE-array compute overlaps the commands after it. Host streams:
    ``cmd``, ``tensor`` (tensors to threshold, save or sparsify, ``config.selector_lanes`` values a beat),
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
            "act_slot": act.geometry.slot_shape,
            "k": sel.cmd_layout["k"].shape,
            "rows": range(max(config.pe_max_rows, config.act_max_rows) + 1),
            "depth": range(max(config.tile_depth, config.act_max_cols) + 1),
            "cols": range(config.pe_cols + 1),
            "tiles": range(config.pe_max_tiles + 1),
            "nm_n": range(config.nm_max_m + 1),
            "nm_m": range(config.nm_max_m + 1),
            "feature_major": 1,
            "directory": 1,
            "conv_read": 1,
            "conv": act.geometry.conv_layout,
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
            width=cfg.width, in_lanes=cfg.selector_lanes, out_lanes=pe.lanes,
            index_bits=index_bits, max_rows=pe.max_rows, sparse_layout=pe.sparse_layout)
        m.submodules.elements_to_rows = el2r = ElementsToRows(
            width=cfg.width, element_layout=act.rdata_layout, sparse_layout=pe.sparse_layout,
            index_bits=index_bits, max_features=pe.max_rows)
        # The saved rows' elements reach ElementsToRows through a register slice, so that its
        # row decisions (comparisons of each beat's row) do not run on through the router
        # into the activation buffer's output register (golden.perf_model.ELEMENTS_SLICES).
        m.submodules.elements_slice = elements_slice = SkidBuffer(act.rdata_layout)
        # The sparse rows reach the PE array through a register slice: the routes (decoded
        # from the sequencer's state) and the adapters' logic would otherwise run on into the
        # PE array's loader (its N:M and index checks), one path of some twenty LUTs. It costs
        # each row beat a cycle (golden.perf_model.SPARSE_SLICE).
        m.submodules.sparse_slice = sparse_slice = SkidBuffer(pe.sparse_layout)
        # The selector's compressed beats leave it through a register slice: its packer's
        # output register would otherwise take its enable from the ready of whatever the route
        # joins it to (through the router, EntriesToRows and the row packer), one path across
        # three blocks. It costs each beat a cycle (golden.perf_model.SELECTOR_SLICE).
        m.submodules.selector_slice = selector_slice = SkidBuffer(sel.out_layout)
        # Every stream the router hands to the row adapters and to the row packer passes a
        # register slice, so that the routes (decoded from the sequencer's state), the
        # adapters' row logic and the packer's fill are three paths, not one across three
        # blocks. Each costs a row beat a cycle (golden.perf_model.ENTRIES_SLICE, ROWS_SLICE).
        m.submodules.entries_slice = entries_slice = SkidBuffer(e2r.in_layout)
        m.submodules.rows_slice = rows_slice = SkidBuffer(pe.sparse_layout)
        # The adapters' beats carry at most the selector's or the buffer's read lanes of entries
        # (a column walk's one); the packer fills each bank word, so a job takes as many words
        # in either read order.
        m.submodules.row_packer = row_packer = RowPacker(
            pe.sparse_layout, in_lanes=max(cfg.selector_lanes, act.geometry.read_lanes))
        m.submodules.router = router = StreamRouter(
            sources={"tensor": sel.data_layout, "selector": sel.out_layout,
                     "buffer": act.rdata_layout, "entry_rows": pe.sparse_layout,
                     "element_rows": pe.sparse_layout},
            sinks={"selector": sel.data_layout, "buffer": act.wdata_layout,
                   "entries": e2r.in_layout, "elements": act.rdata_layout,
                   "act_out": act.rdata_layout, "rows": pe.sparse_layout},
            routes=ROUTES,
            views={("selector", "entries"): selector_entries,
                   ("tensor", "entries"): tensor_entries})
        m.submodules.sequencer = seq = CommandSequencer(
            cmd_layout=self.cmd_layout, threshold_slots=self.threshold_slots,
            threshold_passes=sel.passes, selector_cmd_layout=sel.cmd_layout,
            buffer_cmd_layout=act.cmd_layout, pe_cmd_layout=pe.cmd_layout)
        # Only the command's own tensors enter: the host may already send the next one's.
        m.submodules.tensor_gate = gate = TensorGate(
            payload_layout=sel.data_layout, max_tensors=(1 << len(seq.tensors)) - 1)
        m.d.comb += [gate.start.eq(seq.reply.start), gate.tensors.eq(seq.tensors)]
        m.submodules.thresholds = thresholds = ThresholdSlots(
            slots=self.threshold_slots, result_layout=sel.result_layout)
        m.submodules.replies = replies = ReplyBuilder(
            cmd_layout=self.cmd_layout, reply_layout=self.reply_layout,
            selector_result_layout=sel.result_layout, buffer_result_layout=act.result_layout,
            pe_done_layout=pe.done_layout)

        # Commands in, replies out; the PE array's dense operand and results go straight to
        # and from the host.
        wiring.connect(m, wiring.flipped(self.cmd), seq.cmd)
        wiring.connect(m, replies.reply, wiring.flipped(self.reply))
        wiring.connect(m, wiring.flipped(self.dense), pe.dense)
        wiring.connect(m, pe.result, wiring.flipped(self.result))
        m.d.comb += [self.busy.eq(seq.busy), self.bitmap_used.eq(act.bitmap_used),
                     self.values_used.eq(act.values_used)]

        # Sub-commands out, results back.
        wiring.connect(m, seq.selector_cmd, sel.cmd)
        wiring.connect(m, seq.buffer_cmd, act.cmd)
        wiring.connect(m, seq.pe_cmd, pe.cmd)
        wiring.connect(m, seq.thresholds, thresholds.access)
        wiring.connect(m, seq.reply, replies.steps)
        wiring.connect(m, sel.result, thresholds.i)
        wiring.connect(m, thresholds.o, replies.selector_result)
        wiring.connect(m, act.result, replies.buffer_result)
        wiring.connect(m, pe.done, replies.pe_done)
        m.d.comb += [
            replies.command.eq(seq.command),
            seq.rows_loaded.eq(pe.sparse.valid & pe.sparse.ready & pe.sparse.payload.last),
            e2r.start.eq(seq.rows_start),
            e2r.rows.eq(seq.command.rows),
            el2r.start.eq(seq.rows_start),
            el2r.rows.eq(seq.command.rows),
            el2r.transpose.eq(~seq.command.feature_major & ~seq.command.conv_read),
            el2r.end.eq(seq.rows_end),
        ]

        # The streams, as the sequencer routes them.
        m.d.comb += router.route.eq(seq.route)
        wiring.connect(m, wiring.flipped(self.tensor), gate.i)
        wiring.connect(m, gate.o, router.sources.tensor)
        wiring.connect(m, sel.out, selector_slice.i)
        wiring.connect(m, selector_slice.o, router.sources.selector)
        wiring.connect(m, act.rdata, router.sources.buffer)
        wiring.connect(m, e2r.o, router.sources.entry_rows)
        wiring.connect(m, el2r.o, router.sources.element_rows)
        wiring.connect(m, router.sinks.selector, sel.data)
        wiring.connect(m, router.sinks.buffer, act.wdata)
        wiring.connect(m, router.sinks.entries, entries_slice.i)
        wiring.connect(m, entries_slice.o, e2r.i)
        wiring.connect(m, router.sinks.elements, elements_slice.i)
        wiring.connect(m, elements_slice.o, el2r.i)
        wiring.connect(m, router.sinks.act_out, wiring.flipped(self.act_out))
        wiring.connect(m, router.sinks.rows, rows_slice.i)
        wiring.connect(m, rows_slice.o, row_packer.i)
        wiring.connect(m, row_packer.o, sparse_slice.i)
        wiring.connect(m, sparse_slice.o, pe.sparse)
        return m
