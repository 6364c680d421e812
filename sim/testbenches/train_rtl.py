"""cocotb test behind ``python -m sim.train_rtl``: the first iterations of golden's integer
training run with every top-K and every product on the accelerator top, against golden's run
bit for bit after every iteration.

golden's training code is synchronous, so it runs in a :func:`cocotb.task.bridge` thread and
waits for each accelerator command through :func:`cocotb.task.resume`.

Parameters (``SWAT_TB_PARAMS``): ``config``, ``iterations``, ``batch``, ``numerics``,
``grad_rounding``, ``density``, ``channels``, ``seed``, ``out`` (the JSON report of
:func:`sim.train_rtl.train_side_by_side`).
"""

import json

import cocotb
from cocotb.task import bridge, resume

from ..drivers.accel import AccelDriver
from ..train_rtl import train_side_by_side
from .util import start_clock_and_reset, tb_params, tb_rng


def _run_on_simulator(async_fn, *args, **kwargs):
    return resume(async_fn)(*args, **kwargs)


@cocotb.test()
async def training_matches_golden(dut):
    params = tb_params()
    await start_clock_and_reset(dut)
    drv = AccelDriver(dut, params["config"], tb_rng("train_rtl"), stall=0.0, short=0.0)
    report = await bridge(train_side_by_side)(
        drv, _run_on_simulator, iterations=params["iterations"], batch=params["batch"],
        numerics_name=params["numerics"], density=params["density"],
        channels=tuple(params["channels"]), seed=params["seed"],
        grad_rounding=params["grad_rounding"], log=cocotb.log.info)
    with open(params["out"], "w") as f:
        json.dump(report, f)
    assert report["match"], report["mismatch"]
