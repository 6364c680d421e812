"""A cycle model of the generated hardware, from the same configuration object.

:func:`pe_array_job_cycles` predicts the cycles of one job of the sparse PE array
(:class:`hw.pe_array.SparsePEArray`), from its command to its last result, when every input
stream offers a beat each cycle and the result stream is always ready. The accelerator top's
commands (:class:`hw.top.SwatAccel`) are predicted from the command's transfer to its reply:
:func:`threshold_cycles`, :func:`save_act_cycles`, :func:`gemm_cycles` (forward and input
gradient, rows through the top-K selector, or the dense baseline) and
:func:`gemm_saved_cycles` (the weight gradient, rows from the activation buffer's row read,
:func:`act_row_read`).

The model follows the RTL's rules: rows dealt to the least-loaded PE row
(:func:`golden.pe_array.assign_rows`); the sparse rows' beats as the selector's mask packer, the
rows adapters and the buffer's bitmap scan emit them; double-buffered dense tiles (a tile loads
once every PE row has finished the tile two before it); one entry a cycle per PE row; and the
result path: a row's last entry issues only while at most one finished row waits in its PE
row's two-entry FIFO, and the PE rows sharing a result slot pass one result a cycle between
them, oldest first (the RTL's round robin differs only in ties). Dense tiles after the third
repeat the third's timing.

Agreement with the RTL: :mod:`sim.model_vs_bench` (168 benchmark tiles, all within 2 %) and
:mod:`sim.tb_perf_top` (random commands on the top).
"""

import heapq
import math

import numpy as np

from . import pe_array

__all__ = ["pe_array_job_cycles", "threshold_cycles", "save_act_cycles", "gemm_cycles",
           "act_row_read", "gemm_saved_cycles"]

#: Cycles from the command's transfer to the first sparse and dense beats.
START = 1
#: A bank word can be issued from the second cycle after the cycle it was written in.
WORD_READY = 2
#: From a row's last entry issued to its result taken on the result port.
RESULT_PATH = 4
#: A finished row's result may leave its PE row's FIFO this many cycles after the cycle that
#: follows the row's last issue.
RESULT_FIFO_WAIT = 2
#: Dense tiles after the first simulated row by row; later tiles repeat the last one's spans.
STEADY_TILES = 3


def pe_array_job_cycles(config, nnz, depth, tiles, *, dense=False):
    """Cycles of a PE-array job: ``nnz`` non-zeros per sparse row (in the order sent),
    reduction ``depth``, ``tiles`` dense column tiles; ``dense`` for the dense mode (every row
    has ``depth`` entries).

    Returns the cycle count from the command's transfer to the last result's.
    """
    L = config.sparse_port_lanes
    counts = [depth] * len(nnz) if dense else [int(n) for n in nnz]
    beats, cycle = [], START
    for n in counts:  # one beat a cycle, ``L`` entries each (an empty row: one empty beat)
        row = []
        for b in range(max(1, math.ceil(n / L))):
            row.append((cycle, min(L, n - b * L) if n else 0))
            cycle += 1
        beats.append(row)
    return _pe_job(config, counts, beats, depth, tiles, dense_start=START)


def _pe_job(config, counts, beats, depth, tiles, *, dense_start):
    """The PE array's job, given when each sparse beat arrives: ``beats[i]`` lists row ``i``'s
    beats as ``(cycle, entries)``, in the order sent; the dense tiles stream from
    ``dense_start`` at one beat a cycle. Returns the cycle of the last result."""
    R = config.pe_rows
    parts = config.pe_cols // config.dense_port_lanes
    costs = [pe_array.row_cost(n) for n in counts]
    banks, _ = pe_array.assign_rows(costs, R)
    # The result path: a PE row keeps at most two finished rows in flight and a result leaves
    # three cycles after the row's last entry; the PE rows sharing a result slot
    # (``q, q + Q, ...``) pass at most one result a cycle between them.
    Q = config.result_port_lanes
    row_costs = [[] for _ in range(R)]
    for bank, cost in zip(banks, costs):
        row_costs[bank].append(cost)
    words = [[] for _ in range(R)]  # per PE row: (cycle written, cycles of work, row ends)
    loaded = 0
    for bank, row in zip(banks, beats):
        for b, (cycle, entries) in enumerate(row):
            words[bank].append((cycle, max(entries, 1), b == len(row) - 1))
            loaded = max(loaded, cycle + 1)  # the first cycle in which the banks are final

    tile_beats = depth * parts
    ready = []                           # per tile: first cycle its dense rows are usable
    done_at = []                         # per tile: cycle after the last PE row finished it
    end = [0] * R                        # per PE row: cycle after its last issue so far
    span = [0] * R                       # per PE row: cycles of its latest tile
    in_flight = [[] for _ in range(R)]   # per PE row: its last two results' departures
    slot_free = [0] * Q                  # per result slot: the first cycle it is free
    last_result = lag = 0
    for t in range(tiles):
        if t == 0:
            ready.append(dense_start + tile_beats)
        else:
            # The loader takes tile t after tile t - 1, into the half tile t - 2 frees.
            start = ready[t - 1] if t < 2 else max(ready[t - 1], done_at[t - 2])
            ready.append(start + tile_beats)
        if t == 0:
            # The rows arrive while the first tile runs: a row cannot finish before its words
            # are written (and read) and its work after each of them is done.
            not_before = [[] for _ in range(R)]
            for r in range(R):
                rest = 0
                bound = None
                for written, work, row_end in reversed(words[r]):
                    if row_end:
                        if bound is not None:
                            not_before[r].append(bound)
                        rest, bound = 0, None
                    rest += work
                    candidate = written + WORD_READY + rest
                    bound = candidate if bound is None else max(bound, candidate)
                if bound is not None:
                    not_before[r].append(bound)
                not_before[r].reverse()
            departed = 0
            for q in range(Q):
                group = list(range(q, R, Q))
                ends, group_departed, slot_free[q] = _slot_group_tile(
                    group, row_costs, [ready[0]] * R, in_flight, slot_free[q], not_before)
                departed = max(departed, group_departed)
                for r in group:
                    # The tile ends only once the load is complete.
                    end[r] = ends[r] if ends[r] > loaded else loaded + 1
            last_result = departed + 1
        if t > 0:
            starts = [max(end[r], ready[t]) for r in range(R)]
            if t <= STEADY_TILES:
                departed = 0
                for q in range(Q):
                    group = list(range(q, R, Q))
                    ends, group_departed, slot_free[q] = _slot_group_tile(
                        group, row_costs, starts, in_flight, slot_free[q])
                    departed = max(departed, group_departed)
                    for r in group:
                        span[r] = ends[r] - starts[r]
                # How long after the last issue the last result leaves the slots.
                lag = departed + 1 - max(starts[r] + span[r] for r in range(R))
            # Later tiles repeat the same rows on each PE row: their spans stay the same.
            end = [starts[r] + span[r] for r in range(R)]
            last_result = max(end) + lag
        done_at.append(max(end))
    return math.ceil(max(max(end) - 1 + RESULT_PATH, last_result))


def _slot_group_tile(group, row_costs, starts, in_flight, slot_free, not_before=None):
    """One dense tile on the PE rows ``group`` that share a result slot: each PE row issues
    its rows' entries from ``starts[r]``; a row's result may leave two cycles after the cycle
    that follows its last issue, one a cycle through the slot, oldest first; a row's last entry
    issues only once the result of the row two before it has left (the result FIFO holds two).
    ``in_flight[r]`` (the departures of each PE row's last two results, updated) and
    ``slot_free`` carry the result path from one tile to the next. ``not_before[r][i]``, if
    given, is the earliest cycle after the last issue of PE row ``r``'s row ``i`` (its words'
    arrival). Returns the cycle after each PE row's last issue, the last departure and the
    slot's next free cycle."""
    heap, ends, departed = [], {}, slot_free - 1
    index, last_issue = {}, {}

    def finish(r, start):
        end = start + row_costs[r][index[r]]
        if not_before is not None:
            end = max(end, not_before[r][index[r]])
        if len(in_flight[r]) >= 2:
            end = max(end, in_flight[r][-2] + 1)
        last_issue[r] = end
        heapq.heappush(heap, (end + RESULT_FIFO_WAIT, r))

    for r in group:
        ends[r] = starts[r]
        if row_costs[r]:
            index[r] = 0
            finish(r, starts[r])
    while heap:
        eligible, r = heapq.heappop(heap)
        departed = max(eligible, slot_free)
        slot_free = departed + 1
        in_flight[r] = in_flight[r][-1:] + [departed]
        index[r] += 1
        if index[r] < len(row_costs[r]):
            finish(r, last_issue[r])
        else:
            ends[r] = last_issue[r]
    return ends, departed, slot_free


# ---- the accelerator top (hw.top.SwatAccel): one command, from its transfer to its reply ----
#
# Cycles are counted as the top's reply counts them: 0 is the cycle the command is taken. The
# constants below are the RTL's fixed latencies (FSM states and pipeline registers).

#: Selector: cycles per threshold pass beyond one beat a cycle (the histogram scan), and the
#: command's fixed cost.
THRESHOLD_PASS = 258
THRESHOLD_FIXED = 6
#: SAVE_ACT: the command's fixed cost beyond one beat a cycle.
SAVE_FIXED = 7
#: GEMM: the first selector command's cycle; a row's cost beyond its beats (selector command,
#: packer register, result); the cycle the PE array's command is taken.
GEMM_FIRST_ROW = 2
GEMM_ROW_EXTRA = 3
GEMM_PE_CMD = 1
#: From the PE array's last result to the reply.
GEMM_REPLY = 2
#: GEMM in dense mode: the first host beat reaches the rows adapter.
DENSE_FIRST_BEAT = 2
#: GEMM_SAVED: the activation buffer's first scan cycle (command, read check, bitmap read).
SAVED_FIRST_SCAN = 5


def _selector_passes(config):
    from hw.topk_selector import TopKSelector  # the pass count is the selector's rule
    return TopKSelector.from_config(config).passes


def threshold_cycles(config, n):
    """Cycles of a THRESHOLD command on an ``n``-element tensor (each pass streams it once,
    ``topk_lanes`` elements a cycle, then scans the histogram)."""
    passes = _selector_passes(config)
    return passes * (math.ceil(n / config.topk_lanes) + THRESHOLD_PASS) + THRESHOLD_FIXED


def save_act_cycles(config, n):
    """Cycles of a SAVE_ACT command on an ``n``-element tensor (one beat a cycle)."""
    return math.ceil(n / config.topk_lanes) + SAVE_FIXED


def _packer_beats(kept_row, lanes, first):
    """The mask packer's output for one row whose input beats arrive from cycle ``first``:
    ``[(cycle, entries, row_end)]`` (one output beat per input beat, full words packed across
    beats, one extra beat when the last leaves more than ``lanes`` entries)."""
    beats = [kept_row[i:i + lanes] for i in range(0, len(kept_row), lanes)] or [[]]
    out, pending = [], 0
    for j, beat in enumerate(beats):
        pending += int(sum(beat))
        cycle = first + j + 1
        if j < len(beats) - 1:
            full = pending >= lanes
            out.append((cycle, lanes if full else 0, False))
            pending -= lanes if full else 0
        elif pending > lanes:
            out += [(cycle, lanes, False), (cycle + 1, pending - lanes, True)]
        else:
            out.append((cycle, pending, True))
    return out


def _rows_adapter(beats):
    """:class:`hw.row_adapters.EntriesToRows` on one row's beats ``[(cycle, entries,
    row_end)]``: the PE array's beats ``[(cycle, entries)]`` (a beat with entries is held until
    the next one, or the row's end, arrives; a row with none becomes one empty beat)."""
    out, held = [], None
    for cycle, entries, row_end in beats:
        if entries == 0 and not row_end:
            continue
        if held is not None:
            out.append((cycle, held))
            held = None
        if entries:
            if row_end:
                out.append((cycle + 1, entries))
            else:
                held = entries
        elif not out:
            out.append((cycle, 0))
    return out


def gemm_cycles(config, mask, tiles, *, dense=False):
    """Cycles of a GEMM command: the sparse operand's keep mask (``rows x depth``, as the
    selector will keep it) times ``tiles`` dense tiles; ``dense`` for the dense mode (every
    element, the host's rows straight to the PE array)."""
    mask = np.asarray(mask, dtype=bool)
    rows, depth = mask.shape
    lanes = config.topk_lanes
    per_row = math.ceil(depth / lanes) if depth else 1
    beats, counts = [], []
    if dense:
        cycle = DENSE_FIRST_BEAT
        for _ in range(rows):
            beats.append([(cycle + 1 + j, min(lanes, depth - j * lanes))
                          for j in range(per_row)])
            counts.append(depth)
            cycle += per_row + 1
    else:
        cycle = GEMM_FIRST_ROW
        for r in range(rows):
            packed = _packer_beats(mask[r].tolist(), lanes, cycle + 1)
            beats.append(_rows_adapter(packed))
            counts.append(int(mask[r].sum()))
            cycle = packed[-1][0] + GEMM_ROW_EXTRA
    last = _pe_job(config, counts, beats, depth, tiles, dense_start=GEMM_PE_CMD + START)
    return last + GEMM_REPLY


def act_row_read(config, mask):
    """The activation buffer's row read of a stored ``rows x cols`` keep mask, as a list of its
    scan cycles: ``(row, kept elements emitted)`` per cycle (0 when a cycle emits nothing)."""
    mask = np.asarray(mask, dtype=bool)
    rows, cols = mask.shape
    word, lanes = config.act_scan_bits, config.topk_lanes
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


def gemm_saved_cycles(config, mask, tiles):
    """Cycles of a GEMM_SAVED command reading a feature-major saved tensor (row read) whose keep
    mask is ``mask`` (``features x depth``), times ``tiles`` dense tiles."""
    mask = np.asarray(mask, dtype=bool)
    rows, depth = mask.shape
    counts = mask.sum(axis=1).astype(int).tolist()
    beats = [[] for _ in range(rows)]
    # The act buffer's scan, through ElementsToRows (it holds a beat until the next arrives;
    # passing a finished row, or an empty one, takes a cycle in which it accepts nothing).
    cycle, feature, held = SAVED_FIRST_SCAN, 0, None
    for row, take in act_row_read(config, mask):
        if take == 0:
            cycle += 1
            continue
        while held is not None or feature < row:
            if held is not None and held[0] == row:
                beats[row].append((cycle, held[1]))
                held = None
                break
            if held is not None:                 # the held beat ends its row
                beats[held[0]].append((cycle, held[1]))
                held = None
            else:                                # a row with no kept element
                beats[feature].append((cycle, 0))
            feature += 1
            cycle += 1
        held = (row, take)
        cycle += 1
    cycle += 1  # the buffer's result ends the element stream
    while feature < rows:
        if held is not None:
            beats[held[0]].append((cycle, held[1]))
            held = None
        else:
            beats[feature].append((cycle, 0))
        feature += 1
        cycle += 1
    last = _pe_job(config, counts, beats, depth, tiles, dense_start=GEMM_PE_CMD + START)
    return last + GEMM_REPLY
