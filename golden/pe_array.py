"""The sparse PE array's arithmetic and schedule, as the hardware does them.

The array computes ``S @ D`` for a sparse operand ``S`` (rows x depth) held in compressed form and
a dense operand ``D`` (depth x columns), one tile of ``pe_cols`` dense columns at a time. Each
sparse row goes, whole, to one PE row, which multiplies each of its non-zeros by a row of ``D``
(``pe_cols`` MACs a cycle) and accumulates exactly (:func:`golden.numerics.acc_width`).

Load balancing: rows are dealt out as they stream in, each to the PE row with the least work so
far (lowest index on ties). That is the schedule dynamic dispatch would produce (the PE row with
the least work is the one that frees first), decided at load time. A driver that sends rows
longest first turns it into LPT scheduling. :func:`assign_rows` is that rule, exactly.

A row costs ``max(nnz, 1)`` cycles per dense tile: an empty row still produces its (zero) result.
"""

import numpy as np

__all__ = ["row_cost", "assign_rows", "longest_first", "tile_product", "bank_loads",
           "ideal_cycles"]


def row_cost(nnz):
    """Cycles one PE row spends on a row of ``nnz`` non-zeros per dense tile: one per entry, and
    one for an empty row (sent as a single beat with no entries)."""
    return max(int(nnz), 1)


def assign_rows(costs, pe_rows):
    """The PE row each sparse row goes to, in stream order: the least loaded so far, lowest
    index on ties. Returns ``(assignment, loads)``."""
    loads = [0] * pe_rows
    assignment = []
    for cost in costs:
        bank = min(range(pe_rows), key=lambda b: (loads[b], b))
        assignment.append(bank)
        loads[bank] += int(cost)
    return assignment, loads


def longest_first(nnz):
    """Row order that sends the rows with most non-zeros first (stable), for LPT balancing."""
    nnz = np.asarray(nnz)
    return [int(i) for i in np.argsort(-nnz, kind="stable")]


def tile_product(sparse, dense):
    """Exact integer ``sparse @ dense`` (zeros of ``sparse`` are the dropped elements)."""
    s = np.asarray(sparse, dtype=np.int64)
    d = np.asarray(dense, dtype=np.int64)
    if s.ndim != 2 or d.ndim != 2 or s.shape[1] != d.shape[0]:
        raise ValueError(f"shapes {s.shape} and {d.shape} do not multiply")
    return s @ d


def bank_loads(nnz_per_row, pe_rows):
    """Per-PE-row cycles per dense tile for rows sent in the given order."""
    _, loads = assign_rows([row_cost(n) for n in nnz_per_row], pe_rows)
    return loads


def ideal_cycles(total_work, pe_rows):
    """Cycles per dense tile with perfect balance and no overhead."""
    return -(-int(total_work) // pe_rows)
