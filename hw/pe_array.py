"""The sparse PE array: ``R x C`` MACs that multiply a compressed sparse operand by a dense one.

Dataflow (row-wise products): every sparse row goes whole to one PE row. The PE row keeps ``C``
accumulators, one per dense column of the current tile, and for each non-zero ``(k, v)`` of its
row adds ``v * D[k, c]`` to accumulator ``c``. A zero is never stored, multiplied or waited for:
a row costs one cycle per non-zero. Each PE row has its own copy of the dense tile (written by
one broadcast, read at the row's own index), double-buffered so the next tile loads while this
one is used.

A job:

1. ``cmd`` gives the mode, the sparse rows, the reduction depth, the valid dense columns and the
   number of dense column tiles.
2. ``sparse`` streams the rows (each ends with ``row_last``, the job with ``last``). Each row is
   written to the *bank* of the PE row with the least work so far (lowest index on ties): the
   schedule of dynamic dispatch (:func:`golden.pe_array.assign_rows`), decided at load time. The
   banks hold the sparse tile for every dense tile of the job.
3. ``dense`` streams the dense tiles, ``depth`` rows of ``C`` values each, ``dense_lanes`` values
   a beat (part of a row, or several whole rows: the tile's last beat padded), ``last`` on each
   tile's final beat. Loading overlaps the sparse load and the compute.
4. ``result`` gives each (row, tile) result, ``C`` exact accumulators, in completion order; the
   job's last result has ``last``. Then ``done`` gives the job's error flags and counters.

Jobs overlap: two are held at once. A command is taken as soon as the previous job's sparse
rows are loaded, and its rows load into the other half of every bank while that job computes
(the *back* job); it starts computing (the *front* job: its dense tiles, results and ``done``)
once the one before has given ``done``. Results and ``done`` beats stay in command order, each
job's results before its ``done``.

Modes: ``SPARSE`` (entries carry their column index), ``NM`` (entries carry their offset in the
group of ``nm_m``; every group of ``nm_m`` has exactly ``nm_n`` entries, fewer only at a row's
end) and ``DENSE`` (the baseline: every element, zeros included, is an entry; indices are
implied), all on the same datapath.

The PE rows start on the first dense tile while the sparse rows are still loading: a row whose
bank word is written can be worked on at once; a tile ends only when the load is complete.

Faults are reported, never guessed around, each in its own job's ``done``: a malformed command
is answered in its turn with ``error.command`` and consumes nothing; an index beyond ``depth``,
a row count other than ``rows``, a dense row of the wrong length, a dense ``last`` out of place,
or a full bank set their flag in ``done.error``, stop the job's PE rows (at once, or before it
starts when it is still the back job), and the job's streams are consumed to their ends.
Results a failed job emitted are void; it sets ``last`` on none of them unless the fault came
after every declared row had arrived (a row too many, a late dense ``last``): ``done.error``
tells.

Parts: the job sequence and the fault flags are here; the sparse loader and its dispatch
(:mod:`hw.pe_sparse_loader`), the dense loader (:mod:`hw.pe_dense_loader`), the PE rows
(:mod:`hw.pe_row`), the result lanes (:mod:`hw.pe_result_lanes`) and the counters
(:mod:`hw.pe_counters`) are components of their own; :mod:`hw.pe_job` holds what they share.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.config import dense_lanes_fit

from .hierarchy import instantiate
from .pe_counters import JobCounters
from .pe_dense_loader import DenseLoader
from .pe_job import COUNTER_WIDTH, ERROR_LAYOUT, PEMode, command_layout
from .pe_result_lanes import ResultLanes
from .pe_row import PERow
from .pe_sparse_loader import SparseLoader
from .validate import check_int

__all__ = ["COUNTER_WIDTH", "ERROR_LAYOUT", "PEMode", "SparsePEArray"]


class SparsePEArray(wiring.Component):
    """An ``rows x cols`` PE array for a compressed sparse operand times a dense one.

    See the module documentation for the dataflow, the job sequence and the fault rules.

    Parameters
    ----------
    rows, cols : int
        PE rows (sparse rows worked on at once) and PE columns (dense columns a tile).
    width : int
        Operand width (signed, 2 to 16).
    tile_depth : int
        Longest reduction of a job; sets the dense buffers' depth and the accumulator width
        (:func:`golden.numerics.acc_width`), so overflow is impossible.
    lanes : int
        Entries per beat of the ``sparse`` port. With ``lanes == rows`` the sparse tile loads
        as fast as the array consumes it, so the first dense tile is not load-bound.
    dense_lanes : int
        Values per beat of the ``dense`` port: divides ``cols``, or is ``cols`` times 2, 4 or 8
        (that many dense rows a beat, kept as one word of each PE row's tile memory; the word's
        row is picked in a pipeline stage of its own).
    bank_entries : int
        Sparse entries one job may place in a PE row's bank (rounded up to whole beats of
        ``lanes``); each bank holds twice that, for two jobs.
    result_lanes : int
        Row results a ``result`` beat carries (1 to ``rows``): PE rows ``q, q + result_lanes,
        ...`` share slot ``q``. A row of ``n`` non-zeros yields one result every ``n`` cycles
        per PE row, so short rows need several slots.
    max_rows : int
        Most sparse rows in a job.
    max_tiles : int
        Most dense column tiles in a job.
    nm_max_m : int
        Largest group size of the ``NM`` mode.
    acc_width : int
        Accumulator width (from the configuration: ``golden.numerics.acc_width``).
    lut_products : int
        PEs, the last ones in row order, whose products are built from LUTs
        (:func:`hw.arith.logic_product`) rather than a multiplier that synthesis maps to a DSP.

    Attributes
    ----------
    cmd : In(stream.Signature(cmd_layout))
        ``mode`` (:class:`PEMode`), ``rows``, ``depth``, ``cols``, ``tiles``, ``nm_n``, ``nm_m``.
    sparse : In(stream.Signature(sparse_layout))
        ``index[lanes]``, ``value[lanes]``, ``count``, ``row_last``, ``last``.
    dense : In(stream.Signature(dense_layout))
        ``values[dense_lanes]``, ``last``.
    result : Out(stream.Signature(result_layout))
        ``slots[result_lanes]`` of ``valid``, ``row`` (stream order), ``tile``,
        ``values[cols]``; ``last`` on the beat with the job's last result.
    done : Out(stream.Signature(done_layout))
        One a job: ``error`` flags, ``cycles`` (command to done), ``busy`` (PE-row cycles that
        issued an entry), ``macs`` (entries times valid columns), ``stalls`` (PE-row cycles
        with work left that could not issue).

    Raises
    ------
    TypeError, ValueError
        If a parameter is not an integer or out of range.
    """

    def __init__(self, *, rows, cols, width, tile_depth, lanes, dense_lanes, bank_entries,
                 result_lanes, max_rows, max_tiles, nm_max_m, acc_width, lut_products=0):
        check_int("rows", rows, 1)
        check_int("cols", cols, 1)
        check_int("width", width, 2, 16)
        check_int("tile_depth", tile_depth, 1)
        check_int("lanes", lanes, 1)
        check_int("dense_lanes", dense_lanes, 1)
        if not dense_lanes_fit(dense_lanes, cols):
            raise ValueError(f"dense_lanes must divide cols ({cols}) or be cols times 2, 4 or "
                             f"8, not {dense_lanes}")
        check_int("bank_entries", bank_entries, 1)
        check_int("result_lanes", result_lanes, 1, rows)
        check_int("max_rows", max_rows, 1)
        check_int("max_tiles", max_tiles, 1)
        check_int("nm_max_m", nm_max_m, 1)
        check_int("acc_width", acc_width, 2 * width)
        check_int("lut_products", lut_products, 0, rows * cols)
        self.rows, self.cols, self.width = rows, cols, width
        self.tile_depth, self.lanes, self.dense_lanes = tile_depth, lanes, dense_lanes
        self.dense_rows = max(1, dense_lanes // cols)  # dense rows a beat (and a memory word)
        self.bank_words = -(-bank_entries // lanes)
        self.max_rows, self.max_tiles, self.nm_max_m = max_rows, max_tiles, nm_max_m
        self.result_lanes = result_lanes
        self.acc_width = acc_width
        self.lut_products = lut_products
        self.depth_bits = max(1, (tile_depth - 1).bit_length())
        index_bits = max(self.depth_bits, (nm_max_m - 1).bit_length())
        self.cmd_layout = command_layout(max_rows=max_rows, tile_depth=tile_depth, cols=cols,
                                         max_tiles=max_tiles, nm_max_m=nm_max_m)
        self.sparse_layout = data.StructLayout({
            "index": data.ArrayLayout(unsigned(index_bits), lanes),
            "value": data.ArrayLayout(signed(width), lanes),
            "count": range(lanes + 1),
            "row_last": 1,
            "last": 1,
        })
        self.dense_layout = data.StructLayout({
            "values": data.ArrayLayout(signed(width), dense_lanes),
            "last": 1,
        })
        self.slot_layout = data.StructLayout({
            "valid": 1,
            "row": range(max_rows),
            "tile": range(max_tiles),
            "values": data.ArrayLayout(signed(acc_width), cols),
        })
        self.result_layout = data.StructLayout({
            "slots": data.ArrayLayout(self.slot_layout, result_lanes),
            "last": 1,
        })
        self.done_layout = data.StructLayout({
            "error": ERROR_LAYOUT,
            "cycles": unsigned(COUNTER_WIDTH),
            "busy": unsigned(COUNTER_WIDTH),
            "macs": unsigned(COUNTER_WIDTH),
            "stalls": unsigned(COUNTER_WIDTH),
        })
        self.word_layout = data.StructLayout({
            "index": data.ArrayLayout(unsigned(self.depth_bits), lanes),
            "value": data.ArrayLayout(signed(width), lanes),
            "count": range(lanes + 1),
            "row_last": 1,
            "row": range(max_rows),
        })
        super().__init__({
            "cmd": In(stream.Signature(self.cmd_layout)),
            "sparse": In(stream.Signature(self.sparse_layout)),
            "dense": In(stream.Signature(self.dense_layout)),
            "result": Out(stream.Signature(self.result_layout)),
            "done": Out(stream.Signature(self.done_layout)),
        })

    @staticmethod
    def params_from_config(config):
        """The constructor's arguments for an :class:`golden.config.AccelConfig`."""
        return {"rows": config.pe_rows, "cols": config.pe_cols, "width": config.width,
                "tile_depth": config.tile_depth, "lanes": config.sparse_port_lanes,
                "dense_lanes": config.dense_port_lanes, "bank_entries": config.pe_bank_entries,
                "result_lanes": config.result_port_lanes,
                "max_rows": config.pe_max_rows, "max_tiles": config.pe_max_tiles,
                "nm_max_m": config.nm_max_m, "acc_width": config.acc_width,
                "lut_products": config.pe_lut_products}

    @classmethod
    def from_config(cls, config):
        return cls(**cls.params_from_config(config))

    def elaborate(self, platform):
        m = Module()
        R, C = self.rows, self.cols
        c = self.cmd.payload
        accept = Signal()   # a command is taken this cycle
        # The waiting job becomes the computing one this cycle: a register, set a cycle ahead
        # from the state the front job's machine enters, since it starts every PE row.
        promote = Signal()
        release = Signal()  # the computing job's done is taken: its bank half empties
        computing = Signal()  # the PE rows compute the front job
        dense_on = Signal()   # the front job takes dense beats

        # The back job: each command waits here (its rows loading) until the front is free.
        b_valid, b_cmd, b_error = Signal(), Signal(self.cmd_layout), Signal(ERROR_LAYOUT)
        b_failed, b_loaded = Signal(), Signal()
        b_waited = Signal(COUNTER_WIDTH)  # cycles since its command
        # The front job: the PE rows compute it. Its error flags, and any of them as a register
        # of its own (set with the flag): ``failed`` stops every PE row, so an OR of the flags
        # would sit in front of that fan-out.
        f_cmd, f_error = Signal(self.cmd_layout), Signal(ERROR_LAYOUT)
        f_failed, f_loaded = Signal(), Signal()
        # The sparse loader: which job it loads (the back one, or the front once promoted)
        # and the bank half it writes. Commands alternate between the halves.
        loading, load_front, l_half = Signal(), Signal(), Signal()
        l_cmd, b_half = Signal(self.cmd_layout), Signal()

        m.submodules.sparse_loader = sparse = SparseLoader(
            rows=R, word_layout=self.word_layout, sparse_layout=self.sparse_layout,
            cmd_layout=self.cmd_layout, bank_words=self.bank_words, tile_depth=self.tile_depth,
            max_rows=self.max_rows, nm_max_m=self.nm_max_m)
        wiring.connect(m, wiring.flipped(self.sparse), sparse.sparse)
        m.d.comb += [sparse.load.eq(loading), sparse.start.eq(accept),
                     sparse.new_cmd.eq(c), sparse.cmd.eq(l_cmd)]

        m.submodules.dense_loader = dense = DenseLoader(
            rows=R, cols=C, width=self.width, dense_layout=self.dense_layout,
            cmd_layout=self.cmd_layout, depth_bits=self.depth_bits, max_tiles=self.max_tiles,
            rows_per_word=self.dense_rows)
        wiring.connect(m, wiring.flipped(self.dense), dense.dense)
        m.d.comb += [dense.start.eq(promote), dense.cmd.eq(f_cmd), dense.enable.eq(dense_on)]

        m.submodules.counters = counters = JobCounters(rows=R, cols=C)
        m.d.comb += [counters.start.eq(promote), counters.first_cycles.eq(b_waited + 1),
                     counters.computing.eq(computing), counters.cols_used.eq(f_cmd.cols)]
        m.d.comb += self.done.payload.error.eq(f_error)
        for name in ("cycles", "busy", "macs", "stalls"):
            m.d.comb += getattr(self.done.payload, name).eq(getattr(counters, name))

        # The PE rows: the inputs every row takes alike are wired to all of them directly
        # (:func:`instantiate`), not copied per row. Each row holds its own copy of the dense
        # tiles: Yosys would replicate one memory with a read port per row the same way, but
        # its memory mapping dies (WebAssembly build, 16 read ports) on a 16x16 array.
        # Whether the rows compute (the front job's machine in COMPUTE, the job not failed)
        # goes to every row's issue logic: each row keeps it in a register of its own, set
        # from the state the machine enters and the faults seen this cycle.
        run_next = Signal()
        shared = {"start": promote, "start_half": b_half, "release": release,
                  "tiles": f_cmd.tiles, "run_next": run_next, "loaded": f_loaded,
                  "failed": f_failed,
                  "load_half": l_half, "bank_wdata": sparse.word, "tile_loaded": dense.tile_loaded,
                  "dense_we": dense.tile_we, "dense_waddr": dense.tile_waddr,
                  "dense_wdata": dense.tile_wdata}
        first_lut = R * C - self.lut_products  # PEs from this one on (row order) use LUTs
        pe_rows = [PERow(cols=C, width=self.width, acc_width=self.acc_width,
                         depth_bits=self.depth_bits, bank_words=self.bank_words,
                         word_layout=self.word_layout, max_rows=self.max_rows,
                         max_tiles=self.max_tiles, dense_rows=self.dense_rows,
                         lut_products=[c for c in range(C) if r * C + c >= first_lut])
                   for r in range(R)]
        for r, pe in enumerate(pe_rows):
            m.d.comb += pe.bank_we.eq(sparse.bank_we[r])

        m.submodules.result_lanes = lanes = ResultLanes(
            rows=[pe.result for pe in pe_rows], slot_layout=self.slot_layout,
            lanes=self.result_lanes, max_results=self.max_rows * self.max_tiles)
        m.d.comb += [self.result.payload.eq(Cat(*lanes.slots, lanes.last)),  # the layout's order
                     self.result.valid.eq(lanes.valid), lanes.ready.eq(self.result.ready),
                     lanes.start.eq(promote), lanes.total.eq(b_cmd.rows * b_cmd.tiles)]
        for port, status in ((sparse.full, "full"), (dense.released, "tile_done"),
                             (dense.released_half, "tile_done_half"), (counters.issue, "issue"),
                             (counters.issue_entry, "issue_entry"), (counters.stall, "stall")):
            m.d.comb += port.eq(Cat(*[getattr(pe, status) for pe in pe_rows]))

        # -- commands: each is checked, waits as the back job and loads its rows
        bad_cmd = Signal()
        m.d.comb += bad_cmd.eq(
            (c.rows == 0) | (c.depth == 0) | (c.cols == 0) | (c.tiles == 0)
            | ~((c.mode == PEMode.DENSE) | (c.mode == PEMode.SPARSE) | (c.mode == PEMode.NM))
            | ((c.mode == PEMode.NM) & ((c.nm_n == 0) | (c.nm_n > c.nm_m))))
        m.d.comb += [self.cmd.ready.eq(~loading & ~b_valid),
                     accept.eq(self.cmd.valid & self.cmd.ready)]
        # Faults seen this cycle, for the back job and for the front job. (The front job loads
        # only while it takes dense beats: its flags never change while ``done`` is offered.)
        load_raised, front_raised = Signal(ERROR_LAYOUT), Signal(ERROR_LAYOUT)
        m.d.comb += [load_raised.eq(Mux(load_front, 0, sparse.error.as_value())),
                     front_raised.eq(Mux(load_front & dense_on, sparse.error.as_value(), 0)
                                     | dense.error.as_value())]
        with m.If(accept):
            m.d.sync += [b_valid.eq(1), b_cmd.eq(c), b_error.eq(0),
                         b_error.command.eq(bad_cmd), b_failed.eq(bad_cmd),
                         b_loaded.eq(bad_cmd), b_waited.eq(1), b_half.eq(~l_half)]
            with m.If(~bad_cmd):
                m.d.sync += [loading.eq(1), load_front.eq(0), l_cmd.eq(c), l_half.eq(~l_half)]
        with m.Else():
            m.d.sync += b_waited.eq(b_waited + 1)
            with m.If(load_raised.as_value().any()):
                m.d.sync += [b_error.eq(b_error.as_value() | load_raised.as_value()),
                             b_failed.eq(1)]
        with m.If(sparse.load_end):
            m.d.sync += loading.eq(0)
            with m.If(load_front):
                m.d.sync += f_loaded.eq(1)
            with m.Else():
                m.d.sync += b_loaded.eq(1)
        with m.If(front_raised.as_value().any()):
            m.d.sync += [f_error.eq(f_error.as_value() | front_raised.as_value()),
                         f_failed.eq(1)]
        with m.If(promote):
            m.d.sync += [b_valid.eq(0), f_cmd.eq(b_cmd), load_front.eq(1),
                         f_error.eq(b_error.as_value() | load_raised.as_value()),
                         f_failed.eq(b_failed | load_raised.as_value().any()),
                         f_loaded.eq(b_loaded | sparse.load_end)]

        # -- the front job
        with m.FSM() as front:
            with m.State("IDLE"):
                with m.If(promote):  # (``b_valid``, from a register of its own)
                    with m.If(b_error.command):
                        m.next = "DONE"
                    with m.Else():
                        m.d.comb += run_next.eq(~b_failed & ~load_raised.as_value().any())
                        m.next = "COMPUTE"
            with m.State("COMPUTE"):
                m.d.comb += [dense_on.eq(1), computing.eq(1), counters.elapse.eq(1)]
                with m.If(f_failed):
                    m.d.comb += dense.drop.eq(1)
                    m.next = "SKIP"
                with m.Elif(lanes.all_sent & f_loaded):
                    m.next = "DONE"
                with m.Else():
                    m.d.comb += run_next.eq(~front_raised.as_value().any())
            with m.State("SKIP"):
                # The job failed: take its remaining sparse and dense beats and let the output
                # drain.
                m.d.comb += [dense_on.eq(1), counters.elapse.eq(1)]
                with m.If(dense.all_taken & ~lanes.valid & f_loaded):
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += self.done.valid.eq(1)
                with m.If(self.done.ready):
                    m.d.comb += release.eq(~f_error.command)
                    m.next = "IDLE"

        # Next cycle is IDLE with a back job: the machine stays in or returns to IDLE, and the
        # back place is not emptied now and is full or filled now. (From any state, so the
        # register always equals ``IDLE & b_valid`` one cycle on.)
        m.d.sync += promote.eq(~promote & (b_valid | accept) & (
            front.ongoing("IDLE") | (front.ongoing("DONE") & self.done.ready)))

        for r, pe in enumerate(pe_rows):
            m.submodules[f"pe_row{r}"] = instantiate(pe, pe.params, inputs=shared)
        return m
