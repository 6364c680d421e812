import pytest

from hw.radix_select import RadixSelect, radix_digits


@pytest.mark.parametrize("key_width, radix_bits, digits", [
    (8, 8, [(0, 8)]),
    (16, 8, [(8, 16), (0, 8)]),
    (11, 8, [(8, 11), (0, 8)]),
    (19, 8, [(16, 19), (8, 16), (0, 8)]),
    (4, 8, [(0, 4)]),
    (5, 2, [(4, 5), (2, 4), (0, 2)]),
])
def test_digits_cover_the_key_from_the_top(key_width, radix_bits, digits):
    assert radix_digits(key_width, radix_bits) == digits


def test_passes_and_bins():
    rs = RadixSelect(key_width=16, lanes=4, max_len=1 << 24)
    assert rs.passes == 2 and rs.bins == 256 and rs.count_width == 26
    assert RadixSelect(key_width=4, lanes=1, max_len=10).bins == 16


@pytest.mark.parametrize("kwargs, error, message", [
    ({"key_width": 0, "lanes": 1, "max_len": 8}, ValueError, "key_width must be at least 1, not 0"),
    ({"key_width": 8, "lanes": 1, "max_len": 8, "radix_bits": 13}, ValueError,
     "radix_bits must be between 1 and 12, not 13"),
    ({"key_width": 8, "lanes": 1.5, "max_len": 8}, TypeError, "lanes must be an integer, not 1.5"),
])
def test_parameters_are_validated(kwargs, error, message):
    with pytest.raises(error) as info:
        RadixSelect(**kwargs)
    assert str(info.value) == message
