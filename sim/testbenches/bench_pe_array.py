"""cocotb benchmark of the sparse PE array: the jobs of :func:`sim.bench.make_jobs`, no stalls.

Parameters (``SWAT_TB_PARAMS``): ``config``, ``layers``, ``sparsities``, ``tiles``, ``seed``,
``order``, ``out`` (a JSON file to write: per job, cycles and the ``done`` counters). Every
result is also checked against golden.
"""

import json

import cocotb

from golden.config import AccelConfig
from hw.pe_array import PEMode

from ..bench import make_jobs
from ..drivers.pe_array import PEArrayDriver, expected_tiles
from .util import start_clock_and_reset, tb_params, tb_rng


@cocotb.test()
async def cycles_per_job(dut):
    params = tb_params()
    config = AccelConfig.from_dict(params["config"])
    jobs = make_jobs(config.pe_rows, config.pe_cols, params["layers"], params["sparsities"],
                     params["tiles"], params["seed"], params["order"])
    await start_clock_and_reset(dut)
    drv = PEArrayDriver(dut, config, tb_rng("bench"), stall=0.0)
    measured = []
    for job in jobs:
        dense = job["sparsity"] is None
        mode = PEMode.DENSE if dense else PEMode.SPARSE
        start = drv.result.cycle
        result = await drv.run(mode, job["s"], None if dense else job["mask"], job["d"],
                               order=job["order"])
        cycles = drv.result.cycles[-1] - start
        mask = None if dense else job["mask"]
        want = expected_tiles(job["s"], job["s"] == job["s"] if dense else mask, job["d"],
                              drv.cols, job["order"])
        assert result.tiles == want, f"{job['layer']} {job['gemm']}: results differ from golden"
        assert result.done["error"] == {k: 0 for k in result.done["error"]}
        measured.append({"cycles": cycles, "hw_cycles": result.done["cycles"],
                         **{k: result.done[k] for k in ("busy", "macs", "stalls")}})
        cocotb.log.info(f"{job['layer']} {job['gemm']} {job['sparsity']}: {cycles} cycles")
    with open(params["out"], "w") as f:
        json.dump(measured, f)
