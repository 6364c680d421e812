"""Built-in self-test: the accelerator computes a known SWAT tile and checks every result.

For a board with no host: read-only memories hold the commands and streams of a threshold
refresh and a sparse GEMM (a random weight tile, SWAT's top-K, a dense tile of two column
tiles), and the sums golden expects for every (row, tile). The test drives the accelerator's
host streams from them, checks each result as it arrives, and ends with ``done`` and
``passed`` or ``failed``.
"""

import numpy as np
from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import Out

from golden import numerics, pe_array as golden_pe, topk

from .layouts import dense_beats, full_beats
from .top import AccelOp, RowMode, SwatAccel

__all__ = ["bist_vectors", "SwatBist"]


def bist_vectors(config, *, seed=1, density=0.25):
    """The self-test's tile for ``config``: ``(w, mask, d, k, expected)`` with ``expected``
    the exact ``(w * mask) @ d`` per row, ``cols`` columns a tile (zeros past ``d``'s)."""
    rng = np.random.default_rng(seed)
    lo, hi = numerics.operand_range(config.width)
    rows = min(2 * config.pe_rows + 1, config.pe_max_rows)  # uneven over the PE rows
    depth = min(config.tile_depth, 12)
    n = config.pe_cols + (config.pe_cols + 1) // 2 if config.pe_max_tiles > 1 else config.pe_cols
    w = rng.integers(lo, hi + 1, size=(rows, depth))
    w[rng.random(w.shape) < 0.2] = 0
    w[0, 0] = lo  # the most negative operand
    d = rng.integers(lo, hi + 1, size=(depth, n))
    d[-1, :] = lo
    k = topk.topk_k(w.size, density)
    mask = topk.topk_mask(w, density)
    product = golden_pe.tile_product(np.where(mask, w, 0), d)
    tiles = -(-n // config.pe_cols)
    padded = np.zeros((rows, tiles * config.pe_cols), dtype=np.int64)
    padded[:, :n] = product
    return w, mask, d, k, padded


def _rom(m, name, layout, payloads):
    """A combinational-read memory of ``payloads`` (``layout``'s bits) and its read port."""
    mem = Memory(shape=unsigned(data.Layout.cast(layout).size), depth=len(payloads),
                 init=payloads)
    m.submodules[name] = mem
    return mem.read_port(domain="comb")


def _source(m, name, stream, layout, payloads):
    """Drive ``stream`` with ``payloads`` in order, one a beat."""
    port = _rom(m, f"{name}_rom", layout, payloads)
    index = Signal(range(len(payloads) + 1), name=f"{name}_index")
    m.d.comb += [port.addr.eq(index), stream.payload.eq(port.data),
                 stream.valid.eq(index < len(payloads))]
    with m.If(stream.valid & stream.ready):
        m.d.sync += index.eq(index + 1)


class SwatBist(wiring.Component):
    """Runs :func:`bist_vectors`'s tile through a :class:`hw.top.SwatAccel` of ``config`` once
    after reset.

    Parameters
    ----------
    config : golden.config.AccelConfig
        The accelerator's configuration.
    seed : int
        Seed of the test tile.
    corrupt : bool
        Expect a wrong sum for one result (so the test must fail): a check of the checker.

    Attributes
    ----------
    done : Signal, out
        Both commands answered.
    passed : Signal, out
        ``done``, no reply reported an error, every (row, tile) result came once and matched.
    failed : Signal, out
        ``done`` and not ``passed``.
    """

    done: Out(1)
    passed: Out(1)
    failed: Out(1)

    def __init__(self, config, *, seed=1, corrupt=False):
        self.config = config
        self.accel = SwatAccel(config)
        self.w, self.mask, self.d, self.k, self.expected = bist_vectors(config, seed=seed)
        if corrupt:
            self.expected[-1, -1] += 1
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        cfg, accel = self.config, self.accel
        m.submodules.accel = accel
        rows, depth = self.w.shape
        n = self.d.shape[1]
        tiles = -(-n // cfg.pe_cols)

        cmd = accel.cmd_layout
        commands = [
            cmd.const({"op": AccelOp.THRESHOLD, "slot": 0, "k": self.k}).as_bits(),
            cmd.const({"op": AccelOp.GEMM, "mode": RowMode.TOPK, "slot": 0, "rows": rows,
                       "depth": depth, "cols": min(cfg.pe_cols, n), "tiles": tiles}).as_bits(),
        ]
        tensor = accel.selector.data_layout
        beats = full_beats(self.w.reshape(-1), cfg.selector_lanes) * accel.selector.passes
        for row in self.w:
            beats += full_beats(row, cfg.selector_lanes)
        dense = accel.pe_array.dense_layout
        _source(m, "cmd", accel.cmd, cmd, commands)
        _source(m, "tensor", accel.tensor, tensor, [tensor.const(b).as_bits() for b in beats])
        _source(m, "dense", accel.dense, dense,
                [dense.const(b).as_bits() for b in dense_beats(self.d, cfg.pe_cols,
                                                                 cfg.dense_port_lanes)])

        # Results: each slot's sums against the expected ones of its (row, tile), once each.
        values = accel.pe_array.slot_layout["values"].shape
        expected = [values.const(self.expected[r, t * cfg.pe_cols:(t + 1) * cfg.pe_cols]
                                 .tolist()).as_bits()
                    for r in range(rows) for t in range(tiles)]
        seen = Signal(rows * tiles)
        wrong = Signal()
        m.d.comb += [accel.result.ready.eq(1), accel.act_out.ready.eq(1),
                     accel.reply.ready.eq(1)]
        for q, slot in enumerate(accel.result.payload.slots):
            port = _rom(m, f"expected_rom{q}", values, expected)
            index = Signal(range(rows * tiles), name=f"slot{q}_index")
            m.d.comb += [index.eq(slot.row * tiles + slot.tile), port.addr.eq(index)]
            with m.If(accel.result.valid & slot.valid):
                with m.If((slot.row >= rows) | (slot.tile >= tiles) | seen.bit_select(index, 1)
                          | (slot.values.as_value() != port.data)):
                    m.d.sync += wrong.eq(1)
                m.d.sync += seen.bit_select(index, 1).eq(1)

        replies = Signal(range(3))
        with m.If(accel.reply.valid):
            m.d.sync += replies.eq(replies + 1)
            with m.If(accel.reply.payload.error):
                m.d.sync += wrong.eq(1)
        m.d.comb += [
            self.done.eq(replies == 2),
            self.passed.eq(self.done & ~wrong & seen.all()),
            self.failed.eq(self.done & ~self.passed),
        ]
        return m
