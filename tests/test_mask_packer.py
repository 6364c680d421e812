import pytest

from hw.mask_packer import MaskPacker


def test_layouts_follow_parameters():
    packer = MaskPacker(width=8, lanes=4, max_len=1 << 24)
    assert packer.index_width == 24
    assert packer.entry_layout.size == 32
    assert MaskPacker(width=8, lanes=1, max_len=1).index_width == 1


def test_parameters_are_validated():
    with pytest.raises(ValueError, match=r"^lanes must be at least 1, not 0$"):
        MaskPacker(width=8, lanes=0, max_len=8)


@pytest.mark.parametrize("lanes", [1, 2, 3])
def test_formal_count_equals_emitted_and_stream_rules(prove, lanes):
    from sim.formal_topk_selector import MaskPackerSpec

    prove(MaskPackerSpec(width=3, lanes=lanes, max_len=15), name=f"mask_packer_l{lanes}", depth=6)
