import pytest

from golden.config import AccelConfig
from hw.pe_array import SparsePEArray

from configs import by_default_on

SMALL = dict(pe_rows=3, pe_cols=4, width=8, tile_depth=12, pe_sparse_lanes=2,
             pe_dense_lanes=2, pe_result_lanes=2, pe_bank_entries=64, pe_max_rows=64,
             pe_max_tiles=8, nm_max_m=4)
WIDE = dict(pe_rows=2, pe_cols=3, width=16, tile_depth=9, pe_sparse_lanes=0,
            pe_dense_lanes=0, pe_bank_entries=40, pe_max_rows=32, pe_max_tiles=4, nm_max_m=3)


def test_from_config():
    array = SparsePEArray.from_config(AccelConfig(**SMALL))
    assert (array.rows, array.cols, array.lanes, array.dense_lanes) == (3, 4, 2, 2)
    assert array.bank_words == 32
    assert SparsePEArray.from_config(AccelConfig(**WIDE)).lanes == 4  # at least topk_lanes
    assert array.acc_width == AccelConfig(**SMALL).acc_width
    assert SparsePEArray.from_config(AccelConfig(**dict(SMALL, pe_dense_lanes=8))).dense_rows == 2


@pytest.mark.parametrize("change, error, message", [
    ({"rows": 0}, ValueError, "rows must be at least 1, not 0"),
    ({"width": 17}, ValueError, "width must be between 2 and 16, not 17"),
    ({"dense_lanes": 3}, ValueError, "dense_lanes must divide cols (4) or be cols times 2, 4 "
                                     "or 8, not 3"),
    ({"dense_lanes": 12}, ValueError, "dense_lanes must divide cols (4) or be cols times 2, 4 "
                                      "or 8, not 12"),
    ({"bank_entries": "x"}, TypeError, "bank_entries must be an integer, not 'x'"),
    ({"acc_width": 8}, ValueError, "acc_width must be at least 16, not 8"),
    ({"lut_products": 13}, ValueError, "lut_products must be between 0 and 12, not 13"),
])
def test_parameters_are_validated(change, error, message):
    params = SparsePEArray.params_from_config(AccelConfig(**SMALL))
    params.update(change)
    with pytest.raises(error) as info:
        SparsePEArray(**params)
    assert str(info.value) == message


# Seven of the 3x4 PEs (the last row and three of the middle one) multiply in LUTs.
LUT = dict(SMALL, pe_lut_products=7)
# Dense beats of two whole rows (an odd tile depth: a tile's last beat is half padding) and
# of four (more rows a word than some tiles have).
ROWS2 = dict(SMALL, pe_dense_lanes=8, tile_depth=13)
ROWS4 = dict(SMALL, pe_dense_lanes=16, tile_depth=6)


@pytest.mark.parametrize("config", [
    SMALL, WIDE, LUT, ROWS2,
    pytest.param(ROWS4, marks=by_default_on("verilator"))],
    ids=["w8", "w16", "w8_lut", "dense_rows2", "dense_rows4"])
def test_cocotb_against_golden(run_cocotb, config):
    cfg = AccelConfig(**config)
    run_cocotb(SparsePEArray.from_config(cfg), toplevel="pe_array",
               test_module="sim.testbenches.pe_array", params={"config": cfg.to_dict(), "cases": 60})


def test_formal_stream_rules(prove):
    from sim.formal.pe_array import PEArraySpec

    config = AccelConfig(pe_rows=2, pe_cols=1, width=2, tile_depth=2, pe_sparse_lanes=1,
                         pe_result_lanes=2, pe_bank_entries=2, pe_max_rows=2, pe_max_tiles=2,
                         nm_max_m=2)
    prove(PEArraySpec(config), name="pe_array_2x1", depth=8)
