import pytest

from golden.config import AccelConfig, ConfigError, parse_pe


def test_defaults_and_derived():
    c = AccelConfig()
    assert (c.pe_rows, c.pe_cols, c.width, c.tile_depth) == (16, 16, 8, 256)
    assert c.acc_width == 24 and c.product_width == 16 and c.magnitude_width == 8
    assert c.pe == "16x16"
    # The PE array's ports default to its own rates: two dense rows a beat on 16 PE rows.
    assert (c.dense_port_lanes, c.sparse_port_lanes, c.result_port_lanes) == (32, 16, 8)
    assert c.dense_rows_per_beat == 2 and c.dense_tile_beats(5) == 3
    rows = {r: AccelConfig(pe_rows=r, pe_cols=4).dense_rows_per_beat for r in (1, 8, 15, 16, 31, 32, 64)}
    assert rows == {1: 1, 8: 1, 15: 1, 16: 2, 31: 2, 32: 4, 64: 4}
    part_row = AccelConfig(pe_rows=16, pe_cols=16, pe_dense_lanes=4)
    assert part_row.dense_rows_per_beat == 1 and part_row.dense_tile_beats(5) == 20
    c = AccelConfig(pe_rows=5, pe_cols=6, pe_dense_lanes=3, pe_result_lanes=5)
    assert (c.dense_port_lanes, c.sparse_port_lanes, c.result_port_lanes) == (3, 5, 5)


def test_selector_lanes_follow_the_array():
    # pe_rows rounded down to a power of two, 4 to 16, unless given.
    assert AccelConfig().selector_lanes == 16
    assert AccelConfig(pe_rows=4, pe_cols=4).selector_lanes == 4
    derived = {rows: AccelConfig(pe_rows=rows, topk_lanes=0).selector_lanes
               for rows in (1, 3, 4, 7, 8, 12, 16, 32, 64)}
    assert derived == {1: 4, 3: 4, 4: 4, 7: 4, 8: 8, 12: 8, 16: 16, 32: 16, 64: 16}
    assert AccelConfig(pe_rows=32, topk_lanes=2).selector_lanes == 2
    assert AccelConfig(topk_lanes=0).derived()["selector_lanes"] == 16
    # The derived lanes follow a changed array.
    assert AccelConfig(pe_rows=16, topk_lanes=0).replace(pe_rows=4).selector_lanes == 4
    with pytest.raises(ConfigError, match="no smaller than the selector's lanes .16., not 8"):
        AccelConfig(topk_lanes=0, act_scan_bits=8)


def test_conv_read_words_follow_the_array():
    assert [AccelConfig(pe_rows=n, pe_cols=n).conv_read_words for n in (4, 8, 16, 32)] == [
        1, 1, 2, 2]
    assert AccelConfig(pe_rows=16, pe_cols=8).conv_read_words == 1
    assert AccelConfig(act_conv_words=1).conv_read_words == 1
    assert AccelConfig(pe_rows=4, pe_cols=4, act_conv_words=2).conv_read_words == 2
    # Without the conv read there is nothing to scan.
    assert AccelConfig(act_conv_read=0, act_conv_words=2).conv_read_words == 1
    assert AccelConfig().derived()["conv_read_words"] == 2
    with pytest.raises(ConfigError, match="^act_conv_words 2 needs act_scan_bits of at least 2"):
        AccelConfig(pe_rows=1, pe_cols=1, topk_lanes=1, act_scan_bits=1, act_conv_words=2)


def test_buffer_lanes_are_the_selectors_up_to_four():
    derived = {lanes: AccelConfig(topk_lanes=lanes).buffer_lanes for lanes in (1, 2, 4, 8, 16)}
    assert derived == {1: 1, 2: 2, 4: 4, 8: 4, 16: 4}
    assert AccelConfig(topk_lanes=16, act_lanes=16).buffer_lanes == 16
    assert AccelConfig().derived()["buffer_lanes"] == 4
    with pytest.raises(ConfigError, match=r"^act_lanes must be a power of two no larger than "
                                          r"the selector's lanes \(4\), not 8$"):
        AccelConfig(topk_lanes=4, act_lanes=8)
    with pytest.raises(ConfigError, match=r"^act_lanes must be a power of two .*, not 3$"):
        AccelConfig(act_lanes=3)


def test_json_round_trip():
    c = AccelConfig(pe_rows=3, pe_cols=5, width=16, tile_depth=100, top_name="acc")
    assert AccelConfig.from_json(c.to_json()) == c
    with pytest.raises(ConfigError, match="unknown configuration keys: bogus"):
        AccelConfig.from_dict({"bogus": 1})


@pytest.mark.parametrize("field, value, message", [
    ("width", 0, "width must be between 2 and 16, not 0"),
    ("width", 99, "width must be between 2 and 16, not 99"),
    ("width", 8.0, "width must be an integer, not 8.0"),
    ("pe_rows", 0, "pe_rows must be between 1 and 64, not 0"),
    ("tile_depth", True, "tile_depth must be an integer, not True"),
    ("top_name", "a-b", "top_name must be a Verilog identifier, not 'a-b'"),
    ("pe_dense_lanes", 5, "pe_dense_lanes must divide pe_cols (16) or be pe_cols times 2, 4 or 8, not 5"),
    ("pe_result_lanes", 17, "pe_result_lanes must be between 0 and 16, not 17"),
    ("pe_bank_entries", 0, "pe_bank_entries must be between 1 and 1048576, not 0"),
    ("pe_lut_products", 257, "pe_lut_products must be between 0 and 256, not 257"),
    ("act_conv_read", 2, "act_conv_read must be between 0 and 1, not 2"),
    ("act_conv_words", 3, "act_conv_words must be between 0 and 2, not 3"),
])
def test_validation_messages(field, value, message):
    with pytest.raises(ConfigError) as info:
        AccelConfig(**{field: value})
    assert str(info.value) == message
    assert info.value.field == field


@pytest.mark.parametrize("text, expected", [("16x16", (16, 16)), ("3X5", (3, 5)), ("1x64", (1, 64))])
def test_parse_pe(text, expected):
    assert parse_pe(text) == expected


@pytest.mark.parametrize("text", ["0x4", "16", "axb", "-2x2", "4x65", "4x4x4", ""])
def test_parse_pe_rejects(text):
    with pytest.raises(ConfigError, match="^--pe "):
        parse_pe(text)


def test_errors_can_name_the_flag_that_set_the_field():
    with pytest.raises(ConfigError) as caught:
        AccelConfig(topk_lanes=3)
    error = caught.value
    assert error.naming_flag() == "--topk-lanes must be a power of two, not 3"
    assert error.naming_flag({"topk_lanes": "--lanes"}) == "--lanes must be a power of two, not 3"
    # A command that has no flag for the field keeps the field's name.
    assert error.naming_flag({"width": "--width"}) == str(error)
    with pytest.raises(ConfigError, match=r"^--sweep-pes rows must be between 1 and 64, not 0$"):
        parse_pe("0x4", "--sweep-pes")
