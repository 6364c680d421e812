import pytest

from hw.row_packer import RowPacker
from sim.testbenches.row_packer import sparse_layout

INDEX_BITS, WIDTH = 6, 8


@pytest.mark.parametrize("in_lanes, message", [
    (0, "^in_lanes must be between 1 and 4, not 0$"),
    (5, "^in_lanes must be between 1 and 4, not 5$"),
])
def test_in_lanes_out_of_range(in_lanes, message):
    with pytest.raises(ValueError, match=message):
        RowPacker(sparse_layout(4, INDEX_BITS, WIDTH), in_lanes=in_lanes)


def test_in_lanes_must_be_an_integer():
    with pytest.raises(TypeError, match=r"^in_lanes must be an integer, not 2\.0$"):
        RowPacker(sparse_layout(4, INDEX_BITS, WIDTH), in_lanes=2.0)


def test_lanes_come_from_the_layout():
    packer = RowPacker(sparse_layout(8, INDEX_BITS, WIDTH), in_lanes=3)
    assert (packer.lanes, packer.in_lanes) == (8, 3)


# Full-width beats, single entries, a word that is no multiple of the beat (3, 2), wide words
# of narrow beats, and the one-lane port where every beat is a word.
@pytest.mark.parametrize("lanes, in_lanes", [(4, 4), (4, 1), (3, 2), (8, 4), (16, 4), (1, 1)])
def test_cocotb_against_golden(run_cocotb, lanes, in_lanes):
    layout = sparse_layout(lanes, INDEX_BITS, WIDTH)
    run_cocotb(RowPacker(layout, in_lanes=in_lanes), toplevel="row_packer",
               test_module="sim.testbenches.row_packer",
               params={"lanes": lanes, "in_lanes": in_lanes, "index_bits": INDEX_BITS,
                       "width": WIDTH, "count": 300})
