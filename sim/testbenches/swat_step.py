"""cocotb test behind ``python -m sim.swat_step``: one SWAT training step of a layer on the
accelerator top, compared bit for bit with golden.

Parameters (``SWAT_TB_PARAMS``): ``config``, ``layer`` (a :class:`sim.swat_step.LayerSpec`
dict), ``batch``, ``density``, ``seed``, ``out`` (a JSON report: cycles per phase, stored bits,
problems, and the cycle model's prediction of each phase).
"""

import json

import cocotb

from ..drivers.accel import AccelDriver
from ..swat_step import (LayerSpec, compare, golden_step, make_operands, predict_step,
                         run_step_on_rtl)
from .util import start_clock_and_reset, tb_params, tb_rng


@cocotb.test()
async def swat_step(dut):
    params = tb_params()
    spec = LayerSpec.from_dict(params["layer"])
    await start_clock_and_reset(dut)
    drv = AccelDriver(dut, params["config"], tb_rng("step"), stall=0.0, short=0.0)
    width = drv.config.width
    w, x, dy = make_operands(spec, params["batch"], width, params["seed"])
    want = golden_step(spec, w, x, dy, params["density"], width)
    y, dx, dw, report = await run_step_on_rtl(drv, spec, w, x, dy, params["density"])
    report["model"] = predict_step(drv.config, spec, w, x, dy, params["density"])
    report["problems"] = compare(want, (y, dx, dw))
    with open(params["out"], "w") as f:
        json.dump(report, f)
    assert not report["problems"], "; ".join(report["problems"])
