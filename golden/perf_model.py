"""A cycle model of the generated hardware, from the same configuration object.

:func:`pe_array_job_cycles` predicts the cycles of one job of the sparse PE array
(:class:`hw.pe_array.SparsePEArray`), from its command to its last result, when every input
stream offers a beat each cycle and the result stream is always ready. The accelerator top's
commands (:class:`hw.top.SwatAccel`) are predicted from the command's transfer to its reply:
:func:`threshold_cycles`, :func:`save_act_cycles`, :func:`gemm_cycles` (forward and input
gradient, rows through the top-K selector, or the dense baseline) and
:func:`gemm_saved_cycles` (the weight gradient, rows from the activation buffer's row read,
:func:`act_row_read`); :func:`product_sequence` predicts products sent back to back, each job's
rows loading while the one before computes.

The model follows the RTL's rules: rows dealt to the least-loaded PE row
(:func:`golden.pe_array.assign_rows`); the sparse rows' beats as the selector's mask packer, the
rows adapters and the buffer's bitmap scan emit them; double-buffered dense tiles (a tile loads
once every PE row has finished the tile two before it); one entry a cycle per PE row; and the
result path: a row's last entry issues only while at most one finished row waits in its PE
row's two-entry FIFO, and the PE rows sharing a result slot pass one result a cycle between
them in round robin, the PE rows each on their own tile (up to two apart). Dense tiles after
the sixteenth repeat the mean span of the four before.

Agreement with the RTL: :mod:`sim.model_vs_bench` (168 benchmark tiles, all within 2 %) and
:mod:`sim.testbenches.perf_top` (random commands on the top).
"""

import math

import numpy as np

from . import pe_array, topk

__all__ = ["pe_array_job_cycles", "row_arrival", "threshold_cycles", "save_act_cycles", "gemm_cycles",
           "act_row_read", "act_conv_read", "conv_read_result_cycle", "gemm_saved_cycles",
           "product_sequence"]

#: Cycles from the command's transfer to the first sparse beat.
START = 1
#: A command waits a cycle as the array's back job before its job computes and takes its
#: dense tiles (the next command is taken while this job computes).
PROMOTE = 1
#: A bank word can be issued from the third cycle after the cycle it was written in (it is
#: read through the PE row's prefetch queue).
WORD_READY = 3
#: From a row's last entry issued to its result taken on the result port.
RESULT_PATH = 5
#: Results a PE row's FIFO holds (the RTL takes it from here). The row's credit for a result
#: is a register (a result taken frees its place from the next cycle), so three places keep a
#: result slot busy every cycle on short rows, where two would leave a row waiting on each take.
RESULT_FIFO_DEPTH = 3
#: A finished row's result may leave its PE row's FIFO this many cycles after the cycle that
#: follows the row's last issue.
RESULT_FIFO_WAIT = 3
#: The PE row's extra stage (picking a row from a word of several dense rows) when the dense
#: port carries more than one row a beat.
WIDE_DENSE_STAGE = 1
#: Dense tiles simulated entry by entry; later tiles repeat the mean span of the last
#: ``PERIOD_TILES`` of them, per PE row.
SIMULATED_TILES = 16
PERIOD_TILES = 4


def pe_array_job_cycles(config, nnz, depth, tiles, *, dense=False):
    """Cycles of a PE-array job: ``nnz`` non-zeros per sparse row (in the order sent),
    reduction ``depth``, ``tiles`` dense column tiles; ``dense`` for the dense mode (every row
    has ``depth`` entries).

    Returns the cycle count from the command's transfer to the last result's.
    """
    L = config.sparse_port_lanes
    counts = [depth] * len(nnz) if dense else [int(n) for n in nnz]
    arrivals, cycle = [], START
    for n in counts:  # one beat a cycle, ``L`` entries each (an empty row: one empty beat)
        beats = max(1, math.ceil(n / L))
        arrivals.append(row_arrival([(cycle + b, min(L, n - b * L) if n else 0)
                                     for b in range(beats)]))
        cycle += beats
    return _pe_job(config, counts, arrivals, depth, tiles, dense_start=START + PROMOTE)


def row_arrival(beats):
    """A sparse row's arrival at the PE array, from its beats ``[(cycle, entries)]``:
    ``(bound, last)``, the earliest cycle after its last issue that its words allow (a word
    is usable ``WORD_READY`` cycles after it is written; an entry a cycle, an empty word one
    cycle) and the cycle of its last beat."""
    bound, rest = 0, 0
    for cycle, entries in reversed(beats):
        rest += max(entries, 1)
        bound = max(bound, cycle + WORD_READY + rest)
    return bound, beats[-1][0]


def _pe_job(config, counts, arrivals, depth, tiles, *, dense_start):
    """The PE array's job, given when each sparse row arrives: ``arrivals[i]`` is row ``i``'s
    :func:`row_arrival`, rows in the order sent; the dense tiles stream from ``dense_start``
    at one beat a cycle. Returns the cycle of the last result.

    The PE rows are followed together, each through its rows tile after tile: a PE row starts
    a tile once it has issued the one before and the tile's dense rows are loaded (the loader
    takes tile ``t`` after tile ``t - 1``, into the half that tile ``t - 2`` frees once every
    PE row has issued it), so a PE row may run up to two tiles ahead of another, and the
    results of different tiles compete for the result slot the PE rows share. A row's last
    entry issues only once the result of the row three before it has left (the result FIFO
    holds :data:`RESULT_FIFO_DEPTH`), from the cycle after its departure; a result may leave
    ``RESULT_FIFO_WAIT`` cycles after the cycle that follows
    the row's last issue, one a cycle through each slot, in round robin among the PE rows
    with a result waiting (the RTL's arbiter). After :data:`SIMULATED_TILES` tiles, each PE
    row repeats the mean span of its last :data:`PERIOD_TILES`."""
    R = config.pe_rows
    # The result path is a stage longer when the PE rows pick rows out of wide dense words.
    extra = WIDE_DENSE_STAGE if config.dense_rows_per_beat > 1 else 0
    costs = [pe_array.row_cost(n) for n in counts]
    banks, _ = pe_array.assign_rows(costs, R)
    row_costs = [[] for _ in range(R)]
    not_before = [[] for _ in range(R)]  # the rows' arrival bounds, per PE row
    loaded = 0  # the first cycle in which the banks are final
    for bank, cost, (bound, last) in zip(banks, costs, arrivals):
        row_costs[bank].append(cost)
        not_before[bank].append(bound)
        loaded = max(loaded, last + 1)

    tile_beats = config.dense_tile_beats(depth)
    simulated = min(tiles, SIMULATED_TILES)
    ready = [None] * simulated  # per tile: first cycle its dense rows are usable
    ready[0] = dense_start + tile_beats
    if simulated > 1:
        ready[1] = ready[0] + tile_beats
    next_load = 2  # the first tile whose load is not yet known
    tile_end = [[None] * simulated for _ in range(R)]  # cycle after each tile's last issue
    finished = [0] * simulated  # per tile: the PE rows that have issued it
    done_at = [0] * simulated  # per tile: cycle after the last PE row's last issue
    waiting = [[] for _ in range(simulated)]  # per tile: PE rows waiting for its dense rows
    tile, index, last_issue = [0] * R, [0] * R, [0] * R
    in_flight = [[] for _ in range(R)]  # per PE row: its last results' departures
    heads = {}  # PE row -> the first cycle its current result may leave
    Q = config.result_port_lanes
    groups = [list(range(q, R, Q)) for q in range(Q)]  # the PE rows of each result slot
    slot_free, last_grant = [0] * Q, [-1] * Q
    slot_next = [None] * Q  # per slot: the cycle of its next departure
    changed = set(range(Q))  # slots whose heads changed
    last_departure = 0

    def end_tile(r, end):
        nonlocal next_load
        t = tile[r]
        if t == 0:
            # The first tile ends only once the load is complete, and the next tile's first
            # word is read once it is (it is queued two cycles later).
            end = max(end, loaded + 2) if row_costs[r] else max(end, loaded + 1)
        tile_end[r][t] = end
        finished[t] += 1
        done_at[t] = max(done_at[t], end)
        while next_load < simulated and finished[next_load - 2] == R:
            t_load = next_load
            ready[t_load] = max(ready[t_load - 1], done_at[t_load - 2]) + tile_beats
            next_load += 1
            for w in waiting[t_load]:
                begin_tile(w)
            waiting[t_load] = []

    def issue(r, start):
        """PE row ``r`` issues its current row from ``start``."""
        t, i = tile[r], index[r]
        end = start + row_costs[r][i]
        if t == 0:  # a row cannot finish before its words are written (and read)
            end = max(end, not_before[r][i])
        if len(in_flight[r]) >= RESULT_FIFO_DEPTH:
            end = max(end, in_flight[r][-RESULT_FIFO_DEPTH] + 2)
        last_issue[r] = end
        heads[r] = end + RESULT_FIFO_WAIT + extra
        changed.add(r % Q)
        if i == len(row_costs[r]) - 1:
            end_tile(r, end)

    def begin_tile(r):
        t = tile[r]
        index[r] = 0
        start = ready[0] if t == 0 else max(tile_end[r][t - 1], ready[t])
        if row_costs[r]:
            issue(r, start)
        else:
            end_tile(r, start)
            next_tile(r)

    def next_tile(r):
        if tile[r] + 1 < simulated:
            tile[r] += 1
            if ready[tile[r]] is None:
                waiting[tile[r]].append(r)
            else:
                begin_tile(r)

    for r in range(R):
        begin_tile(r)
    while heads:
        for q in changed:
            times = [heads[r] for r in groups[q] if r in heads]
            slot_next[q] = max(slot_free[q], min(times)) if times else None
        changed.clear()
        # The slot with the earliest departure passes one result.
        now, q = min((t, q) for q, t in enumerate(slot_next) if t is not None)
        order = groups[q]
        candidates = [r for r in order if r in heads and heads[r] <= now]
        # Round robin: the first PE row with a result ready after the last one granted.
        above = [r for r in candidates if order.index(r) > last_grant[q]]
        r = (above or candidates)[0]
        last_grant[q] = order.index(r)
        del heads[r]
        changed.add(q)
        slot_free[q] = now + 1
        last_departure = max(last_departure, now)
        in_flight[r] = in_flight[r][1 - RESULT_FIFO_DEPTH:] + [now]
        index[r] += 1
        if index[r] < len(row_costs[r]):
            issue(r, last_issue[r])
        else:
            next_tile(r)
    ends = [tile_end[r][simulated - 1] for r in range(R)]
    last_result = last_departure + 1
    if tiles > simulated:
        k = min(PERIOD_TILES, simulated - 1)
        lag = last_result - max(ends)  # from the last issue to the last result leaving
        ends = [e + (tiles - simulated) * (e - tile_end[r][simulated - 1 - k]) / k
                for r, e in enumerate(ends)]
        last_result = max(ends) + lag
    return math.ceil(max(max(ends) - 1 + RESULT_PATH + extra, last_result))


# ---- the accelerator top (hw.top.SwatAccel): one command, from its transfer to its reply ----
#
# Cycles are counted as the top's reply counts them: 0 is the cycle the command is taken. The
# constants below are the RTL's fixed latencies (FSM states and pipeline registers).

#: Selector: cycles per threshold pass beyond one beat a cycle (the histogram scan), and the
#: command's fixed cost.
THRESHOLD_PASS = 261
THRESHOLD_FIXED = 6
#: The selector clears its histogram (``2**radix_bits`` bins) after reset; a command sent as
#: reset ends waits for the rest.
HISTOGRAM_CLEAR = 252
#: An activation-buffer command waits a cycle while its slot's descriptor is looked up.
BUFFER_LOOKUP = 1
#: SAVE_ACT: the command's fixed cost beyond one beat a cycle (and the buffer's lookup).
SAVE_FIXED = 10
#: GEMM: the first selector command's cycle; a row's cost beyond its beats (selector command,
#: packer register, result); the cycle the PE array's command is taken.
GEMM_FIRST_ROW = 2
GEMM_ROW_EXTRA = 2
GEMM_PE_CMD = 1
#: From the PE array's last result to the reply.
GEMM_REPLY = 2
#: GEMM in dense mode: the first host beat reaches the rows adapter.
DENSE_FIRST_BEAT = 2
#: GEMM_SAVED: the activation buffer's first scan cycle (command, read check, bitmap read).
SAVED_FIRST_SCAN = 6
#: The register slice at the top-K selector's compressed output: its beats reach the router
#: (the rows adapter, or the activation buffer's writer) this many cycles later.
SELECTOR_SLICE = 1
#: The register slice between the rows adapters and the PE array's sparse input: a row beat
#: reaches the PE array this many cycles after the adapter offers it.
SPARSE_SLICE = 1
#: The register slice in front of :class:`hw.row_adapters.EntriesToRows`: the selector's (or
#: the host's) beats reach it this many cycles after the router offers them.
ENTRIES_SLICE = 1
#: The register slice in front of the row packer: the adapters' beats reach it this many
#: cycles after they leave.
ROWS_SLICE = 1
#: GEMM_SAVED: register slices (two entries each) between the activation buffer's beat stage
#: and ElementsToRows: the buffer's own on ``rdata``, and the one in front of the adapter.
ELEMENTS_SLICES = 2


class _RowPacker:
    """:class:`hw.row_packer.RowPacker` on the rows adapters' beats: the words each row
    becomes, and the cycles in which it takes no beat (a row's second word leaving)."""

    def __init__(self, lanes):
        self.lanes = lanes
        self.fill = 0
        self.busy_at = None
        self.words = {}

    def push(self, row, cycle, entries, row_last):
        """A beat of ``row`` with ``entries`` leaves the adapter in ``cycle``."""
        words = self.words.setdefault(row, [])
        total = self.fill + entries
        if total >= self.lanes:
            words.append((cycle, self.lanes))
            self.fill = total - self.lanes
            if row_last and self.fill:
                words.append((cycle + 1, self.fill))
                self.busy_at = cycle + 1
                self.fill = 0
        elif row_last:
            words.append((cycle, total))
            self.fill = 0
        else:
            self.fill = total

    def busy(self, cycle):
        return cycle == self.busy_at

    def arrival(self, row):
        """:func:`row_arrival` of ``row``'s words, after the register slices in front of the
        packer and behind it."""
        return row_arrival([(cycle + ROWS_SLICE + SPARSE_SLICE, n)
                            for cycle, n in self.words[row]])


def _packed_arrivals(lanes, rows_beats):
    """The arrivals of rows whose adapter beats are ``[(cycle, entries)]`` each, through the
    row packer and the sparse register slice (rows far enough apart that the packer never holds
    up the next row's first beat)."""
    packer = _RowPacker(lanes)
    for row, beats in enumerate(rows_beats):
        for i, (cycle, entries) in enumerate(beats):
            packer.push(row, cycle, entries, i == len(beats) - 1)
    return [packer.arrival(row) for row in range(len(rows_beats))]


def threshold_cycles(config, n, *, after_reset=False):
    """Cycles of a THRESHOLD command on an ``n``-element tensor (each pass streams it once,
    ``selector_lanes`` elements a cycle, then scans the histogram); ``after_reset`` for the first
    one, sent as reset ends, which also waits for the histogram to be cleared."""
    passes = topk.threshold_passes(config.width)
    return (passes * (math.ceil(n / config.selector_lanes) + THRESHOLD_PASS) + THRESHOLD_FIXED
            + (HISTOGRAM_CLEAR if after_reset else 0))


def save_act_cycles(config, n, sent=None):
    """Cycles of a SAVE_ACT command on an ``n``-element tensor (one beat a cycle).

    When the activation buffer's value words are narrower than the selector's
    (:attr:`golden.config.AccelConfig.buffer_lanes`), the write also depends on where the kept
    values fall: ``sent`` is then needed, the elements the selector sends (kept and not zero,
    :func:`golden.topk.sent_mask`) in stream order, any shape."""
    cycles = math.ceil(n / config.selector_lanes) + SAVE_FIXED + BUFFER_LOOKUP
    if config.buffer_lanes == config.selector_lanes:
        return cycles
    if sent is None:
        raise ValueError("sent is needed when the buffer's lanes are fewer than the selector's")
    sent = np.asarray(sent, dtype=bool).reshape(-1)
    if sent.size != n:
        raise ValueError(f"sent has {sent.size} elements, not n ({n})")
    counts = _packer_counts(sent, config.selector_lanes)
    return cycles + _value_queue_delay(counts, config.buffer_lanes)


def _packer_words(mask, lanes):
    """The words :class:`hw.mask_packer.MaskPacker` emits for each row of ``mask`` (``rows x
    n``, each row a tensor of kept elements), ``lanes`` elements a beat: ``(beats, crossings,
    pending)``, the beats of a row, per row the beats before the last after which a full word
    of ``lanes`` entries leaves, and per row the entries left for the last beat (more than
    ``lanes``: an extra beat carries the rest)."""
    rows, n = mask.shape
    beats = max(1, math.ceil(n / lanes))
    padded = np.zeros((rows, beats * lanes), dtype=np.int64)
    padded[:, :n] = mask
    cum = padded.reshape(rows, beats, lanes).sum(axis=2).cumsum(axis=1)
    words = cum // lanes  # full words emitted once beat j is in
    before = np.concatenate([np.zeros((rows, 1), dtype=np.int64), words[:, :-1]], axis=1)
    crossings = [[] for _ in range(rows)]
    for r, j in zip(*np.nonzero(words[:, :-1] > before[:, :-1])):
        crossings[r].append(int(j))
    pending = (cum[:, -1] - lanes * before[:, -1]).tolist()
    return beats, crossings, pending


def _packer_counts(sent, lanes):
    """Entries of each output beat of :class:`hw.mask_packer.MaskPacker` for a tensor whose
    elements ``sent`` (a flat bool array) are kept: a full word whenever ``lanes`` have
    gathered, the rest on the last beat, plus an extra beat when more than ``lanes`` remain."""
    beats, (crossings,), (pending,) = _packer_words(sent.reshape(1, -1), lanes)
    counts = [0] * beats
    for beat in crossings:
        counts[beat] = lanes
    counts[-1] = min(pending, lanes)
    if pending > lanes:
        counts.append(pending - lanes)
    return counts


def _value_queue_delay(counts, lanes):
    """Cycles a write's end moves when its value words, ``counts`` values per beat of the
    compressed stream (beats one a cycle unless held), are written ``lanes`` values a cycle
    through the writer's queue of two (:class:`hw.act_buffer.TensorWriter`): a beat's word
    starts writing the cycle after it is taken, or when the word before is written; a beat
    waits while a word waits behind the one being written; the flush follows the last write,
    and comes at least two cycles after the last beat (one without the queue)."""
    shift = 0  # cycles the beats have waited so far
    free_at = 0  # the cycle the head is free for the next word
    last_write = -1
    for beat, count in enumerate(counts):
        if not count:
            continue
        taken = beat + shift
        start = max(taken + 1, free_at)
        shift += start - (taken + 1)  # it waited behind the head: the beats after it wait
        free_at = start + -(-count // lanes)
        last_write = free_at - 1
    last_taken = len(counts) - 1 + shift
    return max(last_taken + 2, last_write + 1) - len(counts)


def _selector_rows(mask, lanes, word_lanes, first_cmd):
    """Rows through the top-K selector's APPLY, one command each (the GEMM's rows), and
    :class:`hw.row_adapters.EntriesToRows`: each row's :func:`row_arrival` at the PE array.

    The row's input beats arrive the cycle after its command; a register and the mask
    packer's two stages turn each into one output beat three cycles later (and the
    selector's output slice a cycle after that, :data:`SELECTOR_SLICE`), a full word of
    entries whenever ``lanes`` kept elements have gathered, and the rest on the last beat (plus
    an extra beat if more than ``lanes`` remain); the adapter holds a beat with entries until
    the next one, or the row's end, arrives, and the row packer gathers the beats into words of
    ``word_lanes``. The selector's result comes two cycles after the packer's last beat, and
    the next row's command the cycle after."""
    per_row, crossings, pending_of = _packer_words(mask, lanes)
    rows_beats, cmd = [], first_cmd
    for r in range(mask.shape[0]):
        pending = pending_of[r]  # entries left for the last beat(s)
        last_out = cmd + per_row + 3
        # The packer's beats with entries, or the row's end: (cycle, entries, row_end).
        beats = [(cmd + j + 4 + SELECTOR_SLICE + ENTRIES_SLICE, lanes, False)
                 for j in crossings[r]]
        out_end = last_out + SELECTOR_SLICE + ENTRIES_SLICE
        if pending > lanes:
            beats += [(out_end, lanes, False), (out_end + 1, pending - lanes, True)]
            last_out += 1
        else:
            beats.append((out_end, pending, True))
        out, held = [], None
        for cycle, entries, row_end in beats:
            if held is not None:
                out.append((cycle, held))
                held = None
            if entries and row_end:
                out.append((cycle + 1, entries))
            elif entries:
                held = entries
            elif not out:
                out.append((cycle, 0))  # a row with no entries: one empty beat
        rows_beats.append(out)
        cmd = last_out + GEMM_ROW_EXTRA
    return _packed_arrivals(word_lanes, rows_beats)


def gemm_cycles(config, mask, tiles, *, dense=False):
    """Cycles of a GEMM command: the sparse operand's keep mask (``rows x depth``, as the
    selector will keep it) times ``tiles`` dense tiles; ``dense`` for the dense mode (every
    element, the host's rows straight to the PE array, one beat a cycle and a cycle between
    rows)."""
    return _product_alone(config, _gemm_rows(config, mask, dense), tiles)


def _gemm_rows(config, mask, dense):
    """A GEMM's sparse rows at the PE array: ``(counts, arrivals, depth, streams_end)``,
    cycles counted from the command's transfer (:func:`_product_alone`)."""
    mask = np.asarray(mask, dtype=bool)
    rows, depth = mask.shape
    lanes = config.selector_lanes
    per_row = max(1, math.ceil(depth / lanes))
    if dense:
        counts = [depth] * rows
        # Row r's beats leave the adapter one a cycle from ``first``, a cycle between rows.
        rows_beats = []
        for r in range(rows):
            first = DENSE_FIRST_BEAT + ENTRIES_SLICE + 1 + r * (per_row + 1)
            rows_beats.append([(first + b, min(lanes, depth - b * lanes))
                               for b in range(per_row)])
        arrivals = _packed_arrivals(config.sparse_port_lanes, rows_beats)
    else:
        counts = mask.sum(axis=1).astype(int).tolist()
        arrivals = _selector_rows(mask, lanes, config.sparse_port_lanes, GEMM_FIRST_ROW)
    return counts, arrivals, depth, 0


def act_row_read(config, mask):
    """The activation buffer's row read of a stored ``rows x cols`` keep mask, as a list of its
    scan cycles: ``(row, kept elements emitted)`` per cycle (0 when a cycle emits nothing)."""
    mask = np.asarray(mask, dtype=bool)
    rows, cols = mask.shape
    word, lanes = config.act_scan_bits, config.buffer_lanes
    flat = mask.reshape(-1)
    total = int(flat.sum())
    scan, emitted = [], 0
    for r in range(rows):
        pos = r * cols
        while pos < (r + 1) * cols and emitted < total:
            end = min((r + 1) * cols, (pos // word + 1) * word)
            k = int(flat[pos:end].sum())
            for _ in range(max(1, math.ceil(k / lanes))):
                take = min(lanes, k)
                scan.append((r, take))
                k -= take
                emitted += take
            pos = end
    return scan


#: A conv read's word reaches the scan's loop this many cycles after the word is issued.
CONV_WORD_TO_PICK = 6
#: Words issued and not yet taken by the loop at most (the queue, the two index stages and
#: the register slice in front of the loop).
CONV_WORDS_IN_FLIGHT = 8
#: Beats the conv scan holds between its loop and its output stage (a request register, the
#: value queue and a lane stage): the loop waits only once they are all taken.
CONV_BEATS_AHEAD = 6
#: From the conv read's last cycle (the loop's or the walk's) to its result, at least.
CONV_RESULT_AFTER = 2
#: From the conv read's last beat to its result, at least (the beat's value is read, and its
#: lanes picked and packed on the way out, whether or not any is emitted).
CONV_RESULT_AFTER_BEAT = 7


def _conv_walk(shape, kernel, stride, padding, first_channel, channels, first_out_row,
               out_rows):
    """The conv read's segment walk (:class:`hw.act_buffer.SegmentWalk`), a cycle per entry:
    ``None`` for a cycle that emits nothing and need not wait, ``("row", segment or None)``
    for a row cycle (it waits while the walk's output holds a segment); a segment is
    ``(feature row, first bit, last bit, columns)``, ``columns`` the range ``(lo, hi)`` of
    input columns whose bits it emits, or None for all (a segment of one row).

    At stride 1 with ``2 * padding == kernel - 1`` (a "same" conv), a feature's part in an
    image is one segment, its rows from the first output row's to the last's (clipped to the
    map), and the walk takes a cycle per image; otherwise a segment is one input row, and the
    walk takes a cycle per output row (a padding row is passed over with the row before it
    when it is neither the feature's first nor its last)."""
    n_images, _, height, width = shape
    out_h = (height + 2 * padding - kernel) // stride + 1
    out_w = (width + 2 * padding - kernel) // stride + 1
    bits = lambda value: int(value).bit_length() + 1  # a multiplier state's cycles
    n0, oy0 = divmod(first_out_row, out_h)
    startup = (bits(width) + bits(n_images) + bits(first_channel) + bits(channels)
               + bits(n_images) + bits(kernel) + bits(channels) + bits(out_rows)
               + 2 + (n0 + 1) + bits(oy0) + 1)
    actions = [None] * startup
    plane = height * width
    f = 0
    for c in range(first_channel, first_channel + channels):
        for ky in range(kernel):
            actions.append(None)  # NEXT_KY
            for kx in range(kernel):
                actions += [None, None]  # FEATURE, PHASE
                x0 = kx - padding
                lo = x0 if x0 >= 0 else (x0 % 2 if stride == 2 else 0)
                hi = min(width - 1, x0 + stride * (out_w - 1))
                hi -= (stride == 2) and (hi - x0) % 2
                if hi >= lo and stride == 1 and 2 * padding == kernel - 1:
                    actions.append(None)  # SPAN_SETUP: the first image's span
                    # A span per image: the rows of output rows oy .. oy_end, shifted by
                    # ky - padding and clipped to the map.
                    end = first_out_row + out_rows
                    r = first_out_row
                    while r < end:
                        image, oy = divmod(r, out_h)
                        oy_end = min(out_h, oy + end - r) - 1
                        y_first = max(0, oy + ky - padding)
                        y_last = min(height - 1, oy_end + ky - padding)
                        seg = None
                        if y_first <= y_last:
                            plane_bit = (c * n_images + image) * plane
                            seg = (f, plane_bit + y_first * width + lo,
                                   plane_bit + y_last * width + hi, (lo, hi))
                        actions.append(("row", seg))
                        r += oy_end - oy + 1
                elif hi >= lo:
                    inside = lambda r: 0 <= (r % out_h) * stride + ky - padding < height
                    end = first_out_row + out_rows
                    r = first_out_row
                    while r < end:
                        image, oy = divmod(r, out_h)
                        y = oy * stride + ky - padding
                        seg = None
                        if 0 <= y < height:
                            row_bit = (c * n_images + image) * plane + y * width
                            seg = (f, row_bit + lo, row_bit + hi, None)
                        actions.append(("row", seg))
                        # A padding row after this one, not the last, is passed over with it.
                        r += 2 if r + 2 < end and not inside(r + 1) else 1
                f += 1
    return actions


def act_conv_read(config, mask, *, kernel, stride, padding, first_channel=0, channels=None,
                  first_out_row=0, out_rows=None):
    """The activation buffer's conv read (``READ_CONV``) of feature maps whose keep mask is
    ``mask`` (N, C, H, W), as a list of its scan loop's cycles: ``(row, kept elements
    emitted, beat)`` per cycle, from the cycle after the command's (0 when a cycle emits
    nothing: the walk's start, its set-up cycles, words without elements, beats whose bits
    are all passed over; ``beat`` when the loop takes bits, emitted or not). The read's result comes
    :func:`conv_read_result_cycle` cycles after the command's.

    The model follows :class:`hw.act_buffer.SegmentWalk` cycle by cycle, then each segment's
    bitmap words a cycle each (after :data:`CONV_WORD_TO_PICK` cycles), and the loop's beats:
    each takes the next kept bits of the word inside the segment, at most ``lanes``, whose
    values lie in the value word the last beat read and the next (or in its first value's word
    alone), and emits those on the stride's phase and, for a segment of several rows, those
    whose column lies in the segment's range.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 4:
        raise ValueError(f"mask must be (N, C, H, W), not shape {mask.shape}")
    n_images, n_channels, height, width = mask.shape
    if not isinstance(kernel, int) or kernel < 1:
        raise ValueError(f"kernel must be a positive integer, not {kernel!r}")
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, not {stride!r}")
    if not isinstance(padding, int) or not 0 <= padding < kernel:
        raise ValueError(f"padding must be from 0 to kernel - 1 ({kernel - 1}), not {padding!r}")
    if min(height, width) + 2 * padding < kernel:
        raise ValueError(f"a {height}x{width} map padded by {padding} is smaller than the "
                         f"{kernel}x{kernel} kernel")
    channels = n_channels - first_channel if channels is None else channels
    out_h = (height + 2 * padding - kernel) // stride + 1
    out_rows = n_images * out_h - first_out_row if out_rows is None else out_rows
    word, lanes = config.act_scan_bits, config.buffer_lanes
    pair = getattr(config, "conv_read_words", 1) == 2
    flat = mask.transpose(1, 0, 2, 3).reshape(-1)
    before = np.concatenate([[0], np.cumsum(flat)]).tolist()
    flat = flat.tolist()
    actions = _conv_walk(mask.shape, kernel, stride, padding, first_channel, channels,
                         first_out_row, out_rows)

    last_word = [None]  # the value word the last beat read (its second, with ``pair``)

    def chunks(first, last, columns, lo, hi):
        """The elements emitted by each beat of the bits ``lo .. hi`` of a segment ``first ..
        last``: a beat takes the kept bits whose values lie in the word the last beat read and
        the next, or in the word of its first value."""
        index = before[lo]
        kept = [b for b in range(lo, hi + 1) if flat[b]]
        taken = []
        while kept:
            word_, offset = divmod(index, lanes)
            take = min(len(kept), lanes if word_ == last_word[0] else lanes - offset)
            taken.append(emitted(kept[:take], first, columns))
            last_word[0] = word_ + (offset + take > lanes)
            kept, index = kept[take:], index + take
        return taken

    def emitted(bits, first, columns):
        return sum(1 for b in bits if (b - first) % stride == 0
                   and (columns is None or columns[0] <= b % width <= columns[1]))

    def pair_beats(row, first, last, columns, ranges):
        """The loop's cycles for two words of a segment (``ranges``: each word's bits ``lo ..
        hi``): a beat takes up to ``lanes`` kept bits of the first word and, in the beat
        that ends the first's, up to ``lanes`` of the second's, within a window of two value
        words from the run's first value (three when the run starts in the word the last beat
        read second)."""
        bits = [[b for b in range(lo, hi + 1) if flat[b]] for lo, hi in ranges]
        bits += [[]] * (2 - len(bits))
        index = [before[ranges[0][0]], before[ranges[-1][0]]]
        beats = []
        while bits[0] or bits[1]:
            start = index[0] if bits[0] else index[1]
            word_, offset = divmod(start, lanes)
            chained = word_ == last_word[0]
            limit = 2 * lanes if chained else 2 * lanes - offset
            take0 = min(len(bits[0]), lanes)
            count = emitted(bits[0][:take0], first, columns)
            more0 = len(bits[0]) > take0
            bits[0], index[0] = bits[0][take0:], index[0] + take0
            if not more0 and bits[1]:
                take1 = min(len(bits[1]), lanes, limit - take0)
                count += emitted(bits[1][:take1], first, columns)
                bits[1], index[1] = bits[1][take1:], index[1] + take1
            last_word[0] = word_ + chained + 1
            beats.append((row, count, True))
        return beats or [(row, 0, False)]

    def word_beats(row, first, last, columns, ranges):
        """The loop's cycles for the words of a cycle (``ranges``: each word's bits ``lo ..
        hi`` in the segment ``first .. last``)."""
        if pair:
            return pair_beats(row, first, last, columns, ranges)
        beats = [(row, e, True) for e in chunks(first, last, columns, *ranges[0])]
        return beats or [(row, 0, False)]

    # Cycle by cycle: the walk (it starts after the command's read check and the descriptor's
    # lookup), its output register, the word issue, the words in flight to the loop, and the
    # loop.
    walk_start = 2 + BUFFER_LOOKUP
    cycle, walk_at, out, pre = 1, 0, None, None
    issuing = []          # the current segment's words still to issue: (row, beats)
    in_flight = []        # issued words: (cycle the loop may take it, beats)
    loop_free, loop_row = walk_start, 0
    scan = {}
    walk_done_at = None
    while walk_at < len(actions) or out is not None or pre is not None or issuing or in_flight:
        # The loop takes the next word once it is there and the previous one is done.
        if in_flight and in_flight[0][0] <= cycle and loop_free <= cycle:
            _, beats = in_flight.pop(0)
            for i, beat in enumerate(beats):
                scan[cycle + i] = beat
            loop_free = cycle + len(beats)
        # The word issue: a word (two with ``pair``) a cycle while the words in flight leave
        # room; the next segment is taken in the cycle of the last. With ``pair``, segments
        # reach the words through a register of their own.
        free = False
        if issuing and len(in_flight) + (loop_free > cycle) < CONV_WORDS_IN_FLIGHT:
            in_flight.append((cycle + CONV_WORD_TO_PICK, issuing.pop(0)))
            free = not issuing
        elif not issuing:
            free = True
        taken_out = False
        source = pre if pair else out
        if free and source is not None:
            row, first, last, columns = source
            ranges = [(max(first, w * word), min(last, w * word + word - 1))
                      for w in range(first // word, last // word + 1)]
            step = 2 if pair else 1
            issuing = [word_beats(row, first, last, columns, ranges[i:i + step])
                       for i in range(0, len(ranges), step)]
            if pair:
                pre = None
            else:
                out, taken_out = None, True
        if pair and pre is None and out is not None:
            pre, out, taken_out = out, None, True
        # The walk: a cycle per action; a row cycle waits while the output is full.
        if cycle >= walk_start and walk_at < len(actions):
            action = actions[walk_at]
            if action is None:
                walk_at += 1
            elif out is None or taken_out:
                if action[1] is not None:
                    out = action[1]
                walk_at += 1
            if walk_at == len(actions):
                walk_done_at = cycle
        cycle += 1
    end = max([walk_done_at or 1] + list(scan))
    return [scan.get(c, (loop_row, 0, False)) for c in range(1, end + 1)]


def conv_read_result_cycle(scan):
    """The cycle of a conv read's result, counted from its command's, given its
    :func:`act_conv_read` cycles: :data:`CONV_RESULT_AFTER` after the last, or
    :data:`CONV_RESULT_AFTER_BEAT` after the last beat, whichever is later."""
    beats = [c for c, (_, _, beat) in enumerate(scan, 1) if beat]
    last_beat = beats[-1] + CONV_RESULT_AFTER_BEAT if beats else 0
    return max(len(scan) + CONV_RESULT_AFTER, last_beat)


def gemm_saved_cycles(config, mask, tiles, *, scan=None):
    """Cycles of a GEMM_SAVED command reading a feature-major saved tensor (row read) whose keep
    mask is ``mask`` (``features x depth``), times ``tiles`` dense tiles.

    ``scan`` is the buffer read's cycles, :func:`act_row_read` of ``mask`` by default; a conv
    read's are :func:`act_conv_read`'s (``mask`` is then its im2col keep matrix, features by
    output pixels), and its loop may run :data:`CONV_BEATS_AHEAD` beats ahead of its output
    stage before it waits."""
    return _product_alone(config, _saved_rows(config, mask, scan), tiles)


def _saved_rows(config, mask, scan):
    """A GEMM_SAVED's sparse rows at the PE array: ``(counts, arrivals, depth, streams_end)``
    (``streams_end``: the buffer's result), cycles counted from the command's transfer."""
    mask = np.asarray(mask, dtype=bool)
    rows, depth = mask.shape
    counts = mask.sum(axis=1).astype(int).tolist()
    packer = _RowPacker(config.sparse_port_lanes)
    # Cycle by cycle: the buffer's scan (a step a cycle; a step with kept elements waits for
    # room in the beat stage), the beat stage (it passes its beat on when the register on
    # ``rdata`` has room), that two-entry register and the one in front of ElementsToRows
    # (ELEMENTS_SLICES), and ElementsToRows (it holds a beat until the next arrives; passing a
    # finished row, or an empty one, takes a cycle in which it accepts nothing; the buffer's
    # result, once the stage and its register are empty, closes the remaining rows once no
    # beat is offered).
    steps = act_row_read(config, mask) if scan is None else scan
    # A conv read's loop runs ahead of its output stage by up to CONV_BEATS_AHEAD beats.
    ahead, room_ahead = [], (0 if scan is None else CONV_BEATS_AHEAD)
    # (A row read starts after the buffer's lookup; a conv read's cycles count it already.)
    step, cycle = 0, SAVED_FIRST_SCAN + (BUFFER_LOOKUP if scan is None else 0)
    # The registers' two entries each, (row, take): slices[0] is the buffer's, slices[-1]
    # the one ElementsToRows reads.
    slices = [[None, None] for _ in range(ELEMENTS_SLICES)]
    stage = None               # the buffer's beat stage: (row, take)
    held, feature, ended, result_at = None, 0, False, None
    while feature < rows:
        # ElementsToRows, from the last register's output, into the row packer (which takes
        # no beat in a cycle its second word of a row leaves).
        out = slices[-1][0]
        take_last = False
        blocked = packer.busy(cycle)
        over = ended and out is None
        if held is not None and ((out is not None and out[0] != feature) or over):
            if not blocked:
                packer.push(held[0], cycle, held[1], True)
                held, feature = None, feature + 1
        elif held is None and ((out is not None and out[0] > feature) or over):
            if not blocked:
                packer.push(feature, cycle, 0, True)
                feature += 1
        elif out is not None:
            if held is not None and not blocked:
                packer.push(held[0], cycle, held[1], False)
                held, take_last = out, True
            elif held is None:
                held, take_last = out, True
        # Each register takes its predecessor's output while its spare entry is free.
        offers = [None] * ELEMENTS_SLICES
        for i in range(1, ELEMENTS_SLICES):
            if slices[i][1] is None:
                offers[i] = slices[i - 1][0]
        skid = slices[0][1]
        # The stage passes its beat on while the register has room; the scan fills the stage
        # when it is empty or passes its beat on.
        offer = stage if skid is None else None
        filled = None
        free = stage is None or offer is not None
        if free and ahead:
            filled, free = ahead.pop(0), False
        if step < len(steps):
            if steps[step][1] == 0:
                step += 1
            elif free:
                filled = steps[step]
                step += 1
            elif len(ahead) < room_ahead:
                ahead.append(steps[step])
                step += 1
        elif result_at is None and slices[0] == [None, None] and stage is None \
                and not ahead:
            result_at = cycle
        if filled is not None:
            stage = filled
        elif offer is not None:
            stage = None
        # The registers (output entry, then the spare one), as hw.skid_buffer.SkidBuffer.
        offers[0] = offer
        takes = [offers[i + 1] is not None for i in range(ELEMENTS_SLICES - 1)] + [take_last]
        for i, (head, spare) in enumerate(slices):
            if takes[i] or head is None:
                slices[i] = [spare, None] if spare is not None else [offers[i], None]
            elif offers[i] is not None:
                slices[i][1] = offers[i]
        ended = ended or (result_at is not None and cycle > result_at)
        cycle += 1
    arrivals = [packer.arrival(row) for row in range(rows)]
    return counts, arrivals, depth, result_at or 0


def _product_alone(config, rows, tiles):
    """Cycles of a product command whose sparse rows are ``rows`` (:func:`_gemm_rows`,
    :func:`_saved_rows`) with the PE array idle: to its last result, then the reply."""
    counts, arrivals, depth, _ = rows
    start = GEMM_PE_CMD + START + PROMOTE
    return _pe_job(config, counts, arrivals, depth, tiles, dense_start=start) + GEMM_REPLY


#: A product's streams are over for the sequencer (its reply may be set aside) this many
#: cycles after the PE array takes its last sparse beat, or after the buffer's result.
HANDOFF_AFTER = 2


def product_sequence(config, products):
    """Reply cycles of product commands sent back to back at full rate, each reply taken at
    once: ``products`` is ``[("gemm", mask, tiles, dense) or ("gemm_saved", mask, tiles,
    scan)]``, as :func:`gemm_cycles` and :func:`gemm_saved_cycles` take them. Returns the cycle
    of each reply, counted from the first command's transfer.

    A product's reply is set aside once its rows are in the PE array (and the buffer's result
    is in) and the reply before it has been sent; the next command is taken the cycle after.
    Its job loads while the one before computes, and computes from two cycles after that one's
    ``done`` (the cycle after its last result)."""
    replies = []
    command = 0        # this product's command transfer
    done_before = None  # the job before: the cycle its ``done`` is given
    for kind, mask, tiles, extra in products:
        rows = (_gemm_rows(config, mask, extra) if kind == "gemm"
                else _saved_rows(config, mask, extra))
        counts, arrivals, depth, streams_end = rows
        start = GEMM_PE_CMD + START + PROMOTE
        if done_before is not None:
            start = max(start, done_before + 2 - command)
        last = command + _pe_job(config, counts, arrivals, depth, tiles, dense_start=start)
        done = last + 1
        reply = last + GEMM_REPLY
        if replies:
            reply = max(reply, replies[-1] + 1)
        handoff = command + max(max(a[1] for a in arrivals), streams_end) + HANDOFF_AFTER
        if replies:
            handoff = max(handoff, replies[-1] + 1)
        replies.append(reply)
        # The PE array's result comes first: the reply is sent, then the next command taken.
        command = (reply + 1) if done <= handoff else (handoff + 1)
        done_before = done
    return replies
