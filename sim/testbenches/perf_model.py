"""cocotb test: the PE array's cycle model (:func:`golden.perf_model.pe_array_job_cycles`)
against the RTL on a spread of random tiles, every stream at full rate.

Parameters (``SWAT_TB_PARAMS``): ``config``, ``jobs`` (how many), ``tolerance`` (relative),
``out`` (a JSON file: per job the shape, the measured and the predicted cycles), ``short``
(optional: rows of a few entries over many tiles, where the result path sets the pace).
"""

import json

import cocotb
import numpy as np

from golden import pe_array as golden_pe, topk
from golden.perf_model import pe_array_job_cycles
from hw.pe_array import PEMode

from ..drivers.pe_array import PEArrayDriver
from .util import start_clock_and_reset, tb_params, tb_rng


@cocotb.test()
async def model_matches_rtl(dut):
    params = tb_params()
    await start_clock_and_reset(dut)
    rng = tb_rng("perf_model")
    drv = PEArrayDriver(dut, params["config"], rng, stall=0.0)
    cfg = drv.config
    np_rng = np.random.default_rng(rng.getrandbits(32))
    report = []
    for _ in range(params["jobs"]):
        if params.get("short"):
            rows = int(np_rng.integers(2 * cfg.pe_rows, 8 * cfg.pe_rows + 1))
            depth = int(np_rng.integers(4, 12))
            tiles = int(np_rng.integers(cfg.pe_max_tiles // 2, cfg.pe_max_tiles + 1))
            density = float(np_rng.choice([0.1, 0.25, 0.5]))
            dense = False
        else:
            rows = int(np_rng.integers(8 * cfg.pe_rows, 16 * cfg.pe_rows + 1))
            depth = int(np_rng.integers(cfg.tile_depth // 2, cfg.tile_depth + 1))
            tiles = int(np_rng.integers(2, cfg.pe_max_tiles + 1))
            density = float(np_rng.choice([0.1, 0.2, 0.5, 1.0]))
            dense = bool(np_rng.random() < 0.2)
        s = np_rng.integers(-100, 101, size=(rows, depth)) * np_rng.lognormal(
            0, 0.5, size=(rows, 1))
        s = np.clip(np.rint(s), -128, 127).astype(np.int64)
        mask = np.ones(s.shape, bool) if dense else topk.topk_mask(s, density)
        d = np_rng.integers(-100, 101, size=(depth, tiles * cfg.pe_cols))
        nnz = (mask & (s != 0)).sum(axis=1)
        order = golden_pe.longest_first(nnz)
        cmd_sent = len(drv.cmd.cycles)
        job = await drv.run(PEMode.DENSE if dense else PEMode.SPARSE, s, mask, d, order=order)
        assert all(v == 0 for v in job.done["error"].values())
        measured = drv.result.cycles[-1] - drv.cmd.cycles[cmd_sent]
        predicted = pe_array_job_cycles(cfg, nnz[order], depth, tiles, dense=dense)
        report.append({"rows": rows, "depth": depth, "tiles": tiles, "density": density,
                       "dense": dense, "measured": measured, "predicted": predicted})
    with open(params["out"], "w") as f:
        json.dump(report, f)
    worst = max(report, key=lambda r: abs(r["predicted"] - r["measured"]) / r["measured"])
    error = abs(worst["predicted"] - worst["measured"]) / worst["measured"]
    cocotb.log.info(f"worst model error {error:.2%}: {worst}")
    assert error <= params["tolerance"], f"model off by {error:.2%} on {worst}"
