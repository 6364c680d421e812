"""One row of the PE array (:mod:`hw.pe_array`): a bank of sparse rows and a sequencer that
issues one entry a cycle (:class:`RowSequencer`), feeding a multiply-accumulate pipeline over
the row's copy of the dense tiles (:class:`RowMAC`); :class:`PERow` joins them."""

from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.perf_model import RESULT_FIFO_DEPTH

from .arith import logic_product
from .memory import SimpleDualPortMemory
from .pe_dense_loader import dense_word_bits
from .pe_job import bank_depth, index_shape
from .word_prefetch import WordPrefetch

__all__ = ["row_result_layout", "entry_layout", "RowSequencer", "RowMAC", "PERow"]


def row_result_layout(*, cols, acc_width, max_rows, max_tiles):
    """A PE row's result: the sparse ``row`` (stream order), the dense ``tile`` and the row's
    ``cols`` exact sums."""
    return data.StructLayout({
        "row": range(max_rows),
        "tile": range(max_tiles),
        "values": data.ArrayLayout(signed(acc_width), cols),
    })


def entry_layout(*, width, depth_bits, max_rows, max_tiles):
    """An entry the sequencer issues: its ``index`` into the dense tile and its ``value``
    (0 for an empty row's slot), ``last`` of its row, the sparse ``row`` and the dense ``tile``
    (its low bit picks the half of the dense buffer)."""
    return data.StructLayout({
        "index": depth_bits,
        "value": signed(width),
        "last": 1,
        "row": range(max_rows),
        "tile": range(max_tiles + 1),
    })


class RowSequencer(wiring.Component):
    """A PE row's bank of sparse rows and the sequencer that issues its entries, one a cycle,
    for every dense tile of the job.

    The bank has two halves of ``bank_words``: the next job's rows load into one while this
    job's are worked on from the other. The job's half is read while the loader still fills it
    (tile 0 overlaps the sparse load) through a bounded prefetch queue
    (:class:`hw.word_prefetch.WordPrefetch`): it reads only words already written, and once the
    load is complete (``loaded``) it goes round the half again for the next tile. A tile ends
    at the half's last word only once the load is complete. A row's last entry issues only
    while the result FIFO behind it has a place left.

    Parameters
    ----------
    word_layout : Layout
        A bank word (the array's ``word_layout``): ``index[lanes]``, ``value[lanes]``,
        ``count``, ``row_last``, ``row``.
    bank_words : int
        Words a job may take in the bank (each half holds that many).
    entry_layout : Layout
        Of ``entry`` (:func:`entry_layout`).
    max_tiles : int
        Most dense tiles in a job.

    Attributes
    ----------
    load_half : In(1)
        The half the sparse loader writes.
    bank_we, bank_wdata : In
        Append ``bank_wdata`` to half ``load_half`` (ignored when it holds ``bank_words``).
    full : Out(1)
        Half ``load_half`` holds ``bank_words`` words.
    start, start_half : In(1)
        The job in half ``start_half`` starts computing: forget the sequence.
    release : In(1)
        The computing job is over: the words of its half are forgotten (the half is empty).
    kill : In(1)
        A job starts or failed: no result in flight may surface.
    run : In(1)
        The job computes.
    loaded : In(1)
        The job's sparse load is complete: its half is final.
    tiles : In
        Dense tiles of the job.
    tile_loaded : In(1)
        The dense loader completed a tile this cycle.
    taken : In(1)
        A result leaves the row's FIFO this cycle.
    entry : Out(stream.Signature(entry_layout, always_ready=True))
        The entry issued this cycle.
    issue, issue_entry, stall : Out(1)
        An entry issued; one that is a real entry (not an empty row's slot); the job has work
        for the row and none issued nor did a tile end.
    tile_done, tile_done_half : Out(1)
        The row finished a tile this cycle, in that half of the dense buffer.
    """

    def __init__(self, *, word_layout, bank_words, entry_layout, max_tiles):
        self._word_layout = word_layout
        self._bank_words = bank_words
        super().__init__({
            "load_half": In(1),
            "bank_we": In(1), "bank_wdata": In(word_layout), "full": Out(1),
            "start": In(1), "start_half": In(1), "release": In(1),
            "kill": In(1), "run": In(1), "loaded": In(1),
            "tiles": In(range(max_tiles + 1)), "tile_loaded": In(1), "taken": In(1),
            "entry": Out(stream.Signature(entry_layout, always_ready=True)),
            "issue": Out(1), "issue_entry": Out(1), "stall": Out(1),
            "tile_done": Out(1), "tile_done_half": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        word_layout = self._word_layout
        # Two halves, each a power of two words, addressed by the half's bit on top.
        half_bits = (self._bank_words - 1).bit_length()
        m.submodules.bank = bank = SimpleDualPortMemory(shape=word_layout,
                                                        depth=bank_depth(self._bank_words))
        bank_wp, bank_rp = bank.write_port(), bank.read_port()
        # Words in each half (the loader's), and the computing job's half and its words (and
        # that less one) as registers of their own, so no multiplexer or subtractor lies in
        # front of the sequencer's comparisons.
        held = [Signal(range(self._bank_words + 1), name=f"words{h}") for h in range(2)]
        half = Signal()
        words = Signal.like(held[0])
        words_less_one = Signal(range(-1, self._bank_words))
        load_words = Signal.like(held[0])
        m.d.comb += [load_words.eq(Mux(self.load_half, held[1], held[0])),
                     self.full.eq(Mux(self.load_half, held[1] == self._bank_words,
                                      held[0] == self._bank_words))]
        written = Signal()
        m.d.comb += [written.eq(self.bank_we & ~self.full),
                     bank_wp.addr.eq(Cat(load_words[:half_bits], self.load_half)),
                     bank_wp.data.eq(self.bank_wdata), bank_wp.en.eq(written)]
        for h in range(2):
            with m.If(self.release & (half == h)):
                m.d.sync += held[h].eq(0)
            with m.Elif(written & (self.load_half == h)):
                m.d.sync += held[h].eq(held[h] + 1)
        with m.If(self.start):
            # (The write of this cycle only selects among counts worked out from registers.)
            start_words = Signal.like(held[0])
            m.d.comb += start_words.eq(Mux(self.start_half, held[1], held[0]))
            with m.If(written & (self.load_half == self.start_half)):
                m.d.sync += [words.eq(start_words + 1), words_less_one.eq(start_words)]
            with m.Else():
                m.d.sync += [words.eq(start_words), words_less_one.eq(start_words - 1)]
            m.d.sync += half.eq(self.start_half)
        with m.Elif(written & (self.load_half == half)):
            m.d.sync += [words.eq(words + 1), words_less_one.eq(words)]

        # The sequencer works from the prefetch queue's registers, so the bank's output (a
        # block RAM's, on larger arrays) reaches no address or decision.
        lanes = word_layout["index"].shape.length
        m.submodules.ahead = ahead = WordPrefetch(
            width=word_layout.size, addr_width=half_bits, bounded=True)
        m.d.comb += [
            ahead.start.eq(self.start), ahead.start_addr.eq(0),
            ahead.limit.eq(words), ahead.wrap.eq(self.loaded),
            ahead.mem_data.eq(bank_rp.data), bank_rp.addr.eq(Cat(ahead.mem_addr, half)),
        ]
        tile = Signal.like(self.tiles)
        addr = Signal(range(self._bank_words + 1))  # of the word at the queue's head
        lane = Signal(index_shape(lanes))
        word_ok = Signal()
        m.d.comb += word_ok.eq(ahead.count != 0)
        # Rows whose last entry has issued and whose result has not been taken; at most the
        # depth of the result FIFO, so a result always has a place to go.
        outstanding = Signal(range(RESULT_FIFO_DEPTH + 1))

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
        # From the register alone: a result taken frees its place for the cycle after, so the
        # result lanes' arbitration does not reach the issue logic.
        credit = Signal()
        m.d.comb += credit.eq(outstanding < RESULT_FIFO_DEPTH)
        issue = Signal()
        m.d.comb += issue.eq(active & ready_tile & word_ok & (~entry_row_last | credit))
        tile_end = Signal()
        m.d.comb += tile_end.eq(active & ready_tile & (
            at_end | (issue & last_in_word & self.loaded & (addr == words_less_one))))
        m.d.comb += [
            self.issue.eq(issue),
            self.issue_entry.eq(issue & (word.count != 0)),
            self.stall.eq(active & ~issue & ~tile_end),
            ahead.pop.eq(issue & last_in_word),
            self.tile_done.eq(tile_end),
            self.tile_done_half.eq(tile[0]),
        ]
        m.d.comb += [
            self.entry.valid.eq(issue),
            self.entry.payload.index.eq(word.index[lane]),
            self.entry.payload.value.eq(Mux(word.count == 0, 0, word.value[lane])),
            self.entry.payload.last.eq(entry_row_last),
            self.entry.payload.row.eq(word.row),
            self.entry.payload.tile.eq(tile),
        ]

        with m.If(self.start):
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
        with m.If(self.kill):
            m.d.sync += outstanding.eq(0)
        with m.Else():
            m.d.sync += outstanding.eq(outstanding + (issue & entry_row_last) - self.taken)
        return m


class RowMAC(wiring.Component):
    """A PE row's multiply-accumulate pipeline: its copy of the dense tiles, ``cols``
    multipliers and accumulators, and a result FIFO of
    :data:`golden.perf_model.RESULT_FIFO_DEPTH` entries.

    Four stages: read the dense row at the entry's index; register it (the tile memory's
    output, a block RAM's on larger arrays, goes to a register, not through a multiplier);
    multiply, into registers; accumulate. A row's last entry moves the sums into the FIFO.
    With ``dense_rows`` above 1 the memory's words hold that many rows, and a fifth stage,
    after the word's register, picks the entry's row into the multipliers' input register.

    Parameters
    ----------
    cols, width, acc_width : int
        Columns, operand width, accumulator width.
    depth_bits : int
        Index bits of a dense tile's rows.
    dense_rows : int
        Dense rows in one word of the tile memory (1, 2, 4 or 8).
    entry_layout, result_layout : Layout
        Of ``entry`` (:func:`entry_layout`) and of ``result``'s payload
        (:func:`row_result_layout`).
    lut_products : iterable of int
        Columns whose products are built from LUTs (:func:`hw.arith.logic_product`).

    Attributes
    ----------
    dense_we, dense_waddr, dense_wdata : In
        Write port of the dense-tile memory (two halves of
        :func:`hw.pe_dense_loader.dense_word_bits` address bits).
    entry : In(stream.Signature(entry_layout, always_ready=True))
        The entry issued this cycle.
    kill : In(1)
        Drop everything in flight and the results held.
    result : Out(stream.Signature(result_layout.size))
        The FIFO's head (its depth is what the sequencer's credit counts), its payload laid
        out as ``result_layout``.
    """

    def __init__(self, *, cols, width, acc_width, depth_bits, entry_layout, result_layout,
                 dense_rows=1, lut_products=()):
        self._cols = cols
        self._width = width
        self._depth_bits = depth_bits
        self._dense_rows = dense_rows
        self._word_bits = dense_word_bits(depth_bits, dense_rows)
        self._lut_products = frozenset(lut_products)
        self._tile_shape = data.ArrayLayout(signed(width), cols)
        self._word_shape = data.ArrayLayout(signed(width), cols * dense_rows)
        super().__init__({
            "dense_we": In(1), "dense_waddr": In(self._word_bits + 1),
            "dense_wdata": In(self._word_shape),
            "entry": In(stream.Signature(entry_layout, always_ready=True)),
            "kill": In(1),
            "result": Out(stream.Signature(result_layout.size)),
        })
        self._result_layout = result_layout

    def elaborate(self, platform):
        m = Module()
        m.submodules.dense_tiles = dense_tiles = SimpleDualPortMemory(
            shape=self._word_shape, depth=2 << self._word_bits)
        dense_wp, dense_rp = dense_tiles.write_port(), dense_tiles.read_port()
        m.d.comb += [dense_wp.en.eq(self.dense_we), dense_wp.addr.eq(self.dense_waddr),
                     dense_wp.data.eq(self.dense_wdata)]
        kill, entry = self.kill, self.entry.payload
        out = data.View(self._result_layout, self.result.payload)
        value_shape = signed(self._width)

        # -- stage 0 -> 1: read the dense word holding the entry's row
        G = self._dense_rows
        sel_bits = G.bit_length() - 1
        word = Signal(self._word_bits)
        m.d.comb += [word.eq(entry.index >> sel_bits),
                     dense_rp.addr.eq(Cat(word, entry.tile[0]))]
        s1_valid, s1_last = Signal(), Signal()
        s1_value = Signal(value_shape)
        s1_row, s1_tile = Signal.like(out.row), Signal.like(out.tile)
        m.d.sync += [s1_valid.eq(self.entry.valid & ~kill), s1_last.eq(entry.last),
                     s1_value.eq(entry.value), s1_row.eq(entry.row), s1_tile.eq(entry.tile)]

        # -- stage 1 -> 1b: register the dense word
        dense_word = Signal(self._word_shape)
        s1b_valid, s1b_last = Signal(), Signal()
        s1b_value = Signal(value_shape)
        s1b_row, s1b_tile = Signal.like(s1_row), Signal.like(s1_tile)
        m.d.sync += [dense_word.eq(dense_rp.data), s1b_valid.eq(s1_valid & ~kill),
                     s1b_last.eq(s1_last), s1b_value.eq(s1_value), s1b_row.eq(s1_row),
                     s1b_tile.eq(s1_tile)]
        if G > 1:
            # -- stage 1b -> 1c: the entry's row of the word, registered (the multipliers take
            # registers, not a multiplexer)
            s1_sel, s1b_sel = Signal(sel_bits), Signal(sel_bits)
            m.d.sync += [s1_sel.eq(entry.index), s1b_sel.eq(s1_sel)]
            dense_row = Signal(self._tile_shape)
            rows = [dense_word.as_value()[g * self._tile_shape.size:
                                          (g + 1) * self._tile_shape.size] for g in range(G)]
            m.d.sync += dense_row.eq(Array(rows)[s1b_sel])
            valid_1c, last_1c = Signal(), Signal()
            value_1c = Signal(value_shape)
            row_1c, tile_1c = Signal.like(s1_row), Signal.like(s1_tile)
            m.d.sync += [valid_1c.eq(s1b_valid & ~kill), last_1c.eq(s1b_last),
                         value_1c.eq(s1b_value), row_1c.eq(s1b_row), tile_1c.eq(s1b_tile)]
            s1b_valid, s1b_last, s1b_value, s1b_row, s1b_tile = (
                valid_1c, last_1c, value_1c, row_1c, tile_1c)
        else:
            dense_row = dense_word

        # -- stage 1b -> 2: multiply (registered products)
        s2_valid, s2_last = Signal(), Signal()
        s2_row, s2_tile = Signal.like(s1_row), Signal.like(s1_tile)
        products = [Signal(signed(2 * self._width), name=f"product{c}")
                    for c in range(self._cols)]
        m.d.sync += [s2_valid.eq(s1b_valid & ~kill), s2_last.eq(s1b_last), s2_row.eq(s1b_row),
                     s2_tile.eq(s1b_tile)]
        for c in range(self._cols):
            if c in self._lut_products:
                m.d.sync += products[c].eq(logic_product(
                    m, s1b_value, dense_row[c], name=f"product{c}"))
            else:
                m.d.sync += products[c].eq(s1b_value * dense_row[c])

        # -- stage 2 -> 3: accumulate; a row's last entry moves the sums into the FIFO
        acc_shape = out.values.shape().elem_shape
        first = Signal(init=1)
        accs = [Signal(acc_shape, name=f"acc{c}") for c in range(self._cols)]
        sums = [Signal(acc_shape, name=f"sum{c}") for c in range(self._cols)]
        for c in range(self._cols):
            m.d.comb += sums[c].eq(Mux(first, 0, accs[c]) + products[c])
        with m.If(kill):
            m.d.sync += first.eq(1)
        with m.Elif(s2_valid):
            with m.If(s2_last):
                m.d.sync += first.eq(1)
            with m.Else():
                m.d.sync += first.eq(0)
                m.d.sync += [accs[c].eq(sums[c]) for c in range(self._cols)]

        # The result FIFO: entry 0 is what the result lane sees. A taken result shifts the
        # rest down; a finished row goes to the first place left free.
        depth = RESULT_FIFO_DEPTH
        fifo_layout = data.StructLayout({"row": s2_row.shape(), "tile": s2_tile.shape(),
                                         "values": out.values.shape()})
        entries = [Signal(fifo_layout, name=f"result{i}") for i in range(depth)]
        filled = Signal(range(depth + 1))
        taken = Signal()
        m.d.comb += [taken.eq(self.result.ready & (filled != 0)),
                     self.result.valid.eq(filled != 0),
                     out.row.eq(entries[0].row), out.tile.eq(entries[0].tile),
                     out.values.eq(entries[0].values)]
        finish = Signal()  # a row's sums are complete this cycle
        m.d.comb += finish.eq(s2_valid & s2_last & ~kill)
        kept = Signal(range(depth + 1))  # entries left after this cycle's take
        m.d.comb += kept.eq(filled - taken)
        new_entry = Signal(fifo_layout)
        m.d.comb += [new_entry.row.eq(s2_row), new_entry.tile.eq(s2_tile),
                     new_entry.values.eq(Cat(*sums))]
        for i in range(depth):
            with m.If(finish & (kept == i)):
                m.d.sync += entries[i].eq(new_entry)
            with m.Elif(taken):
                if i + 1 < depth:
                    m.d.sync += entries[i].eq(entries[i + 1])
        with m.If(kill):
            m.d.sync += filled.eq(0)
        with m.Else():
            m.d.sync += filled.eq(kept + finish)
        return m


class PERow(wiring.Component):
    """One PE row: a :class:`RowSequencer` issuing the entries of the sparse rows dealt to it
    into a :class:`RowMAC`. The array places equal rows as one Verilog module
    (:func:`hw.hierarchy.instantiate`), with the inputs every row takes alike shared.

    Parameters
    ----------
    cols, width, acc_width : int
        Columns, operand width, accumulator width.
    depth_bits : int
        Index bits of a dense tile's rows.
    bank_words : int
        Words a job may take in the bank (each of its two halves holds that many).
    word_layout : Layout
        A bank word (the array's ``word_layout``).
    max_rows, max_tiles : int
        Most sparse rows and dense tiles in a job.
    dense_rows : int
        Dense rows in one word of the tile memory (:class:`RowMAC`).
    lut_products : iterable of int
        Columns whose products are built from LUTs (:func:`hw.arith.logic_product`).

    Attributes
    ----------
    load_half, bank_we, bank_wdata : In
        The half of the bank the sparse loader writes; append a word to it.
    dense_we, dense_waddr, dense_wdata : In
        Write port of the row's copy of the dense tiles (written by the dense loader, the
        same for every row).
    start, start_half, release : In(1)
        The job in that half of the bank starts computing; the job is over (its half empties).
    run_next : In(1)
        The job computes from the next cycle on. Every row keeps it in a register of its own,
        so no logic of the array lies in front of each row's issue decision.
    loaded, failed : In(1)
        The job's sparse load is complete (its half is final); it failed (drop the results).
    tiles : In
        Dense tiles of the job.
    tile_loaded : In(1)
        The dense loader completed a tile this cycle.
    full : Out(1)
        The half being loaded is full.
    tile_done, tile_done_half : Out(1)
        The row finished a tile this cycle, in that half of the dense buffer.
    issue, issue_entry, stall : Out(1)
        An entry issued; a real entry (not an empty row's slot) issued; the row had work and
        could not issue.
    result : Out(stream.Signature(row_result_layout(...).size))
        A sparse row's sums for one dense tile, laid out as :func:`row_result_layout`.
    """

    def __init__(self, *, cols, width, acc_width, depth_bits, bank_words, word_layout,
                 max_rows, max_tiles, dense_rows=1, lut_products=()):
        #: What the row is built from (equal rows share one Verilog module: hw.hierarchy).
        self.params = {"cols": cols, "width": width, "acc_width": acc_width,
                       "depth_bits": depth_bits, "bank_words": bank_words,
                       "word_layout": repr(word_layout), "max_rows": max_rows,
                       "max_tiles": max_tiles, "dense_rows": dense_rows,
                       "lut_products": sorted(lut_products)}
        self._sequencer = dict(word_layout=word_layout, bank_words=bank_words,
                               max_tiles=max_tiles)
        self._mac = dict(cols=cols, width=width, acc_width=acc_width, depth_bits=depth_bits,
                         dense_rows=dense_rows,
                         lut_products=lut_products)
        self._entry_layout = entry_layout(width=width, depth_bits=depth_bits,
                                          max_rows=max_rows, max_tiles=max_tiles)
        self._result_layout = row_result_layout(cols=cols, acc_width=acc_width,
                                                max_rows=max_rows, max_tiles=max_tiles)
        super().__init__({
            "load_half": In(1), "bank_we": In(1), "bank_wdata": In(word_layout),
            "dense_we": In(1), "dense_waddr": In(dense_word_bits(depth_bits, dense_rows) + 1),
            "dense_wdata": In(data.ArrayLayout(signed(width), cols * dense_rows)),
            "start": In(1), "start_half": In(1), "release": In(1),
            "run_next": In(1), "loaded": In(1), "failed": In(1),
            "tiles": In(range(max_tiles + 1)), "tile_loaded": In(1),
            "full": Out(1),
            "tile_done": Out(1), "tile_done_half": Out(1),
            "issue": Out(1), "issue_entry": Out(1), "stall": Out(1),
            # a plain vector, not a view of the layout: the array reads every row's result,
            # and a view's fields would add a wire per column and row to its Verilog
            "result": Out(stream.Signature(self._result_layout.size)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.sequencer = seq = RowSequencer(entry_layout=self._entry_layout,
                                                    **self._sequencer)
        m.submodules.mac = mac = RowMAC(entry_layout=self._entry_layout,
                                        result_layout=self._result_layout, **self._mac)
        kill = Signal()  # a new job, or this one failed: nothing in flight may surface
        m.d.comb += kill.eq(self.start | self.failed)
        run = Signal()
        m.d.sync += run.eq(self.run_next)
        m.d.comb += [
            seq.load_half.eq(self.load_half), seq.release.eq(self.release),
            seq.bank_we.eq(self.bank_we), seq.bank_wdata.eq(self.bank_wdata),
            seq.start.eq(self.start), seq.start_half.eq(self.start_half), seq.kill.eq(kill),
            seq.run.eq(run),
            seq.loaded.eq(self.loaded), seq.tiles.eq(self.tiles),
            seq.tile_loaded.eq(self.tile_loaded), seq.taken.eq(self.result.ready),
            self.full.eq(seq.full),
            self.tile_done.eq(seq.tile_done), self.tile_done_half.eq(seq.tile_done_half),
            self.issue.eq(seq.issue), self.issue_entry.eq(seq.issue_entry),
            self.stall.eq(seq.stall),
            mac.dense_we.eq(self.dense_we), mac.dense_waddr.eq(self.dense_waddr),
            mac.dense_wdata.eq(self.dense_wdata), mac.kill.eq(kill),
        ]
        wiring.connect(m, seq.entry, mac.entry)
        wiring.connect(m, mac.result, wiring.flipped(self.result))
        return m
