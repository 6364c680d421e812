import numpy as np
import pytest

from golden import pe_array as golden_pe
from golden.config import AccelConfig, ConfigError
from hw.top import SwatAccel

from configs import tiny_config


def test_configurations_that_cannot_work_are_refused():
    with pytest.raises(ConfigError, match="pe_sparse_lanes .2. must be at least the selector's lanes .4."):
        SwatAccel(AccelConfig(pe_rows=2, pe_cols=2, topk_lanes=4, pe_sparse_lanes=2))
    with pytest.raises(ConfigError, match="tile_depth .512. must not exceed act_max_rows .256."):
        SwatAccel(AccelConfig(tile_depth=512, act_max_rows=256))


@pytest.mark.parametrize("width, density", [(8, 0.3), (16, 0.3), (8, 0.9)])
def test_cocotb_linear_layer_step(run_cocotb, width, density):
    """At density 0.9 a fifth of the operands (zeros) tie with a threshold of 0."""
    cfg = tiny_config(width=width)
    run_cocotb(SwatAccel(cfg), toplevel="swat_accel", test_module="sim.testbenches.top",
               params={"config": cfg.to_dict(), "batch": 5, "fan_in": 7, "fan_out": 4,
                       "density": density})


@pytest.mark.parametrize("fits", [True, False])
def test_cocotb_banks_at_the_exact_limit(run_cocotb, fits):
    """16 positions x 16 features saved in both orders, on a 2x2 array whose bank words (4
    entries) are wider than the selector's beats (2): banks at the exact size golden says the
    weight gradient needs, or one entry smaller. Also: kept zeros (sim.testbenches.top_banks)."""
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, size=(16, 16))
    x[rng.random(x.shape) < 0.3] = 0
    dy = rng.integers(-128, 128, size=(16, 3))
    cfg = tiny_config(pe_rows=2, pe_sparse_lanes=4, pe_max_tiles=2, act_bitmap_bits=1024,
                      act_values=512)
    words = max(golden_pe.bank_words((x != 0).sum(axis=0), cfg.pe_rows, cfg.sparse_port_lanes))
    entries = (words - 1) * cfg.sparse_port_lanes + (1 if fits else 0)
    cfg = cfg.replace(pe_bank_entries=entries)
    assert SwatAccel(cfg).pe_array.bank_words == (words if fits else words - 1)
    run_cocotb(SwatAccel(cfg), toplevel="swat_accel", test_module="sim.testbenches.top_banks",
               params={"config": cfg.to_dict(), "x": x.tolist(), "dy": dy.tolist(),
                       "fits": fits})


def test_timing_example(run_cocotb, tmp_path):
    """The README's timing example: every transfer of one small GEMM, in order."""
    import json

    cfg = tiny_config(pe_rows=2)
    out = tmp_path / "timing.json"
    run_cocotb(SwatAccel(cfg), toplevel="swat_accel", test_module="sim.testbenches.timing_example",
               params={"config": cfg.to_dict(), "out": str(out)})
    report = json.loads(out.read_text())
    stamps = report["stamps"]
    # The cycles of the table in docs/architecture.md.
    assert stamps == {"cmd": [0], "tensor": [3, 4, 5, 6], "dense": [3, 4, 5, 6],
                      "result": [21, 27], "reply": [29]}
    assert report["reply_cycles"] == 29


def test_cocotb_tiny_network_trains_bit_exact(run_cocotb):
    """A few SWAT iterations with every matrix product on the RTL; loss and weights equal
    golden's after every iteration."""
    cfg = tiny_config()
    run_cocotb(SwatAccel(cfg), toplevel="swat_accel", test_module="sim.testbenches.tiny_net",
               params={"config": cfg.to_dict(), "sizes": [6, 8, 3], "batch": 4,
                       "density": 0.5, "iterations": 3})
