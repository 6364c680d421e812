from hw.skid_buffer import SkidBuffer
from sim import synth


def test_skid_buffer_synthesizes_to_its_registers():
    stats = synth.synth_stats(SkidBuffer(8), "skid_buffer_w8", "ecp5")
    # Two 8-bit payload registers and two valid bits; no memories, no multipliers.
    assert stats["ffs"] == 18
    assert 0 < stats["luts"] < 60
    assert stats["brams"] == 0 and stats["dsps"] == 0


def test_unknown_family_is_refused():
    import pytest

    with pytest.raises(ValueError, match="family must be one of ecp5, ice40"):
        synth.synth_stats(SkidBuffer(8), "x", "virtex")
