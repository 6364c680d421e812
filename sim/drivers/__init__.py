"""Stream drivers and monitors for cocotb, one driver per block, and the host driver."""
