"""What a job of the PE array (:mod:`hw.pe_array`) is made of, shared by the array's parts: its
modes, its command, its error flags and the width of its counters."""

from amaranth.lib import data, enum

__all__ = ["COUNTER_WIDTH", "PEMode", "ERROR_LAYOUT", "command_layout", "index_shape",
           "bank_depth"]

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


def command_layout(*, max_rows, tile_depth, cols, max_tiles, nm_max_m):
    """A job's command: ``mode`` (:class:`PEMode`), ``rows``, ``depth``, ``cols``, ``tiles``,
    ``nm_n``, ``nm_m``."""
    return data.StructLayout({
        "mode": PEMode,
        "rows": range(max_rows + 1),
        "depth": range(tile_depth + 1),
        "cols": range(cols + 1),
        "tiles": range(max_tiles + 1),
        "nm_n": range(nm_max_m + 1),
        "nm_m": range(nm_max_m + 1),
    })


def index_shape(n):
    """Shape of an index into ``n`` things; never zero bits wide (Verilog has no such vector)."""
    return range(max(n, 2))


def bank_depth(bank_words):
    """Words of a PE row's bank memory: two halves (one job each) of ``bank_words`` rounded up
    to a power of two, addressed by the half's bit on top."""
    return 2 << (bank_words - 1).bit_length()
