"""cocotb benchmark of the top-K selector: cycles of every command on one tensor, no stalls.

Parameters (``SWAT_TB_PARAMS``): ``selector``, ``n``, ``out`` (a JSON file to write).
"""

import json

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from golden import topk

from .util import CycleCounter, start_clock_and_reset, tb_params, tb_rng
from ..drivers.topk import TopKSelectorDriver


@cocotb.test()
async def cycles_per_command(dut):
    params = tb_params()
    n = params["n"]
    rng = tb_rng("bench")
    await start_clock_and_reset(dut)
    drv = TopKSelectorDriver(dut, params["selector"], rng, stall=0.0, short=0.0)
    np_rng = np.random.default_rng(rng.getrandbits(32))
    hi = (1 << (drv.width - 1)) - 1
    x = np.clip(np.rint(np_rng.standard_normal(n) * hi / 4), -hi - 1, hi).astype(np.int64)
    # Let the histogram clear after reset finish, so it is not charged to the first command.
    await ClockCycles(dut.clk, 300)
    counter = CycleCounter(dut.clk)
    slice_len = 9 if drv.model.max_slice >= 9 else drv.model.max_slice
    slices = x[: n - n % slice_len]
    runs = [
        ("threshold", drv.model.passes, lambda: drv.threshold(x, topk.topk_k(n, 0.2))),
        ("apply", 1, lambda: drv.apply(x)),
        ("nm 2:4", 1, lambda: drv.nm(x, 2, 4)),
        ("slice threshold", drv.model.slice_passes,
         lambda: drv.slice_threshold(slices, topk.topk_k(slices.size // slice_len, 0.2),
                                     slice_len)),
        ("slice apply", 1, lambda: drv.slice_apply(slices, slice_len)),
    ]
    rows = []
    for name, passes, run in runs:
        start = counter.count
        await run()
        cycles = counter.count - start
        elements = slices.size if name.startswith("slice") else n
        ideal = passes * -(-elements // drv.lanes)
        rows.append({"command": name, "elements": elements, "passes": passes,
                     "cycles": cycles, "ideal_cycles": ideal,
                     "cycles_per_element": cycles / elements,
                     "ideal_cycles_per_element": ideal / elements})
    with open(params["out"], "w") as f:
        json.dump(rows, f, indent=2)
