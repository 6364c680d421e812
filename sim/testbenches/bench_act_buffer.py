"""cocotb benchmark of the activation buffer: stored bits and cycles of a write and of each read.

Parameters (``SWAT_TB_PARAMS``): ``buffer``, ``shape``, ``sparsities``, ``out`` (JSON file).
"""

import json

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from golden import topk
from golden.act_buffer import format_comparison
from hw.act_buffer import ActOp

from ..drivers.act_buffer import ActivationBufferDriver
from .util import CycleCounter, start_clock_and_reset, tb_params, tb_rng


@cocotb.test()
async def stored_bits_and_cycles(dut):
    params = tb_params()
    p = params["buffer"]
    rng = tb_rng("bench")
    await start_clock_and_reset(dut)
    drv = ActivationBufferDriver(dut, p, rng, stall=0.0)
    np_rng = np.random.default_rng(rng.getrandbits(32))
    rows, cols = params["shape"]
    # Post-ReLU-like activations: half zeros, the rest of varied magnitude.
    hi = (1 << (p["width"] - 1)) - 1
    counter = CycleCounter(dut.clk)
    report = []
    for sparsity in params["sparsities"]:
        x = np.clip(np.rint(np.maximum(np_rng.standard_normal((rows, cols)), 0) * hi / 3),
                    0, hi).astype(np.int64)
        mask = topk.sent_mask(x, topk.topk_mask(x, 1 - sparsity))  # what the selector sends
        n = x.size
        row = {"width": p["width"], "lanes": p["lanes"], "sparsity": sparsity, "n": n,
               "kept": int(mask.sum())}
        start = counter.count
        result = await drv.write(0, x, mask)
        assert result["error"] == 0
        row["write_cycles"] = counter.count - start
        row["stored_bits"] = result["stored_bits"]
        for op in (ActOp.READ_ROWS, ActOp.READ_COLS, ActOp.READ_DENSE):
            start = counter.count
            await drv.read(0, op, n_hint=4 * n)
            row[f"{op.name.lower()}_cycles"] = counter.count - start
        await drv.free(0)
        await ClockCycles(dut.clk, 2)
        row.update({f"format_{k}": v for k, v in
                    format_comparison(n, row["kept"] / n, p["width"]).items()
                    if k in ("dense", "bitmap", "index_value", "entropy")})
        report.append(row)
    with open(params["out"], "w") as f:
        json.dump(report, f, indent=2)
