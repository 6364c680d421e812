"""cocotb testbench of :class:`hw.memory.SimpleDualPortMemory` against a model: a list of words.

Every cycle drives a random write (or none) and a random read (or none); the read data of the
next cycle must be the word as it was before that cycle's write (read before write), zero for
a word never written, and held while no read is enabled. Addresses favour the first and last
word and collisions of the read with the write.

Parameters (``SWAT_TB_PARAMS``): ``width``, ``depth``, ``cycles``.
"""

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from .util import start_clock_and_reset, tb_params, tb_rng


def _address(rng, depth, other=None):
    pick = rng.random()
    if other is not None and pick < 0.3:
        return other
    if pick < 0.45:
        return rng.choice((0, depth - 1))
    return rng.randrange(depth)


@cocotb.test()
async def random_reads_and_writes(dut):
    params = tb_params()
    width, depth = params["width"], params["depth"]
    rng = tb_rng("memory")
    await start_clock_and_reset(dut)
    await FallingEdge(dut.clk)
    model = [0] * depth
    held = None  # r_data as the model says, once a read has happened
    top = (1 << width) - 1
    for cycle in range(params["cycles"]):
        write = rng.random() < 0.5
        read = rng.random() < 0.7
        w_addr = _address(rng, depth)
        r_addr = _address(rng, depth, w_addr)
        w_data = rng.choice((0, top, 1 << (width - 1), rng.getrandbits(width)))
        dut.w_en.value, dut.w_addr.value, dut.w_data.value = int(write), w_addr, w_data
        dut.r_en.value, dut.r_addr.value = int(read), r_addr
        await RisingEdge(dut.clk)
        if read:
            held = model[r_addr]  # before this cycle's write
        if write:
            model[w_addr] = w_data
        await ReadOnly()
        if held is not None:
            got = int(dut.r_data.value)
            assert got == held, (f"cycle {cycle}: r_data {got:#x}, expected {held:#x} "
                                 f"(read {read} at {r_addr}, write {write} at {w_addr})")
        await FallingEdge(dut.clk)  # drive the next cycle's inputs away from the edge
