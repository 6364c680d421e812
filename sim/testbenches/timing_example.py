"""The README's timing example: one small GEMM command on the accelerator top, every transfer
on every host stream stamped with its cycle (relative to the command's).

Parameters (``SWAT_TB_PARAMS``): ``config``, ``out`` (a JSON file of the stamps)."""

import json

import cocotb
import numpy as np

from golden import topk

from ..drivers.accel import AccelDriver
from ..drivers.pe_array import expected_tiles
from .util import start_clock_and_reset, tb_params, tb_rng


@cocotb.test()
async def gemm_timing(dut):
    params = tb_params()
    await start_clock_and_reset(dut)
    drv = AccelDriver(dut, params["config"], tb_rng("timing"), stall=0.0, short=0.0)
    s = np.array([[5, 0, -3, 1], [0, 2, 0, -7]])
    d = np.array([[1, 2], [3, 4], [5, 6], [7, 8]])
    await drv.threshold(0, s, 3)
    marks = {name: len(port.cycles) for name, port in
             (("cmd", drv.cmd), ("tensor", drv.tensor), ("dense", drv.dense),
              ("result", drv.result), ("reply", drv.reply))}
    reply, got = await drv.gemm(s, d, slot=0)
    assert got == expected_tiles(s, topk.topk_mask(s, 3 / 8), d, drv.cols, [0, 1])
    start = drv.cmd.cycles[-1]
    stamps = {name: [c - start for c in port.cycles[marks[name]:]] for name, port in
              (("cmd", drv.cmd), ("tensor", drv.tensor), ("dense", drv.dense),
               ("result", drv.result), ("reply", drv.reply))}
    with open(params["out"], "w") as f:
        json.dump({"stamps": stamps, "reply_cycles": reply["cycles"]}, f)
