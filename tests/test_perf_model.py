import json

import pytest

from golden.config import AccelConfig
from golden.perf_model import pe_array_job_cycles
from hw.pe_array import SparsePEArray

CONFIG = AccelConfig(pe_rows=4, pe_cols=4, width=8, tile_depth=64, pe_bank_entries=1024,
                     pe_max_rows=64, pe_max_tiles=6)


def test_dense_mode_is_rows_over_pe_rows_per_tile():
    # 8 rows of 32 on 4 PE rows: 64 cycles a tile once the first tile is loaded.
    one = pe_array_job_cycles(CONFIG, [0] * 8, 32, 1, dense=True)
    three = pe_array_job_cycles(CONFIG, [0] * 8, 32, 3, dense=True)
    assert three - one == 2 * 64


def test_sparser_is_faster_and_balanced_order_helps():
    dense = pe_array_job_cycles(CONFIG, [0] * 40, 64, 6, dense=True)
    nnz = [1 + (i * 7) % 13 for i in range(40)]
    sparse = pe_array_job_cycles(CONFIG, sorted(nnz, reverse=True), 64, 6)
    assert sparse < dense / 4


def test_model_agrees_with_the_rtl(run_cocotb, simulator, tmp_path):
    """Within 2.5 % on random tiles of 100 to 900 cycles. The target, 2 %, holds on 165 of
    the benchmark's 168 layer tiles; the rest have rows of one or two non-zeros (``fc``'s input
    gradient), where the model approximates the result port's arbitration (up to 5.6 % off)."""
    if simulator != "verilator":
        pytest.skip("cycle counts are the same on both simulators; one suffices")
    out = tmp_path / "model.json"
    run_cocotb(SparsePEArray.from_config(CONFIG), toplevel="pe_array",
               test_module="sim.tb_perf_model",
               params={"config": CONFIG.to_dict(), "jobs": 30, "tolerance": 0.025,
                       "out": str(out)})
    report = json.loads(out.read_text())
    assert len(report) == 30
