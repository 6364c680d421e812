"""The small accelerator configurations the tests share, so a change to one is made once.

Tests change a field or two with :func:`tiny_config`; the command-line tests pass the same
configuration to ``python -m rtl_gen`` with :func:`config_flags`.
"""

import pytest

from golden.config import AccelConfig

#: The tiny accelerator: a 3x2 array, 8-bit, every memory just large enough for the jobs of
#: the top-level testbenches (5 positions by 7 features, a 6-8-3 network).
TINY = dict(pe_rows=3, pe_cols=2, width=8, tile_depth=16, topk_lanes=2, pe_sparse_lanes=0,
            pe_bank_entries=64, pe_max_rows=16, pe_max_tiles=4, max_tensor_len=256,
            act_bitmap_bits=256, act_values=128, act_tensors=2, act_max_rows=16,
            act_max_cols=16, nm_max_m=4)

#: The smallest accelerator, one PE: it fits the iCE40 UP5K of the iCEBreaker board, without
#: the activation buffer's conv read.
ONE_PE = dict(pe_rows=1, pe_cols=1, width=8, tile_depth=8, topk_lanes=1, pe_bank_entries=16,
              pe_max_rows=4, pe_max_tiles=2, max_tensor_len=64, nm_max_m=2,
              max_kernel_slice=1, act_bitmap_bits=64, act_values=32, act_tensors=1,
              act_max_rows=8, act_max_cols=8, act_conv_read=0)


def tiny_config(**changes):
    """:data:`TINY` with ``changes``, as an :class:`AccelConfig`."""
    return AccelConfig(**{**TINY, **changes})


def config_flags(fields):
    """The ``python -m rtl_gen`` flags that give the configuration ``fields`` (a dict like
    :data:`TINY`)."""
    fields = dict(fields)
    flags = ["--pe", f"{fields.pop('pe_rows')}x{fields.pop('pe_cols')}"]
    for name, value in fields.items():
        flags += ["--" + name.replace("_", "-"), str(value)]
    return flags


def by_default_on(simulator):
    """A mark: the test runs by default on ``simulator`` only, and its instance on the other
    simulator is ``long`` (it runs with ``--long``)."""
    other = {"icarus": "verilator", "verilator": "icarus"}[simulator]
    return pytest.mark.long(simulator=other)
