"""The PE array's dense loader (:mod:`hw.pe_array`): dense tiles into the free half of every PE
row's double-buffered copy."""

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .pe_job import ERROR_LAYOUT, index_shape

__all__ = ["DenseLoader", "dense_word_bits"]


def dense_word_bits(depth_bits, rows_per_word):
    """Address bits of a word in one half of a PE row's dense-tile memory (at least 1)."""
    return max(1, depth_bits - (rows_per_word.bit_length() - 1))


class DenseLoader(wiring.Component):
    """Takes a job's dense tiles, ``depth`` rows of ``cols`` values each, and writes each row,
    once whole, to every PE row's copy of the tiles (one broadcast). A tile goes to the half of
    the double buffer the tile two before it used, once every PE row has released that half,
    so the next tile loads while this one is used. With ``rows_per_word`` above 1, a beat
    carries that many whole rows and is written as one word (the tile's last word padded).

    Parameters
    ----------
    rows, cols, width : int
        PE rows, PE columns, operand width.
    dense_layout, cmd_layout : Layout
        Of the array's ``dense`` beats (``values[lanes]``, ``last``) and commands.
    depth_bits : int
        Index bits of a dense tile's rows.
    max_tiles : int
        Most dense tiles in a job.
    rows_per_word : int
        Dense rows a beat and a memory word (1, 2, 4 or 8); above 1, the beats carry
        ``rows_per_word * cols`` values.

    Attributes
    ----------
    dense : In(stream.Signature(dense_layout))
        The job's dense tiles, ``last`` on each tile's final beat.
    start : In(1)
        A command is taken: forget the last job.
    cmd : In(cmd_layout)
        The job's command (``depth``, ``cols``, ``tiles``).
    enable : In(1)
        The job takes dense beats.
    drop : In(1)
        The job failed: from the next cycle on, take its remaining beats and write nothing.
    released, released_half : In(rows)
        Each PE row finished a tile this cycle, in that half of the buffer.
    tile_we, tile_waddr, tile_wdata : Out
        The write port of every PE row's copy (address: the word in the tile, then the half;
        :func:`dense_word_bits` bits of word).
    tile_loaded : Out(1)
        A tile was completed this cycle.
    all_taken : Out(1)
        Every tile of the job has been taken.
    error : Out(ERROR_LAYOUT)
        ``dense_last``: the beat taken this cycle has ``last`` out of place.
    """

    def __init__(self, *, rows, cols, width, dense_layout, cmd_layout, depth_bits, max_tiles,
                 rows_per_word=1):
        self._rows, self._cols, self._width = rows, cols, width
        self._lanes = dense_layout["values"].shape.length
        self._depth_bits, self._max_tiles = depth_bits, max_tiles
        self._group = rows_per_word
        self._word_bits = dense_word_bits(depth_bits, rows_per_word)
        super().__init__({
            "dense": In(stream.Signature(dense_layout)),
            "start": In(1), "cmd": In(cmd_layout), "enable": In(1), "drop": In(1),
            "released": In(rows), "released_half": In(rows),
            "tile_we": Out(1), "tile_waddr": Out(self._word_bits + 1),
            "tile_wdata": Out(data.ArrayLayout(signed(width), cols * rows_per_word)),
            "tile_loaded": Out(1), "all_taken": Out(1),
            "error": Out(ERROR_LAYOUT),
        })

    def elaborate(self, platform):
        m = Module()
        R, C, P, cmd = self._rows, self._cols, self._lanes, self.cmd
        G = self._group
        parts = max(1, C // P)
        d_tile = Signal(range(self._max_tiles + 1))
        d_row = Signal(self._word_bits)  # the tile's word (its row when G == 1)
        d_part = Signal(index_shape(parts))
        staging = Signal(data.ArrayLayout(signed(self._width), C))
        pending = [Signal(R, name=f"pending{h}") for h in range(2)]  # PE rows still using a half
        skip = Signal()  # drop the beats (the job failed)
        half_free = Signal()
        m.d.comb += half_free.eq(Mux(d_tile[0], pending[1], pending[0]) == 0)
        m.d.comb += self.dense.ready.eq(self.enable & (d_tile < cmd.tiles) & (skip | half_free))
        dbeat = self.dense.payload
        for g in range(G):
            for col in range(C):
                part, lane = divmod(g * C + col, P)
                incoming = Mux(d_part == part, dbeat.values[lane], staging[col]) \
                    if parts > 1 else dbeat.values[lane]
                m.d.comb += self.tile_wdata[g * C + col].eq(Mux(col < cmd.cols, incoming, 0))
        row_complete = Signal()
        m.d.comb += row_complete.eq(d_part == parts - 1)
        tile_complete = Signal()
        last_word = (cmd.depth - 1) >> (G.bit_length() - 1)
        m.d.comb += tile_complete.eq(row_complete & (d_row == last_word))
        d_fire = Signal()
        m.d.comb += d_fire.eq(self.dense.valid & self.dense.ready)
        m.d.comb += [self.tile_loaded.eq(d_fire & tile_complete & ~skip),
                     self.tile_we.eq(d_fire & row_complete & ~skip),
                     self.tile_waddr.eq(Cat(d_row, d_tile[0])),
                     self.all_taken.eq(d_tile == cmd.tiles),
                     self.error.dense_last.eq(d_fire & (dbeat.last != tile_complete))]
        with m.If(d_fire):
            if parts > 1:
                for lane in range(P):
                    with m.Switch(d_part):
                        for part in range(parts):
                            with m.Case(part):
                                m.d.sync += staging[part * P + lane].eq(dbeat.values[lane])
            with m.If(row_complete):
                m.d.sync += d_part.eq(0)
                with m.If(tile_complete):
                    m.d.sync += [d_row.eq(0), d_tile.eq(d_tile + 1)]
                with m.Else():
                    m.d.sync += d_row.eq(d_row + 1)
            with m.Else():
                m.d.sync += d_part.eq(d_part + 1)
        for h in range(2):
            released = self.released & (self.released_half if h else ~self.released_half)
            claimed = d_fire & tile_complete & ~skip & (d_tile[0] == h)
            with m.If(self.start):
                m.d.sync += pending[h].eq(0)
            with m.Elif(claimed):
                m.d.sync += pending[h].eq((1 << R) - 1)
            with m.Else():
                m.d.sync += pending[h].eq(pending[h] & ~released)
        with m.If(self.drop):
            m.d.sync += skip.eq(1)
        with m.If(self.start):
            m.d.sync += [d_tile.eq(0), d_row.eq(0), d_part.eq(0), skip.eq(0)]
        return m
