"""cocotb test: a few SWAT training iterations of :mod:`sim.tiny_net`'s two-layer network with
every matrix product on the accelerator top, against the same code on golden, bit for bit.

Parameters (``SWAT_TB_PARAMS``): ``config``, ``sizes``, ``batch``, ``density``, ``iterations``.
"""

import cocotb
import numpy as np

from ..drivers.accel import AccelDriver
from .util import start_clock_and_reset, tb_params, tb_rng
from ..tiny_net import GoldenEngine, RtlEngine, init_params, make_batch, train_step


@cocotb.test()
async def training_matches_golden(dut):
    params = tb_params()
    await start_clock_and_reset(dut)
    drv = AccelDriver(dut, params["config"], tb_rng("tiny_net"), stall=0.2)
    width = drv.config.width
    sizes, density = tuple(params["sizes"]), params["density"]
    rng = np.random.default_rng(7)
    weights = init_params(rng, sizes, width)
    on_rtl, on_golden = [w.copy() for w in weights], [w.copy() for w in weights]
    rtl, golden = RtlEngine(drv, density), GoldenEngine(width, density)
    x, target = make_batch(rng, params["batch"], sizes, width)
    losses = []
    for iteration in range(params["iterations"]):
        loss_rtl = await train_step(rtl, on_rtl, x, target, width)
        loss_golden = await train_step(golden, on_golden, x, target, width)
        assert loss_rtl == loss_golden, \
            f"iteration {iteration}: loss {loss_rtl}, golden {loss_golden}"
        for a, b in zip(on_rtl, on_golden):
            assert np.array_equal(a, b), f"iteration {iteration}: weights differ from golden"
        losses.append(loss_rtl)
    cocotb.log.info(f"losses {losses}, {rtl.cycles} accelerator cycles")
    assert losses[-1] < losses[0], f"the loss did not fall: {losses}"
