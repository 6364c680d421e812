"""Verification and performance simulation of the accelerator.

The modules at this level are commands (``python -m sim.swat_step``, ``sim.network``,
``sim.bench``, ``sim.bench_topk``, ``sim.bench_act_buffer``, ``sim.bench_generate``,
``sim.bench_logic_product``, ``sim.model_vs_bench``, ``sim.results``), the cocotb runner
(:mod:`sim.runner`) and the tiny network trained on the RTL (:mod:`sim.tiny_net`). By role:

* :mod:`sim.drivers`: stream drivers and monitors, one driver per block, and the host driver;
* :mod:`sim.testbenches`: cocotb testbenches, run by :func:`sim.runner.run_cocotb`;
* :mod:`sim.formal`: the SymbiYosys runner and the property harnesses.

Nothing in ``golden/``, ``hw/`` or ``rtl_gen/`` imports this package.
"""
