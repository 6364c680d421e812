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
   a beat, ``last`` on each tile's final beat. Loading overlaps the sparse load and the compute.
4. ``result`` gives each (row, tile) result, ``C`` exact accumulators, in completion order; the
   job's last result has ``last``. Then ``done`` gives the job's error flags and counters.

Modes: ``SPARSE`` (entries carry their column index), ``NM`` (entries carry their offset in the
group of ``nm_m``; every group of ``nm_m`` has exactly ``nm_n`` entries, fewer only at a row's
end) and ``DENSE`` (the baseline: every element, zeros included, is an entry; indices are
implied), all on the same datapath.

The PE rows start on the first dense tile while the sparse rows are still loading: a row whose
bank word is written can be worked on at once; a tile ends only when the load is complete.

Faults are reported, never guessed around: a malformed command is answered at once with
``error.command`` and consumes nothing; an index beyond ``depth``, a row count other than
``rows``, a dense row of the wrong length, a dense ``last`` out of place, or a full bank set
their flag in ``done.error``, stop the PE rows at once, and the job's streams are consumed to
their ends. A failed job never sets ``last`` on a result; results it emitted before the fault
was seen are void.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from .arith import logic_product
from .hierarchy import instantiate
from .memory import SimpleDualPortMemory
from .validate import check_int
from .word_prefetch import WordPrefetch

__all__ = ["PEMode", "SparsePEArray"]

COUNTER_WIDTH = 48


class PEMode(enum.Enum, shape=2):
    #: Every element is an entry (zeros included); indices are implied. The speedup baseline.
    DENSE = 0
    #: Entries are the non-zeros, each with its column index.
    SPARSE = 1
    #: Entries are ``nm_n`` per group of ``nm_m``, each with its offset in the group.
    NM = 2


ERROR_LAYOUT = data.StructLayout({
    "command": 1,     # a field of the command is out of range
    "rows": 1,        # the sparse stream's rows (or a dense-mode row's length) differ
    "index": 1,       # an entry's index is not below depth
    "bank_full": 1,   # a PE row's bank cannot hold its rows
    "dense_last": 1,  # a dense beat's ``last`` is not where the tile ends
})


def _index(n):
    """Shape of an index into ``n`` things; never zero bits wide (Verilog has no such vector)."""
    return range(max(n, 2))


def _argmin(m, values):
    """``(value, index)`` of the smallest of ``values``, lowest index on ties (a tree)."""
    nodes = [(v, Const(i, _index(len(values)))) for i, v in enumerate(values)]
    while len(nodes) > 1:
        merged = []
        for a, b in zip(nodes[0::2], nodes[1::2]):
            take_b = Signal()
            m.d.comb += take_b.eq(b[0] < a[0])
            value, index = Signal.like(a[0]), Signal(_index(len(values)))
            m.d.comb += [value.eq(Mux(take_b, b[0], a[0])), index.eq(Mux(take_b, b[1], a[1]))]
            merged.append((value, index))
        if len(nodes) % 2:
            merged.append(nodes[-1])
        nodes = merged
    return nodes[0]


class _PERow(wiring.Component):
    """One PE row: its bank of sparse rows, its copy of the dense tiles, a sequencer that issues
    one entry a cycle, a 4-stage multiply-accumulate pipeline and a two-entry result FIFO."""

    def __init__(self, *, cols, width, acc_width, depth_bits, bank_words, word_layout,
                 max_rows, max_tiles, lut_products=()):
        #: What the row is built from (equal rows share one Verilog module: hw.hierarchy).
        self.params = {"cols": cols, "width": width, "acc_width": acc_width,
                       "depth_bits": depth_bits, "bank_words": bank_words,
                       "word_layout": repr(word_layout), "max_rows": max_rows,
                       "max_tiles": max_tiles, "lut_products": sorted(lut_products)}
        self._cols = cols
        self._lut_products = frozenset(lut_products)  # columns whose product uses LUTs
        self._bank_words = bank_words
        self._word_layout = word_layout
        self._depth_bits = depth_bits
        tile_shape = data.ArrayLayout(signed(width), cols)
        self._tile_shape = tile_shape
        self._value_shape = signed(width)
        super().__init__({
            # written by the loaders
            "bank_we": In(1), "bank_wdata": In(word_layout),
            # the dense-tile memory's write port (every row holds its own copy of the tiles,
            # two halves: each row reads its own index every cycle)
            "d_we": In(1), "d_waddr": In(depth_bits + 1), "d_wdata": In(tile_shape),
            # job control
            "clear": In(1),        # a job starts: forget the bank's contents
            "run": In(1),          # the job computes (from the start of the sparse load)
            "loaded": In(1),       # the sparse load is complete: the bank is final
            "abort": In(1),        # the job failed: drop the result held
            "tiles": In(range(max_tiles + 1)),
            "tile_loaded": In(1),  # the loader completed a dense tile this cycle
            "take": In(1),         # the arbiter takes the holding register this cycle
            # status
            "words": Out(range(bank_words + 1)),
            "full": Out(1),
            "tile_done": Out(1),   # finished the tile in half ``tile_done_half`` this cycle
            "tile_done_half": Out(1),
            "issue": Out(1),
            "issue_entry": Out(1),  # an issue that is a real entry (not an empty row's slot)
            "stall": Out(1),
            "hold_valid": Out(1),
            "hold_row": Out(range(max_rows)),
            "hold_tile": Out(range(max_tiles)),
            "hold_values": Out(data.ArrayLayout(signed(acc_width), cols)),
        })

    def elaborate(self, platform):
        m = Module()
        word_layout = self._word_layout
        m.submodules.bank = bank = SimpleDualPortMemory(shape=word_layout,
                                                        depth=self._bank_words)
        bank_wp, bank_rp = bank.write_port(), bank.read_port()
        m.submodules.dense_tiles = dense_tiles = SimpleDualPortMemory(
            shape=self._tile_shape, depth=2 << self._depth_bits)
        dense_wp, dense_rp = dense_tiles.write_port(), dense_tiles.read_port()
        m.d.comb += [dense_wp.en.eq(self.d_we), dense_wp.addr.eq(self.d_waddr),
                     dense_wp.data.eq(self.d_wdata)]

        words = Signal.like(self.words)
        m.d.comb += [self.words.eq(words), self.full.eq(words == self._bank_words)]
        m.d.comb += [
            bank_wp.addr.eq(words), bank_wp.data.eq(self.bank_wdata),
            bank_wp.en.eq(self.bank_we & ~self.full),
        ]
        with m.If(self.clear):
            m.d.sync += words.eq(0)
        with m.Elif(self.bank_we & ~self.full):
            m.d.sync += words.eq(words + 1)

        # -- sequencer: one entry a cycle ----------------------------------------------------
        # The bank is read while the loader still fills it (tile 0 overlaps the sparse load),
        # through a bounded prefetch queue: it reads only words already written, and once the
        # load is complete (``loaded``) it goes round the bank again for the next tile. The
        # sequencer works from the queue's registers, so the bank's output reaches no address
        # or decision. A tile ends at the bank's last word only once the load is complete.
        lanes = word_layout["index"].shape.length
        m.submodules.ahead = ahead = WordPrefetch(
            width=word_layout.size, addr_width=len(bank_rp.addr), bounded=True)
        m.d.comb += [
            ahead.start.eq(self.clear), ahead.start_addr.eq(0),
            ahead.limit.eq(words), ahead.wrap.eq(self.loaded),
            ahead.mem_data.eq(bank_rp.data), bank_rp.addr.eq(ahead.mem_addr),
        ]
        tile = Signal.like(self.tiles)
        addr = Signal(range(self._bank_words + 1))  # of the word at the queue's head
        lane = Signal(_index(lanes))
        word_ok = Signal()
        m.d.comb += word_ok.eq(ahead.count != 0)
        # Rows whose last entry has issued and whose result has not been taken; at most two,
        # the depth of the result FIFO, so a result always has a place to go.
        outstanding = Signal(range(3))

        word = Signal(word_layout)
        m.d.comb += word.eq(ahead.head[0])
        entries = Signal(range(lanes + 1))
        m.d.comb += entries.eq(Mux(word.count == 0, 1, word.count))
        last_in_word = Signal()
        m.d.comb += last_in_word.eq(lane == entries - 1)
        entry_row_last = Signal()
        m.d.comb += entry_row_last.eq(word.row_last & last_in_word)

        # Whether a tile is left (``tile < tiles``) and whether it is loaded (the loader is
        # ahead of this row) are registered flags, updated with the counts they compare,
        # so that no comparison's carry chain lies in front of the issue logic.
        tile_live = Signal()
        ready_tile = Signal()
        # Tiles loaded that this row has not finished: at most two, the dense buffer's halves
        # (the loader fills a half only once every row has released it), so two bits.
        tiles_ahead = Signal(2)
        active = Signal()
        m.d.comb += active.eq(self.run & tile_live)
        at_end = Signal()  # past the bank's last word, and no more will come
        m.d.comb += at_end.eq(self.loaded & (addr == words))
        credit = Signal()
        m.d.comb += credit.eq((outstanding < 2) | self.take)
        issue = Signal()
        m.d.comb += issue.eq(active & ready_tile & word_ok & (~entry_row_last | credit))
        tile_end = Signal()
        m.d.comb += tile_end.eq(active & ready_tile & (
            at_end | (issue & last_in_word & self.loaded & (addr == words - 1))))
        m.d.comb += [
            self.issue.eq(issue),
            self.issue_entry.eq(issue & (word.count != 0)),
            self.stall.eq(active & ~issue & ~tile_end),
            ahead.pop.eq(issue & last_in_word),
        ]

        with m.If(self.clear):
            # (A job without tiles is refused: ``run`` never rises.)
            m.d.sync += [tile.eq(0), lane.eq(0), addr.eq(0), tile_live.eq(1), ready_tile.eq(0),
                         tiles_ahead.eq(0)]
        with m.Else():
            with m.If(issue):
                with m.If(last_in_word):
                    m.d.sync += [lane.eq(0), addr.eq(addr + 1)]
                with m.Else():
                    m.d.sync += lane.eq(lane + 1)
            with m.If(tile_end):
                m.d.sync += [addr.eq(0), tile.eq(tile + 1), tile_live.eq(tile + 1 < self.tiles)]
            m.d.sync += [
                tiles_ahead.eq(tiles_ahead + self.tile_loaded - tile_end),
                ready_tile.eq(Mux(self.tile_loaded,
                                  Mux(tile_end, tiles_ahead != 0, 1),
                                  Mux(tile_end, tiles_ahead != 1, tiles_ahead != 0))),
            ]
        m.d.comb += [
            self.tile_done.eq(tile_end),
            self.tile_done_half.eq(tile[0]),
        ]
        kill = Signal()  # a new job, or this one failed: nothing in flight may surface
        m.d.comb += kill.eq(self.clear | self.abort)
        with m.If(kill):
            m.d.sync += outstanding.eq(0)
        with m.Else():
            m.d.sync += outstanding.eq(outstanding + (issue & entry_row_last) - self.take)

        # -- stage 0 -> 1: read the dense row at the entry's index ---------------------------
        index = Signal(self._depth_bits)
        value = Signal(self._value_shape)
        m.d.comb += [
            index.eq(word.index[lane]),
            value.eq(Mux(word.count == 0, 0, word.value[lane])),
            dense_rp.addr.eq(Cat(index, tile[0])),
        ]
        s1_valid, s1_last = Signal(), Signal()
        s1_value = Signal(self._value_shape)
        s1_row, s1_tile = Signal.like(self.hold_row), Signal.like(self.hold_tile)
        m.d.sync += [s1_valid.eq(issue & ~kill), s1_last.eq(entry_row_last), s1_value.eq(value),
                     s1_row.eq(word.row), s1_tile.eq(tile)]

        # -- stage 1 -> 1b: register the dense row (the tile memory's output, a block RAM's
        # on larger arrays, goes to a register, not through a multiplier) ---------------------
        dense_row = Signal(self._tile_shape)
        s1b_valid, s1b_last = Signal(), Signal()
        s1b_value = Signal(self._value_shape)
        s1b_row, s1b_tile = Signal.like(s1_row), Signal.like(s1_tile)
        m.d.sync += [dense_row.eq(dense_rp.data), s1b_valid.eq(s1_valid & ~kill),
                     s1b_last.eq(s1_last), s1b_value.eq(s1_value), s1b_row.eq(s1_row),
                     s1b_tile.eq(s1_tile)]

        # -- stage 1b -> 2: multiply (registered products) -----------------------------------
        acc_shape = self.hold_values.shape().elem_shape
        s2_valid, s2_last = Signal(), Signal()
        s2_row, s2_tile = Signal.like(s1_row), Signal.like(s1_tile)
        products = [Signal(signed(2 * self._value_shape.width), name=f"product{c}")
                    for c in range(self._cols)]
        m.d.sync += [s2_valid.eq(s1b_valid & ~kill), s2_last.eq(s1b_last), s2_row.eq(s1b_row),
                     s2_tile.eq(s1b_tile)]
        for c in range(self._cols):
            if c in self._lut_products:
                m.d.sync += products[c].eq(logic_product(
                    m, s1b_value, dense_row[c], name=f"product{c}"))
            else:
                m.d.sync += products[c].eq(s1b_value * dense_row[c])

        # -- stage 2 -> 3: accumulate; a row's last entry moves the sums to the holding register
        first = Signal(init=1)
        accs = [Signal(acc_shape, name=f"acc{c}") for c in range(self._cols)]
        sums = [Signal(acc_shape, name=f"sum{c}") for c in range(self._cols)]
        for c in range(self._cols):
            m.d.comb += sums[c].eq(Mux(first, 0, accs[c]) + products[c])
        # A two-entry result FIFO: ``head`` is what the result lane sees, ``tail`` waits.
        head_valid, tail_valid = Signal(), Signal()
        tail_row, tail_tile = Signal.like(s2_row), Signal.like(s2_tile)
        tail_values = Signal.like(self.hold_values)
        m.d.comb += self.hold_valid.eq(head_valid)
        finish = Signal()  # a row's sums are complete this cycle
        m.d.comb += finish.eq(s2_valid & s2_last & ~kill)
        with m.If(kill):
            m.d.sync += first.eq(1)
        with m.Elif(s2_valid):
            with m.If(s2_last):
                m.d.sync += first.eq(1)
            with m.Else():
                m.d.sync += first.eq(0)
                m.d.sync += [accs[c].eq(sums[c]) for c in range(self._cols)]

        def to_head(row, tile, values):
            return [self.hold_row.eq(row), self.hold_tile.eq(tile), self.hold_values.eq(values)]

        new_values = Cat(*sums)
        with m.If(kill):
            m.d.sync += [head_valid.eq(0), tail_valid.eq(0)]
        with m.Elif(self.take):
            with m.If(tail_valid):
                m.d.sync += to_head(tail_row, tail_tile, tail_values)
                m.d.sync += tail_valid.eq(finish)
                with m.If(finish):
                    m.d.sync += [tail_row.eq(s2_row), tail_tile.eq(s2_tile),
                                 tail_values.eq(new_values)]
            with m.Else():
                m.d.sync += head_valid.eq(finish)
                with m.If(finish):
                    m.d.sync += to_head(s2_row, s2_tile, new_values)
        with m.Elif(finish):
            with m.If(head_valid):
                m.d.sync += [tail_valid.eq(1), tail_row.eq(s2_row), tail_tile.eq(s2_tile),
                             tail_values.eq(new_values)]
            with m.Else():
                m.d.sync += head_valid.eq(1)
                m.d.sync += to_head(s2_row, s2_tile, new_values)
        return m


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
        Values per beat of the ``dense`` port; divides ``cols``.
    bank_entries : int
        Sparse entries one PE row's bank holds (rounded up to whole beats of ``lanes``).
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
        if cols % dense_lanes:
            raise ValueError(f"dense_lanes must divide cols ({cols}), not {dense_lanes}")
        check_int("bank_entries", bank_entries, 1)
        check_int("result_lanes", result_lanes, 1, rows)
        check_int("max_rows", max_rows, 1)
        check_int("max_tiles", max_tiles, 1)
        check_int("nm_max_m", nm_max_m, 1)
        check_int("acc_width", acc_width, 2 * width)
        check_int("lut_products", lut_products, 0, rows * cols)
        self.rows, self.cols, self.width = rows, cols, width
        self.tile_depth, self.lanes, self.dense_lanes = tile_depth, lanes, dense_lanes
        self.bank_words = -(-bank_entries // lanes)
        self.max_rows, self.max_tiles, self.nm_max_m = max_rows, max_tiles, nm_max_m
        self.result_lanes = result_lanes
        self.acc_width = acc_width
        self.lut_products = lut_products
        self.depth_bits = max(1, (tile_depth - 1).bit_length())
        index_bits = max(self.depth_bits, (nm_max_m - 1).bit_length())
        self.cmd_layout = data.StructLayout({
            "mode": PEMode,
            "rows": range(max_rows + 1),
            "depth": range(tile_depth + 1),
            "cols": range(cols + 1),
            "tiles": range(max_tiles + 1),
            "nm_n": range(nm_max_m + 1),
            "nm_m": range(nm_max_m + 1),
        })
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
        R, C, L, P = self.rows, self.cols, self.lanes, self.dense_lanes
        pe_rows = []
        first_lut = R * C - self.lut_products  # PEs from this one on (row order) use LUTs
        for r in range(R):
            pe = _PERow(cols=C, width=self.width, acc_width=self.acc_width,
                        depth_bits=self.depth_bits, bank_words=self.bank_words,
                        word_layout=self.word_layout, max_rows=self.max_rows,
                        max_tiles=self.max_tiles,
                        lut_products=[c for c in range(C) if r * C + c >= first_lut])
            pe_rows.append(pe)
        # The inputs every PE row takes alike, wired to all of them directly (placed at the
        # end, with :func:`instantiate`). Each row holds its own copy of the dense tiles:
        # Yosys would replicate one memory with a read port per row the same way, but its
        # memory mapping dies (WebAssembly build, 16 read ports) on a 16x16 array.
        shared = {}

        cmd = Signal(self.cmd_layout)
        error = Signal(ERROR_LAYOUT)
        # Any error flag, as its own register (set with the flag): it stops every PE row, so
        # an OR of the flags would sit in front of that fan-out.
        failed = Signal()

        def flag(name):
            m.d.sync += [getattr(error, name).eq(1), failed.eq(1)]
        cycles = Signal(COUNTER_WIDTH)
        busy = Signal(COUNTER_WIDTH)
        macs = Signal(COUNTER_WIDTH)  # entries times columns, counted as entries issue
        stalls = Signal(COUNTER_WIDTH)
        clear = Signal()  # a job starts this cycle
        shared.update(clear=clear, tiles=cmd.tiles)

        # -- command check ------------------------------------------------------------------
        c = self.cmd.payload
        bad_cmd = Signal()
        m.d.comb += bad_cmd.eq(
            (c.rows == 0) | (c.depth == 0) | (c.cols == 0) | (c.tiles == 0)
            | ~((c.mode == PEMode.DENSE) | (c.mode == PEMode.SPARSE) | (c.mode == PEMode.NM))
            | ((c.mode == PEMode.NM) & ((c.nm_n == 0) | (c.nm_n > c.nm_m))))

        # -- sparse loader: deal each row to the least loaded PE row --------------------------
        loads = [Signal(range(self.bank_words * L + 1), name=f"load{r}") for r in range(R)]
        _, least = _argmin(m, loads)
        row_start = Signal(init=1)
        bank = Signal(_index(R))
        rows_seen = Signal(range(self.max_rows + 1))
        pos = Signal(range(self.tile_depth + L + 1))  # entries so far in the row (DENSE index)
        beat = self.sparse.payload
        target = Signal(_index(R))
        m.d.comb += target.eq(Mux(row_start, least, bank))

        word = Signal(self.word_layout)
        lane_index = [Signal(range(self.tile_depth + self.nm_max_m * (L + 1) + L + 1),
                             name=f"lane_index{i}") for i in range(L)]
        # NM: lane i of a row's first beat is entry i, in group i // n at index i % n; each
        # later beat is L entries on, so every lane's group position moves by L % n (one group
        # more when that wraps) and its group's base by (L // n) * m. Per lane: a register, an
        # adder and a comparison, with the tables set when the command is taken (no chain
        # over the lanes, no multiplier).
        base_shape = range(self.tile_depth + self.nm_max_m * (L + 1) + 1)
        taken_shape = range(self.nm_max_m + 1)
        lane_taken = [Signal(taken_shape, name=f"nm_taken{i}") for i in range(L)]
        lane_base = [Signal(base_shape, name=f"nm_base{i}") for i in range(L)]
        first_taken = [Signal(taken_shape, name=f"nm_first_taken{i}") for i in range(L)]
        first_base = [Signal(base_shape, name=f"nm_first_base{i}") for i in range(L)]
        step = Signal(taken_shape)               # L % n
        step_base = Signal(base_shape)           # (L // n) * m
        step_base_wrap = Signal(base_shape)      # (L // n + 1) * m
        nm_bases, nm_next = [], []
        for i in range(L):
            taken_now = Signal(taken_shape, name=f"nm_taken_now{i}")
            base_now = Signal(base_shape, name=f"nm_base_now{i}")
            m.d.comb += [taken_now.eq(Mux(row_start, first_taken[i], lane_taken[i])),
                         base_now.eq(Mux(row_start, first_base[i], lane_base[i]))]
            nm_bases.append(base_now)
            moved = Signal(range(2 * self.nm_max_m + 1), name=f"nm_moved{i}")
            m.d.comb += moved.eq(taken_now + step)
            wraps = Signal(name=f"nm_wraps{i}")
            m.d.comb += wraps.eq(moved >= cmd.nm_n)
            nm_next += [lane_taken[i].eq(Mux(wraps, moved - cmd.nm_n, moved)),
                        lane_base[i].eq(base_now + Mux(wraps, step_base_wrap, step_base))]

        def set_nm_tables(n, stride):
            """Set the NM tables for group size ``n`` and stride ``stride`` (a command's)."""
            # k * stride for every constant k the tables take (0 to L + 1), each with shifts
            # and adders, built once and selected by the group size
            multiples = []
            for k in range(L + 2):
                terms = [stride << b for b in range(k.bit_length()) if k >> b & 1]
                multiple = Signal(base_shape, name=f"nm_stride_times{k}")
                m.d.comb += multiple.eq(sum(terms[1:], terms[0]) if terms else 0)
                multiples.append(multiple)
            with m.Switch(n):
                for size in range(1, self.nm_max_m + 1):
                    with m.Case(size):
                        m.d.sync += [step.eq(L % size), step_base.eq(multiples[L // size]),
                                     step_base_wrap.eq(multiples[L // size + 1])]
                        for i in range(L):
                            m.d.sync += [first_taken[i].eq(i % size),
                                         first_base[i].eq(multiples[i // size])]

        for i in range(L):
            with m.Switch(cmd.mode):
                with m.Case(PEMode.DENSE):
                    m.d.comb += lane_index[i].eq(pos + i)
                with m.Case(PEMode.SPARSE):
                    m.d.comb += lane_index[i].eq(beat.index[i])
                with m.Case(PEMode.NM):
                    m.d.comb += lane_index[i].eq(nm_bases[i] + beat.index[i])
            m.d.comb += [word.index[i].eq(lane_index[i]), word.value[i].eq(beat.value[i])]
        m.d.comb += [word.count.eq(beat.count), word.row_last.eq(beat.row_last),
                     word.row.eq(rows_seen)]
        count_bad = Signal()  # a count field wider than needed can say more than L
        if (1 << len(beat.count)) - 1 > L:
            m.d.comb += count_bad.eq(beat.count > L)
        index_bad = Signal()
        m.d.comb += index_bad.eq(
            count_bad
            | Cat(*[(i < beat.count) & (lane_index[i] >= cmd.depth) for i in range(L)]).any()
            | ((cmd.mode == PEMode.NM) & Cat(
                *[(i < beat.count) & (beat.index[i] >= cmd.nm_m) for i in range(L)]).any()))
        row_end_pos = Signal.like(pos)
        m.d.comb += row_end_pos.eq(pos + beat.count)
        dense_row_bad = Signal()
        m.d.comb += dense_row_bad.eq((cmd.mode == PEMode.DENSE) & Mux(
            beat.row_last, row_end_pos != cmd.depth, row_end_pos > cmd.depth))
        target_full = Signal()
        m.d.comb += target_full.eq(Cat(*[pe.full for pe in pe_rows]).bit_select(target, 1))
        beat_cost = Signal(range(L + 1))
        m.d.comb += beat_cost.eq(Mux(beat.count == 0, 1, beat.count))

        # -- dense loader: tiles into the free half of every PE row's buffer ------------------
        parts = C // P
        d_tile = Signal(range(self.max_tiles + 1))
        d_row = Signal(self.depth_bits)
        d_part = Signal(_index(parts))
        staging = Signal(data.ArrayLayout(signed(self.width), C))
        pending = [Signal(R, name=f"pending{h}") for h in range(2)]  # PE rows still using a half
        dense_on = Signal()     # the job takes dense beats
        dense_skip = Signal()   # ... and drops them (the job failed)
        half_free = Signal()
        m.d.comb += half_free.eq(Mux(d_tile[0], pending[1], pending[0]) == 0)
        m.d.comb += self.dense.ready.eq(dense_on & (d_tile < cmd.tiles)
                                        & (dense_skip | half_free))
        dbeat = self.dense.payload
        d_word = Signal(data.ArrayLayout(signed(self.width), C))
        for col in range(C):
            part, lane = divmod(col, P)
            incoming = Mux(d_part == part, dbeat.values[lane], staging[col]) if parts > 1 \
                else dbeat.values[lane]
            m.d.comb += d_word[col].eq(Mux(col < cmd.cols, incoming, 0))
        row_complete = Signal()
        m.d.comb += row_complete.eq(d_part == parts - 1)
        tile_complete = Signal()
        m.d.comb += tile_complete.eq(row_complete & (d_row == cmd.depth - 1))
        d_fire = Signal()
        m.d.comb += d_fire.eq(self.dense.valid & self.dense.ready)
        tile_loaded, d_we, d_waddr = Signal(), Signal(), Signal(self.depth_bits + 1)
        m.d.comb += [tile_loaded.eq(d_fire & tile_complete & ~dense_skip),
                     d_we.eq(d_fire & row_complete & ~dense_skip),
                     d_waddr.eq(Cat(d_row, d_tile[0]))]
        shared.update(tile_loaded=tile_loaded, d_we=d_we, d_waddr=d_waddr, d_wdata=d_word)
        with m.If(d_fire):
            if parts > 1:
                for lane in range(P):
                    with m.Switch(d_part):
                        for part in range(parts):
                            with m.Case(part):
                                m.d.sync += staging[part * P + lane].eq(dbeat.values[lane])
            with m.If(dbeat.last != tile_complete):
                flag("dense_last")
            with m.If(row_complete):
                m.d.sync += d_part.eq(0)
                with m.If(tile_complete):
                    m.d.sync += [d_row.eq(0), d_tile.eq(d_tile + 1)]
                with m.Else():
                    m.d.sync += d_row.eq(d_row + 1)
            with m.Else():
                m.d.sync += d_part.eq(d_part + 1)
        for h in range(2):
            released = Cat(*[pe.tile_done & (pe.tile_done_half == h) for pe in pe_rows])
            claimed = d_fire & tile_complete & ~dense_skip & (d_tile[0] == h)
            with m.If(clear):
                m.d.sync += pending[h].eq(0)
            with m.Elif(claimed):
                m.d.sync += pending[h].eq((1 << R) - 1)
            with m.Else():
                m.d.sync += pending[h].eq(pending[h] & ~released)

        # -- result lanes: PE rows r, r+Q, r+2Q... share lane r % Q, round robin --------------
        Q = self.result_lanes
        # each slot and ``last`` its own register: statements on one wide signal cost
        # Amaranth time in proportion to its width
        slots = [Signal(self.slot_layout, name=f"lane{q}_slot") for q in range(self.result_lanes)]
        out_last = Signal()
        out_valid = Signal()
        m.d.comb += [self.result.payload.eq(Cat(*slots, out_last)),  # the layout's order
                     self.result.valid.eq(out_valid)]
        load_out = Signal()  # the output register takes new results this cycle
        m.d.comb += load_out.eq(~out_valid | self.result.ready)
        lane_moves = []
        for q in range(Q):
            members = pe_rows[q::Q]
            n = len(members)
            holds = Signal(n, name=f"lane{q}_holds")
            m.d.comb += holds.eq(Cat(*[pe.hold_valid for pe in members]))
            last_grant = Signal(_index(n), name=f"lane{q}_last")
            grant = Signal(_index(n), name=f"lane{q}_grant")
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
            for i, pe in enumerate(members):
                m.d.comb += pe.take.eq(move & (grant == i))
            slot = slots[q]
            with m.If(load_out):
                m.d.sync += slot.valid.eq(holds.any())
            with m.If(move):
                m.d.sync += last_grant.eq(grant)
                with m.Switch(grant):
                    for i, pe in enumerate(members):
                        with m.Case(i):
                            m.d.sync += [slot.row.eq(pe.hold_row), slot.tile.eq(pe.hold_tile),
                                         slot.values.eq(pe.hold_values)]
        moved = Signal(range(Q + 1))
        m.d.comb += moved.eq(sum(lane_moves))
        results_out = Signal(range(self.max_rows * self.max_tiles + 1))
        total = Signal.like(results_out)  # rows * tiles, registered with the command
        with m.If(load_out):
            m.d.sync += [out_valid.eq(moved != 0), results_out.eq(results_out + moved),
                         out_last.eq((moved != 0) & (results_out + moved == total))]

        # -- counters ------------------------------------------------------------------------
        issues = Cat(*[pe.issue for pe in pe_rows])
        real = Cat(*[pe.issue_entry for pe in pe_rows])
        stalled = Cat(*[pe.stall for pe in pe_rows])

        def popcount(bits):
            return sum(bits[i] for i in range(len(bits)))

        # -- job sequence --------------------------------------------------------------------
        # The PE rows compute from the start of the sparse load; a failure stops them at once
        # (results already out are void: ``done.error`` says so).
        computing = Signal()
        loaded = Signal()
        run = Signal()
        m.d.comb += run.eq(computing & ~failed)
        shared.update(run=run, loaded=loaded, abort=failed)
        # The counters add the PE rows' flags a cycle late (registered first: the flags come
        # from the banks' outputs); ``done`` reports them with the flags still to be added, so
        # its payload is complete and steady from its first cycle.
        counted = [Signal(R, name=f"counted_{name}") for name in ("issues", "real", "stalled")]
        for flags, reg in zip((issues, real, stalled), counted):
            m.d.sync += reg.eq(Mux(computing, flags, 0))
        issues_late, real_late, stalled_late = counted
        busy_now, macs_now, stalls_now = (
            Signal(COUNTER_WIDTH, name=f"{name}_now") for name in ("busy", "macs", "stalls"))
        m.d.comb += [busy_now.eq(busy + popcount(issues_late)),
                     macs_now.eq(macs + sum(Mux(real_late[r], cmd.cols, 0) for r in range(R))),
                     stalls_now.eq(stalls + popcount(stalled_late))]
        m.d.sync += [busy.eq(busy_now), macs.eq(macs_now), stalls.eq(stalls_now)]
        m.d.comb += self.done.payload.error.eq(error)
        m.d.comb += [self.done.payload.cycles.eq(cycles), self.done.payload.busy.eq(busy_now),
                     self.done.payload.macs.eq(macs_now),
                     self.done.payload.stalls.eq(stalls_now)]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.comb += clear.eq(1)
                    m.d.sync += [
                        cmd.eq(c), total.eq(c.rows * c.tiles), error.eq(0), failed.eq(0),
                        cycles.eq(1), busy.eq(0), macs.eq(0),
                        stalls.eq(0), row_start.eq(1), rows_seen.eq(0), pos.eq(0),
                        d_tile.eq(0), d_row.eq(0),
                        d_part.eq(0), results_out.eq(0),
                        dense_skip.eq(0), loaded.eq(0),
                    ]
                    m.d.sync += [load.eq(0) for load in loads]
                    set_nm_tables(c.nm_n, c.nm_m)
                    with m.If(bad_cmd):
                        flag("command")
                        m.next = "DONE"
                    with m.Else():
                        m.next = "LOAD"
            with m.State("LOAD"):
                m.d.sync += cycles.eq(cycles + 1)
                m.d.comb += [self.sparse.ready.eq(1), dense_on.eq(1), computing.eq(1)]
                with m.If(self.sparse.valid):
                    for r, pe in enumerate(pe_rows):
                        m.d.comb += pe.bank_we.eq(target == r)
                    with m.Switch(target):
                        for r in range(R):
                            with m.Case(r):
                                m.d.sync += loads[r].eq(loads[r] + beat_cost)
                    m.d.sync += [bank.eq(target), row_start.eq(beat.row_last)]
                    with m.If(index_bad):
                        flag("index")
                    with m.If(dense_row_bad):
                        flag("rows")
                    with m.If(target_full):
                        flag("bank_full")
                    with m.If(rows_seen >= cmd.rows):
                        flag("rows")  # a row beyond the declared count
                    with m.If(beat.row_last):
                        m.d.sync += pos.eq(0)
                        with m.If(rows_seen != self.max_rows):
                            m.d.sync += rows_seen.eq(rows_seen + 1)
                    with m.Else():
                        m.d.sync += pos.eq(row_end_pos)
                    m.d.sync += nm_next  # (a row's first beat starts from the tables)
                    with m.If(beat.last):
                        with m.If(~beat.row_last | (rows_seen + 1 != cmd.rows)):
                            flag("rows")
                        m.d.sync += loaded.eq(1)
                        m.next = "COMPUTE"
            with m.State("COMPUTE"):
                m.d.sync += cycles.eq(cycles + 1)
                m.d.comb += [dense_on.eq(1), computing.eq(1)]
                with m.If(failed):
                    m.d.sync += dense_skip.eq(1)
                    m.next = "SKIP"
                with m.Elif((results_out == total) & (~out_valid | self.result.ready)):
                    m.next = "DONE"
            with m.State("SKIP"):
                # The job failed: take its remaining dense beats and let the output drain.
                m.d.sync += cycles.eq(cycles + 1)
                m.d.comb += dense_on.eq(1)
                with m.If((d_tile == cmd.tiles) & ~out_valid):
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += self.done.valid.eq(1)
                with m.If(self.done.ready):
                    m.next = "IDLE"

        shared["bank_wdata"] = word
        for r, pe in enumerate(pe_rows):
            m.submodules[f"pe_row{r}"] = instantiate(pe, pe.params, inputs=shared)
        return m
