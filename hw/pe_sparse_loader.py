"""The PE array's sparse loader (:mod:`hw.pe_array`): it deals each sparse row to the bank of
the PE row with the least work so far (:class:`SparseLoader`), with each entry's index into the
dense tile worked out for the job's mode (:class:`LaneIndex`)."""

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .pe_job import ERROR_LAYOUT, PEMode, index_shape

__all__ = ["LaneIndex", "SparseLoader"]


#: Up to this many PE rows the least-loaded row is found from the loads' pairwise differences
#: (``R * (R - 1) / 2`` registers, each updated by one adder whose sign says which of its two
#: rows has more work: one carry chain, then the rows' verdicts, before the register); above
#: it from a comparison tree over the loads (``R`` registers, ``log2(R)`` comparisons deep).
PAIRWISE_MAX_ROWS = 8


def _least_by_tree(m, adds, start, load_shape):
    """The least-loaded row after this cycle (lowest index on ties), from each row's load:
    a register per row, ``adds[r]`` added to it this cycle, all cleared on ``start``; a
    comparison tree over the loads as they will be."""
    loads_next = []
    for r, add in enumerate(adds):
        load = Signal(load_shape, name=f"load{r}")
        load_next = Signal(load_shape, name=f"load{r}_next")
        m.d.comb += load_next.eq(Mux(start, 0, load + add))
        m.d.sync += load.eq(load_next)
        loads_next.append(load_next)
    nodes = [(v, Const(i, index_shape(len(adds)))) for i, v in enumerate(loads_next)]
    while len(nodes) > 1:
        merged = []
        for a, b in zip(nodes[0::2], nodes[1::2]):
            take_b = Signal()
            m.d.comb += take_b.eq(b[0] < a[0])
            value, index = Signal.like(a[0]), Signal(index_shape(len(adds)))
            m.d.comb += [value.eq(Mux(take_b, b[0], a[0])), index.eq(Mux(take_b, b[1], a[1]))]
            merged.append((value, index))
        if len(nodes) % 2:
            merged.append(nodes[-1])
        nodes = merged
    return nodes[0][1]


def _least_by_pairs(m, adds, start, load_shape):
    """As :func:`_least_by_tree`, from a register per pair of rows ``i < j``: the load of
    ``j`` less the load of ``i``. Row ``i`` is least once no later row has less work (no
    difference below zero) and every earlier row has more (every difference below zero)."""
    R = len(adds)
    below_zero = {}  # (i, j): row j will have less work than row i
    for i in range(R):
        for j in range(i + 1, R):
            diff = Signal(signed(load_shape.width + 1), name=f"diff{i}_{j}")
            diff_next = Signal.like(diff, name=f"diff{i}_{j}_next")
            m.d.comb += diff_next.eq(Mux(start, 0, diff + adds[j] - adds[i]))
            m.d.sync += diff.eq(diff_next)
            below_zero[i, j] = diff_next[-1]
    wins = Signal(R)  # one-hot: exactly one row is least
    for i in range(R):
        m.d.comb += wins[i].eq(Cat(*[~below_zero[i, j] for j in range(i + 1, R)],
                                   *[below_zero[j, i] for j in range(i)]).all())
    least = Signal(index_shape(R))
    for bit in range(len(least)):
        m.d.comb += least[bit].eq(Cat(*[wins[i] for i in range(R) if i >> bit & 1]).any())
    return least


class LaneIndex(wiring.Component):
    """Each lane's index into the dense tile, for a sparse beat of any mode.

    ``DENSE``: the entry's place in its row (``pos + i``). ``SPARSE``: the index field.
    ``NM``: the offset field plus the base of the entry's group. Lane ``i`` of a row's first
    beat is entry ``i``, in group ``i // n`` at place ``i % n``; each later beat is ``lanes``
    entries on, so every lane's place in its group moves by ``lanes % n`` (one group more when
    that wraps) and its group's base by ``(lanes // n) * m``. Per lane: a register, an adder
    and a comparison, with the tables set when the command is taken (no chain over the lanes,
    no multiplier).

    Parameters
    ----------
    lanes, tile_depth, nm_max_m : int
        Entries a beat, longest reduction, largest ``NM`` group.
    offset_shape : shape-like
        Of a beat's index fields.

    Attributes
    ----------
    start : In(1)
        A command is taken: set the tables for its ``start_n`` and ``start_m``.
    start_n, start_m : In
        The group size and group length of the command taken.
    mode, n : In
        The job's mode and group size.
    row_start : In(1)
        The beat is its row's first.
    pos : In
        Entries of the row before the beat (``DENSE``).
    advance : In(1)
        The beat is taken: move the lanes' groups on.
    offsets : In(ArrayLayout(offset_shape, lanes))
        The beat's index fields.
    index : Out(ArrayLayout(..., lanes))
        Each lane's index into the dense tile.
    """

    def __init__(self, *, lanes, tile_depth, nm_max_m, offset_shape):
        self._lanes, self._nm_max_m = lanes, nm_max_m
        self._base_shape = range(tile_depth + nm_max_m * (lanes + 1) + 1)
        self._taken_shape = range(nm_max_m + 1)
        super().__init__({
            "start": In(1), "start_n": In(self._taken_shape), "start_m": In(self._taken_shape),
            "mode": In(PEMode), "n": In(self._taken_shape),
            "row_start": In(1), "pos": In(range(tile_depth + lanes + 1)), "advance": In(1),
            "offsets": In(data.ArrayLayout(offset_shape, lanes)),
            "index": Out(data.ArrayLayout(
                range(tile_depth + nm_max_m * (lanes + 1) + lanes + 1), lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        L, base_shape, taken_shape = self._lanes, self._base_shape, self._taken_shape
        lane_taken = [Signal(taken_shape, name=f"nm_taken{i}") for i in range(L)]
        lane_base = [Signal(base_shape, name=f"nm_base{i}") for i in range(L)]
        first_taken = [Signal(taken_shape, name=f"nm_first_taken{i}") for i in range(L)]
        first_base = [Signal(base_shape, name=f"nm_first_base{i}") for i in range(L)]
        step = Signal(taken_shape)               # L % n
        step_base = Signal(base_shape)           # (L // n) * m
        step_base_wrap = Signal(base_shape)      # (L // n + 1) * m
        for i in range(L):
            taken_now = Signal(taken_shape, name=f"nm_taken_now{i}")
            base_now = Signal(base_shape, name=f"nm_base_now{i}")
            m.d.comb += [taken_now.eq(Mux(self.row_start, first_taken[i], lane_taken[i])),
                         base_now.eq(Mux(self.row_start, first_base[i], lane_base[i]))]
            moved = Signal(range(2 * self._nm_max_m + 1), name=f"nm_moved{i}")
            m.d.comb += moved.eq(taken_now + step)
            wraps = Signal(name=f"nm_wraps{i}")
            m.d.comb += wraps.eq(moved >= self.n)
            with m.If(self.advance):  # (a row's first beat starts from the tables)
                m.d.sync += [lane_taken[i].eq(Mux(wraps, moved - self.n, moved)),
                             lane_base[i].eq(base_now + Mux(wraps, step_base_wrap, step_base))]
            with m.Switch(self.mode):
                with m.Case(PEMode.DENSE):
                    m.d.comb += self.index[i].eq(self.pos + i)
                with m.Case(PEMode.SPARSE):
                    m.d.comb += self.index[i].eq(self.offsets[i])
                with m.Case(PEMode.NM):
                    m.d.comb += self.index[i].eq(base_now + self.offsets[i])

        # k * stride for every constant k the tables take (0 to L + 1), each with shifts and
        # adders, built once and selected by the group size
        multiples = []
        for k in range(L + 2):
            terms = [self.start_m << b for b in range(k.bit_length()) if k >> b & 1]
            multiple = Signal(base_shape, name=f"nm_stride_times{k}")
            m.d.comb += multiple.eq(sum(terms[1:], terms[0]) if terms else 0)
            multiples.append(multiple)
        with m.If(self.start):
            with m.Switch(self.start_n):
                for size in range(1, self._nm_max_m + 1):
                    with m.Case(size):
                        m.d.sync += [step.eq(L % size), step_base.eq(multiples[L // size]),
                                     step_base_wrap.eq(multiples[L // size + 1])]
                        for i in range(L):
                            m.d.sync += [first_taken[i].eq(i % size),
                                         first_base[i].eq(multiples[i // size])]
        return m


class SparseLoader(wiring.Component):
    """Takes a job's sparse rows and writes each to the bank of a PE row: a row's first beat
    goes to the PE row with the least work so far (lowest index on ties), the schedule of
    dynamic dispatch (:func:`golden.pe_array.assign_rows`), and its later beats follow it.
    Checks the beats against the job's command.

    Parameters
    ----------
    rows : int
        PE rows.
    word_layout : Layout
        A bank word (the array's ``word_layout``).
    sparse_layout, cmd_layout : Layout
        Of the array's ``sparse`` beats and commands.
    bank_words, tile_depth, max_rows, nm_max_m : int
        As the array's.

    Attributes
    ----------
    sparse : In(stream.Signature(sparse_layout))
        The job's sparse rows (taken while ``load``).
    load : In(1)
        The job is in its sparse load.
    start : In(1)
        A command is taken: forget the last job.
    new_cmd, cmd : In(cmd_layout)
        The command taken (with ``start``); the job's.
    full : In(rows)
        Each PE row's bank is full.
    bank_we : Out(rows)
        Write ``word`` to that PE row's bank.
    word : Out(word_layout)
        The beat as a bank word: indices into the dense tile, and the row's number.
    load_end : Out(1)
        The job's last beat is taken this cycle.
    error : Out(ERROR_LAYOUT)
        Faults of the beat taken this cycle (``index``, ``rows``, ``bank_full``).
    """

    def __init__(self, *, rows, word_layout, sparse_layout, cmd_layout, bank_words,
                 tile_depth, max_rows, nm_max_m):
        self._rows, self._bank_words = rows, bank_words
        self._tile_depth, self._max_rows, self._nm_max_m = tile_depth, max_rows, nm_max_m
        self._lanes = sparse_layout["index"].shape.length
        self._offset_shape = sparse_layout["index"].shape.elem_shape
        super().__init__({
            "sparse": In(stream.Signature(sparse_layout)),
            "load": In(1), "start": In(1),
            "new_cmd": In(cmd_layout), "cmd": In(cmd_layout),
            "full": In(rows),
            "bank_we": Out(rows), "word": Out(word_layout),
            "load_end": Out(1),
            "error": Out(ERROR_LAYOUT),
        })

    def elaborate(self, platform):
        m = Module()
        R, L, cmd, beat = self._rows, self._lanes, self.cmd, self.sparse.payload
        # Each PE row's load: the bank entries dealt to it in the job (an empty row counts
        # one). The least loaded PE row is a register, found from the loads as they will be
        # next cycle: the comparisons end in a register, not in the bank writes.
        beat_cost = Signal(range(L + 1))
        adds = [Signal(range(L + 1), name=f"add{r}") for r in range(R)]
        load_shape = unsigned(Shape.cast(range(self._bank_words * L + 1)).width)
        find = _least_by_pairs if R <= PAIRWISE_MAX_ROWS else _least_by_tree
        least = Signal(index_shape(R))
        m.d.sync += least.eq(find(m, adds, self.start, load_shape))
        row_start = Signal(init=1)
        bank = Signal(index_shape(R))
        rows_seen = Signal(range(self._max_rows + 1))
        pos = Signal(range(self._tile_depth + L + 1))  # entries so far in the row (DENSE index)
        target = Signal(index_shape(R))
        m.d.comb += target.eq(Mux(row_start, least, bank))
        fire = Signal()
        m.d.comb += [self.sparse.ready.eq(self.load), fire.eq(self.sparse.valid & self.load)]

        m.submodules.lane_index = lane_index = LaneIndex(
            lanes=L, tile_depth=self._tile_depth, nm_max_m=self._nm_max_m,
            offset_shape=self._offset_shape)
        m.d.comb += [
            lane_index.start.eq(self.start), lane_index.start_n.eq(self.new_cmd.nm_n),
            lane_index.start_m.eq(self.new_cmd.nm_m), lane_index.mode.eq(cmd.mode),
            lane_index.n.eq(cmd.nm_n), lane_index.row_start.eq(row_start),
            lane_index.pos.eq(pos), lane_index.advance.eq(fire),
            lane_index.offsets.eq(beat.index),
        ]
        word = self.word
        for i in range(L):
            m.d.comb += [word.index[i].eq(lane_index.index[i]), word.value[i].eq(beat.value[i])]
        m.d.comb += [word.count.eq(beat.count), word.row_last.eq(beat.row_last),
                     word.row.eq(rows_seen)]

        count_bad = Signal()  # a count field wider than needed can say more than L
        if (1 << len(beat.count)) - 1 > L:
            m.d.comb += count_bad.eq(beat.count > L)
        index_bad = Signal()
        m.d.comb += index_bad.eq(
            count_bad
            | Cat(*[(i < beat.count) & (lane_index.index[i] >= cmd.depth)
                    for i in range(L)]).any()
            | ((cmd.mode == PEMode.NM) & Cat(
                *[(i < beat.count) & (beat.index[i] >= cmd.nm_m) for i in range(L)]).any()))
        row_end_pos = Signal.like(pos)
        m.d.comb += row_end_pos.eq(pos + beat.count)
        dense_row_bad = Signal()
        m.d.comb += dense_row_bad.eq((cmd.mode == PEMode.DENSE) & Mux(
            beat.row_last, row_end_pos != cmd.depth, row_end_pos > cmd.depth))
        rows_bad = Signal()  # a row beyond the declared count, or the job ends short of it
        m.d.comb += rows_bad.eq(dense_row_bad | (rows_seen >= cmd.rows) | (beat.last & (
            ~beat.row_last | (rows_seen + 1 != cmd.rows))))
        m.d.comb += beat_cost.eq(Mux(beat.count == 0, 1, beat.count))
        m.d.comb += [
            self.error.index.eq(fire & index_bad),
            self.error.rows.eq(fire & rows_bad),
            self.error.bank_full.eq(fire & self.full.bit_select(target, 1)),
            self.load_end.eq(fire & beat.last),
        ]
        for r in range(R):
            m.d.comb += self.bank_we[r].eq(fire & (target == r))

        # (A command is taken only between sparse loads: ``start`` never meets a beat.)
        for r in range(R):
            m.d.comb += adds[r].eq(Mux(fire & (target == r), beat_cost, 0))
        with m.If(self.start):
            m.d.sync += [row_start.eq(1), rows_seen.eq(0), pos.eq(0)]
        with m.If(fire):
            m.d.sync += [bank.eq(target), row_start.eq(beat.row_last)]
            with m.If(beat.row_last):
                m.d.sync += pos.eq(0)
                with m.If(rows_seen != self._max_rows):
                    m.d.sync += rows_seen.eq(rows_seen + 1)
            with m.Else():
                m.d.sync += pos.eq(row_end_pos)
        return m
