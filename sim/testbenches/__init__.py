"""cocotb testbenches, run by :func:`sim.runner.run_cocotb` (``test_module="sim.testbenches.NAME"``)."""
