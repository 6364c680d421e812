import numpy as np
import pytest

from golden import pe_array


def test_row_cost_counts_an_empty_row_as_one():
    assert [pe_array.row_cost(n) for n in (0, 1, 7)] == [1, 1, 7]


def test_assign_rows_is_least_loaded_first_lowest_index_on_ties():
    banks, loads = pe_array.assign_rows([5, 3, 3, 1, 4], 2)
    # 5 -> 0; 3 -> 1; 3 -> 1 (3 < 5); 1 -> 0 (5 < 6); 4 -> 0 (6 == 6, lower index)
    assert banks == [0, 1, 1, 0, 0]
    assert loads == [10, 6]


def test_longest_first_balances_better_than_stream_order():
    rng = np.random.default_rng(0)
    nnz = rng.geometric(0.05, size=300)
    stream = max(pe_array.bank_loads(nnz, 16))
    sorted_ = max(pe_array.bank_loads(nnz[pe_array.longest_first(nnz)], 16))
    ideal = pe_array.ideal_cycles(sum(pe_array.row_cost(n) for n in nnz), 16)
    assert ideal <= sorted_ <= stream
    assert sorted_ - ideal <= max(nnz)  # LPT is within one row of the ideal


def test_longest_first_is_stable():
    assert pe_array.longest_first([2, 5, 2, 5]) == [1, 3, 0, 2]


def test_tile_product_is_exact_and_checks_shapes():
    s = np.array([[-128, 0], [0, 127]])
    d = np.array([[-128, 1], [2, -128]])
    assert pe_array.tile_product(s, d).tolist() == [[16384, -128], [254, -16256]]
    with pytest.raises(ValueError, match="do not multiply"):
        pe_array.tile_product(s, d[:1])
