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

Banks: a PE row's bank stores a row's entries in words of ``lanes`` (the sparse port's width),
every word of a row full but its last (:class:`hw.row_packer.RowPacker` packs short beats), so a
row takes :func:`packed_words` words whatever beats it came in. :func:`bank_words` is what each
bank holds for a job; a job needing more than ``bank_words`` words on any PE row is one the
hardware cannot hold (it flags ``bank_full``), and :func:`bank_words_bound` bounds it for any job
of a given shape.
"""

import numpy as np

__all__ = ["row_cost", "assign_rows", "longest_first", "tile_product", "bank_loads",
           "ideal_cycles", "packed_words", "pack_row", "bank_words", "bank_words_bound"]


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


def packed_words(nnz, lanes):
    """Bank words a row of ``nnz`` entries takes: full words of ``lanes`` and the rest (an
    empty row takes one, its row-end marker)."""
    return max(1, -(-int(nnz) // lanes))


def pack_row(counts, lanes):
    """The word sizes a row sent in beats of ``counts`` entries becomes (the row packer):
    ``lanes`` entries each, the rest last; an empty row is one empty word."""
    total = sum(int(c) for c in counts)
    return [lanes] * (total // lanes) + ([total % lanes] if total % lanes or not total else [])


def bank_words(nnz_per_row, pe_rows, lanes):
    """Words each PE row's bank holds for a job whose rows (in the order sent) have
    ``nnz_per_row`` entries: the rows go where :func:`assign_rows` deals them."""
    nnz = [int(n) for n in nnz_per_row]
    assignment, _ = assign_rows([row_cost(n) for n in nnz], pe_rows)
    words = [0] * pe_rows
    for bank, n in zip(assignment, nnz):
        words[bank] += packed_words(n, lanes)
    return words


def bank_words_bound(rows, depth, pe_rows, lanes):
    """Most words any bank can need for a job of ``rows`` rows of ``depth`` positions, whatever
    entries its rows keep.

    A bank's load (:func:`row_cost`, summed) is at most ``ceil(rows * depth / pe_rows) + depth``:
    its last row went to the least loaded bank, which had at most the average. A row of cost
    ``c`` takes ``ceil(c / lanes) <= (c + lanes - 1) / lanes`` words, and a bank holds at most
    as many rows as its load (every row costs at least one)."""
    depth = max(1, int(depth))
    load = -(-int(rows) * depth // pe_rows) + depth
    held = min(int(rows), load)
    return -(-(load + held * (lanes - 1)) // lanes)
