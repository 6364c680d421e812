"""A cycle model of the generated hardware, from the same configuration object.

:func:`pe_array_job_cycles` predicts the cycles of one job of the sparse PE array
(:class:`hw.pe_array.SparsePEArray`), from its command to its last result, when every input
stream offers a beat each cycle and the result stream is always ready. It follows the RTL's
rules: rows dealt to the least-loaded PE row (:func:`golden.pe_array.assign_rows`), the sparse
rows loading one beat a cycle while the PE rows already work on them, double-buffered dense
tiles (a tile loads once every PE row has finished the tile two before it), one entry a cycle
per PE row, a four-cycle path from a row's last entry to its result on the port, and the result
path's limits (two finished rows in flight per PE row; one result a cycle per result slot).
It leaves out the result slots' round-robin order, which matters only for rows of one or two
non-zeros.
"""

import math

from . import pe_array

__all__ = ["pe_array_job_cycles"]

#: Cycles from the command's transfer to the first sparse and dense beats.
START = 1
#: A bank word can be issued from the second cycle after the cycle it was written in.
WORD_READY = 2
#: From a row's last entry issued to its result taken on the result port.
RESULT_PATH = 4
#: The fewest cycles a PE row spends on a row: two rows in flight, three cycles to leave.
ROW_MIN = 1.8


def pe_array_job_cycles(config, nnz, depth, tiles, *, dense=False):
    """Cycles of a PE-array job: ``nnz`` non-zeros per sparse row (in the order sent),
    reduction ``depth``, ``tiles`` dense column tiles; ``dense`` for the dense mode (every row
    has ``depth`` entries).

    Returns the cycle count from the command's transfer to the last result's.
    """
    R = config.pe_rows
    L = config.sparse_port_lanes
    parts = config.pe_cols // config.dense_port_lanes
    counts = [depth] * len(nnz) if dense else [int(n) for n in nnz]
    costs = [pe_array.row_cost(n) for n in counts]
    banks, _ = pe_array.assign_rows(costs, R)
    # The result path: a PE row keeps at most two finished rows in flight and a result leaves
    # three cycles after the row's last entry, so a row costs at least 1.5 cycles; and the PE
    # rows sharing a result slot (``q, q + Q, ...``) pass at most one result a cycle between
    # them.
    Q = config.result_port_lanes
    loads = [0.0] * R
    rows_of = [0] * R
    for bank, cost in zip(banks, costs):
        loads[bank] += max(cost, ROW_MIN)
        rows_of[bank] += 1
    lane_rows = [sum(rows_of[q::Q]) for q in range(Q)]
    loads = [max(load, lane_rows[r % Q]) for r, load in enumerate(loads)]

    # The sparse load: one beat a cycle; a row's beats carry L entries each (one if empty).
    words = [[] for _ in range(R)]  # per PE row: (cycle written, cycles of work)
    cycle = START
    for bank, n in zip(banks, counts):
        beats = max(1, math.ceil(n / L))
        for b in range(beats):
            entries = min(L, n - b * L) if n else 0
            words[bank].append((cycle, max(entries, 1), b == beats - 1))
            cycle += 1
    loaded = cycle  # the first cycle in which the banks are final

    tile_beats = depth * parts
    ready = []                           # per tile: first cycle its dense rows are usable
    done_at = []                         # per tile: cycle after the last PE row finished it
    end = [0] * R                        # per PE row: cycle after its last issue so far
    for t in range(tiles):
        if t == 0:
            ready.append(START + tile_beats)
        else:
            # The loader takes tile t after tile t - 1, into the half tile t - 2 frees.
            start = ready[t - 1] if t < 2 else max(ready[t - 1], done_at[t - 2])
            ready.append(start + tile_beats)
        for r in range(R):
            if t == 0:
                now = ready[0]
                for written, work, row_end in words[r]:
                    now = max(now, written + WORD_READY) + (max(work, ROW_MIN) if row_end
                                                             else work)
                now = max(now, ready[0] + lane_rows[r % Q])
                if now <= loaded:
                    now = loaded + 1  # the tile ends only once the load is complete
                end[r] = now
            else:
                end[r] = max(end[r], ready[t]) + loads[r]
        done_at.append(max(end))
    return math.ceil(max(end)) - 1 + RESULT_PATH
