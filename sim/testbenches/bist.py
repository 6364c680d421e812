"""cocotb test of :class:`hw.bist.SwatBist`: after reset the self-test runs to ``done`` and
reports the outcome the build expects.

Parameters (``SWAT_TB_PARAMS``): ``expect`` (``"pass"`` or ``"fail"``), ``timeout`` (cycles).
"""

import cocotb
from cocotb.triggers import RisingEdge

from .util import start_clock_and_reset, tb_params


@cocotb.test()
async def self_test_outcome(dut):
    params = tb_params()
    await start_clock_and_reset(dut)
    for cycle in range(params["timeout"]):
        await RisingEdge(dut.clk)
        if int(dut.done.value):
            break
    else:
        raise AssertionError(f"the self-test did not finish in {params['timeout']} cycles")
    passed, failed = int(dut.passed.value), int(dut.failed.value)
    assert passed != failed, f"passed={passed}, failed={failed}"
    want = params["expect"] == "pass"
    assert passed == want, f"self-test {'passed' if passed else 'failed'} after {cycle} cycles"
    # The outcome holds.
    for _ in range(20):
        await RisingEdge(dut.clk)
        assert (int(dut.done.value), int(dut.passed.value)) == (1, passed)
