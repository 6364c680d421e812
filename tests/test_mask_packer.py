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
    from sim.formal.topk_selector import MaskPackerSpec

    prove(MaskPackerSpec(width=3, lanes=lanes, max_len=15), name=f"mask_packer_l{lanes}", depth=6)


@pytest.mark.parametrize("lanes", [1, 3, 4, 5, 16])
def test_matches_the_stream_model_used_by_other_testbenches(lanes):
    """sim.drivers.topk.packer_beats (which feeds the activation buffer's tests) is exactly what
    the packer emits."""
    import numpy as np
    from amaranth.sim import Simulator

    from sim.drivers.topk import packer_beats

    rng = np.random.default_rng(lanes)
    dut = MaskPacker(width=8, lanes=lanes, max_len=1 << 10)
    tensors = []
    for n in (1, lanes, lanes + 1, 5 * lanes + 2, 37):
        x = rng.integers(-128, 128, size=n)
        tensors.append((x, rng.random(n) < rng.choice([0.0, 0.3, 0.8, 1.0])))
    received = []

    async def producer(ctx):
        for x, mask in tensors:
            for start in range(0, len(x), lanes):
                chunk = x[start:start + lanes]
                ctx.set(dut.i.payload.values, [int(v) for v in chunk] + [0] * (lanes - len(chunk)))
                ctx.set(dut.i.payload.keep, sum(1 << j for j, b in enumerate(mask[start:start + lanes]) if b))
                ctx.set(dut.i.payload.count, len(chunk))
                ctx.set(dut.i.payload.last, start + lanes >= len(x))
                ctx.set(dut.i.valid, 1)
                await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        ctx.set(dut.out.ready, 1)
        ctx.set(dut.result.ready, 1)
        for _ in tensors:
            beats = []
            while True:
                *_, payload = await ctx.tick().sample(dut.out.payload).until(dut.out.valid)
                beat = {"bitmap": payload.bitmap, "bitmap_count": payload.bitmap_count,
                        "count": payload.count, "last": payload.last,
                        "entries": [(e.index, e.value) for e in payload.entries][:payload.count],
                        "rest": [(e.index, e.value) for e in payload.entries][payload.count:]}
                beats.append(beat)
                if beat["last"]:
                    break
            received.append(beats)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run_until(1e-3)
    assert len(received) == len(tensors)
    for (x, mask), got in zip(tensors, received):
        want = packer_beats(x, mask, lanes)
        assert [(b["bitmap"], b["bitmap_count"], b["count"], b["last"]) for b in got] == \
            [(b["bitmap"], b["bitmap_count"], b["count"], b["last"]) for b in want]
        assert [b["entries"] for b in got] == \
            [[(e["index"], e["value"]) for e in b["entries"][:b["count"]]] for b in want]
        # Slots past a beat's entries are zero.
        assert all(e == (0, 0) for b in got for e in b["rest"])
