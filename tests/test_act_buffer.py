import pytest

from sim.drivers.act_buffer import build, buffer_params

from configs import by_default_on


def test_parameters_are_validated():
    with pytest.raises(ValueError, match="^lanes must be a power of two, not 3$"):
        build(buffer_params(width=8, lanes=3, word_bits=8, bitmap_capacity=64, value_capacity=64,
                            max_tensors=2, max_rows=4, max_cols=4, max_len=64))


def test_word_bits_are_validated():
    with pytest.raises(ValueError, match="^word_bits must be at least 4, not 2$"):
        build(buffer_params(width=8, lanes=4, word_bits=2, bitmap_capacity=64, value_capacity=64,
                            max_tensors=2, max_rows=4, max_cols=4, max_len=64))
    with pytest.raises(ValueError, match="^word_bits must be a power of two, not 12$"):
        build(buffer_params(width=8, lanes=4, word_bits=12, bitmap_capacity=64,
                            value_capacity=64, max_tensors=2, max_rows=4, max_cols=4, max_len=64))


# Word sizes: a wide word spanning several short rows, a word of one lane's bits, a
# single-lane buffer (with three slots: a slot field with a code past the last slot), and 16
# lanes; writes from a wider selector (16 lanes into 4, the derived pair of 16-row arrays, and
# 4 into 1).
@pytest.mark.parametrize("width, lanes, word_bits, max_tensors, write_lanes", [
    (8, 4, 16, 4, 4), (8, 2, 2, 4, 2), (16, 1, 8, 3, 1), (8, 4, 32, 4, 16), (8, 1, 4, 4, 4),
    pytest.param(8, 16, 32, 4, 16, marks=by_default_on("verilator"))])
def test_cocotb_against_golden(run_cocotb, width, lanes, word_bits, max_tensors, write_lanes):
    params = buffer_params(width=width, lanes=lanes, word_bits=word_bits, bitmap_capacity=512,
                           value_capacity=160, max_tensors=max_tensors, max_rows=9, max_cols=13,
                           max_len=1 << 10, write_lanes=write_lanes)
    run_cocotb(build(params), toplevel="act_buffer", test_module="sim.testbenches.act_buffer",
               params={"buffer": params, "cases": 40})


# Conv reads: a word spanning several map rows (16 bits, 4 lanes), short words (8 bits, 2
# lanes), one lane with 2-bit words (every segment many words, every beat one element), and
# the default 32-bit words and 4 lanes with reads of several 33- and 40-wide rows, and 4-bit
# words (a longer set-up than the column pattern's groups alone).
# Two words a cycle: the default words and lanes of 16 x 16 arrays (16-lane writes), 16-bit
# words over maps wider and narrower than a word, 2-bit words (a segment of many words) with
# one lane, and 8-bit words with 2 lanes.
# Each takes about two minutes a simulator: by default each runs on one of the two, in turn.
_ICARUS = by_default_on("icarus")
_VERILATOR = by_default_on("verilator")


@pytest.mark.parametrize("width, lanes, word_bits, max_cols, write_lanes, conv_words", [
    pytest.param(8, 4, 16, 64, 4, 1, marks=_ICARUS),
    pytest.param(8, 2, 8, 64, 2, 1, marks=_VERILATOR),
    pytest.param(16, 1, 2, 64, 1, 1, marks=_ICARUS),
    pytest.param(8, 4, 32, 256, 16, 1, marks=_VERILATOR),
    pytest.param(8, 4, 4, 64, 4, 1, marks=_ICARUS),
    pytest.param(8, 16, 32, 64, 16, 1, marks=_VERILATOR),
    pytest.param(8, 4, 32, 256, 16, 2, marks=_ICARUS),
    pytest.param(8, 4, 16, 64, 4, 2, marks=_VERILATOR),
    pytest.param(16, 1, 2, 64, 1, 2, marks=_ICARUS),
    pytest.param(8, 2, 8, 64, 2, 2, marks=_VERILATOR)])
def test_cocotb_conv_reads_against_golden(run_cocotb, width, lanes, word_bits, max_cols,
                                          write_lanes, conv_words):
    params = buffer_params(width=width, lanes=lanes, word_bits=word_bits, bitmap_capacity=1024,
                           value_capacity=512, max_tensors=4, max_rows=64, max_cols=max_cols,
                           max_len=1 << 10, write_lanes=write_lanes, conv_words=conv_words)
    run_cocotb(build(params), toplevel="act_buffer", test_module="sim.testbenches.act_buffer",
               params={"buffer": params, "cases": 20, "suite": "conv"})


# Built without the conv read (as the small parts' configurations are): directory writes and
# conv reads are refused, plain tensors read back.
def test_cocotb_without_conv_read(run_cocotb):
    params = buffer_params(width=8, lanes=2, word_bits=8, bitmap_capacity=256, value_capacity=128,
                           max_tensors=2, max_rows=16, max_cols=16, max_len=256,
                           conv_read=False)
    run_cocotb(build(params), toplevel="act_buffer", test_module="sim.testbenches.act_buffer",
               params={"buffer": params, "suite": "no_conv"})


# The conv read's rate on whole layers with the default word and lanes: 32-wide maps (a row a
# word), 4-wide ones (at stride 1 an image's rows in a segment, at stride 2 a row a segment),
# and 8- and 16-wide ones at stride 1 (cycles in the log, checked against golden.perf_model
# within 2 %, and bounded per segment of one input row).
@pytest.mark.slow
def test_cocotb_conv_read_rate(run_cocotb):
    params = buffer_params(width=8, lanes=4, word_bits=32, bitmap_capacity=8192,
                           value_capacity=8192, max_tensors=2, max_rows=256, max_cols=2048,
                           max_len=1 << 13)
    rate = [[2, 4, 32, 32, 3, 1, 1, 0.1, 1.32], [2, 4, 32, 32, 3, 1, 1, 0.5, 4.5],
            [2, 4, 32, 32, 3, 2, 1, 0.1, 1.6], [2, 4, 32, 32, 3, 2, 1, 0.5, 4.8],
            [8, 8, 4, 4, 3, 1, 1, 0.1, 0.47], [8, 8, 4, 4, 3, 1, 1, 0.5, 0.75],
            [8, 8, 4, 4, 3, 2, 1, 0.1, 1.3], [8, 8, 4, 4, 3, 2, 1, 0.5, 1.3],
            [4, 8, 8, 8, 3, 1, 1, 0.1, 0.4], [2, 4, 16, 16, 3, 1, 1, 0.1, 0.72],
            [8, 8, 4, 4, 1, 1, 0, 0.1, 0.6]]
    run_cocotb(build(params), toplevel="act_buffer", test_module="sim.testbenches.act_buffer",
               params={"buffer": params, "suite": "conv_rate", "rate": rate})


# Also with writes from a selector twice as wide (the value queue), and with two conv words a
# cycle (second read ports).
@pytest.mark.parametrize("write_lanes, conv_words", [(2, 1), (4, 1), (2, 2)])
def test_formal_stream_rules(prove, write_lanes, conv_words):
    from sim.formal.act_buffer import ActivationBufferSpec

    params = buffer_params(width=3, lanes=2, word_bits=4, bitmap_capacity=16, value_capacity=8,
                           max_tensors=2, max_rows=3, max_cols=3, max_len=15,
                           write_lanes=write_lanes, conv_words=conv_words)
    name = f"act_buffer_w3l2_wl{write_lanes}" + ("_cw2" if conv_words == 2 else "")
    prove(ActivationBufferSpec(params), name=name, depth=6)


# A bitmap word spanning both rows (lanes 2), and rows longer than a beat (lanes 1). All but the
# first take from six to fifteen minutes: long (the whole-read proofs below cover one lane, the
# stream-rules proofs four write lanes).
@pytest.mark.slow
@pytest.mark.parametrize("order, lanes, write_lanes", [
    ("rows", 2, 2), pytest.param("cols", 2, 2, marks=pytest.mark.long),
    pytest.param("rows", 1, 1, marks=pytest.mark.long),
    pytest.param("rows", 1, 4, marks=pytest.mark.long)])
def test_formal_every_element_read_back_exactly_once(prove, order, lanes, write_lanes):
    from sim.formal.act_buffer import ExactlyOnceSpec

    params = buffer_params(width=2, lanes=lanes, word_bits=4, bitmap_capacity=4,
                           value_capacity=4, max_tensors=1, max_rows=2, max_cols=2, max_len=4,
                           write_lanes=write_lanes)
    prove(ExactlyOnceSpec(params, rows=2, cols=2, order=order),
          name=f"act_buffer_exactly_once_{order}_l{lanes}_wl{write_lanes}", depth=40,
          mode="bmc")


# With the consumer stalling at most two cycles in a row, every run reaches the read's end by
# cycle 32, so this bounded check covers whole reads (and the deadline itself is asserted).
@pytest.mark.slow
@pytest.mark.parametrize("order, lanes", [("rows", 2), ("cols", 2), ("rows", 1)])
def test_formal_whole_reads_return_every_element_exactly_once(prove, order, lanes):
    from sim.formal.act_buffer import ExactlyOnceSpec

    params = buffer_params(width=2, lanes=lanes, word_bits=4, bitmap_capacity=4,
                           value_capacity=4, max_tensors=1, max_rows=2, max_cols=2, max_len=4)
    prove(ExactlyOnceSpec(params, rows=2, cols=2, order=order, deadline=32, max_stall=2),
          name=f"act_buffer_whole_read_{order}_l{lanes}", depth=34, mode="bmc")


def test_geometry_is_validated():
    from hw.act_buffer import BufferGeometry

    sizes = dict(width=8, lanes=4, word_bits=8, bitmap_capacity=64, value_capacity=64,
                 max_tensors=2, max_rows=4, max_cols=4)
    with pytest.raises(ValueError, match="^word_bits must be a power of two, not 12$"):
        BufferGeometry(**{**sizes, "word_bits": 12})
    with pytest.raises(ValueError, match="^max_tensors must be at least 1, not 0$"):
        BufferGeometry(**{**sizes, "max_tensors": 0})
    g = BufferGeometry(**{**sizes, "bitmap_capacity": 65, "value_capacity": 61})
    assert (g.bitmap_words, g.value_words) == (9, 16)


def _simulate(dut, bench, *, clocked=True):
    from amaranth.sim import Simulator

    sim = Simulator(dut)
    if clocked:
        sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("word_bits, lanes", [(16, 4), (8, 2), (4, 1), (2, 2)])
def test_lane_pick_gives_each_lane_the_next_set_bit(word_bits, lanes):
    import random

    from hw.act_buffer import LanePick

    dut = LanePick(word_bits=word_bits, lanes=lanes)
    rng = random.Random(word_bits * 8 + lanes)

    async def bench(ctx):
        for segment in [0, (1 << word_bits) - 1] + [rng.getrandbits(word_bits) for _ in range(64)]:
            ctx.set(dut.segment, segment)
            ones = [j for j in range(word_bits) if segment >> j & 1]
            picked = ones[:lanes]
            for i in range(lanes):
                want = 1 << picked[i] if i < len(picked) else 0
                assert ctx.get(dut.one_hot[i]) == want, (segment, i)
            assert ctx.get(dut.taken) == sum(1 << j for j in picked)
            assert ctx.get(dut.take) == len(picked)
            assert ctx.get(dut.more) == (len(ones) > lanes)
            await ctx.delay(1e-6)

    _simulate(dut, bench, clocked=False)


def test_tensor_table_returns_space_once_the_tensors_above_are_freed():
    from hw.act_buffer import BufferGeometry, TensorTable

    dut = TensorTable(BufferGeometry(width=8, lanes=2, word_bits=4, bitmap_capacity=64,
                                     value_capacity=64, max_tensors=3, max_rows=4, max_cols=4))

    async def bench(ctx):
        async def step(**inputs):
            for name in ("free", "pop"):
                ctx.set(getattr(dut, name), inputs.get(name, 0))
            ctx.set(dut.commit.valid, inputs.get("commit", 0))
            ctx.set(dut.slot, inputs.get("slot", 0))
            if "entry" in inputs:
                ctx.set(dut.commit.payload, dut.commit.payload.shape().const(inputs["entry"]))
            await ctx.tick()

        for slot, words in ((2, 3), (0, 5)):
            await step(commit=1, slot=slot, entry={"rows": 2, "cols": 2, "n": 4, "kept": 2,
                                                   "bitmap_words": words, "value_words": words})
        assert (ctx.get(dut.bitmap_top), ctx.get(dut.value_top)) == (8, 8)
        await step(slot=0)
        desc = ctx.get(dut.desc)
        assert (desc.valid, desc.bitmap_base, desc.value_base, desc.n) == (1, 3, 3, 4)
        await step(free=1, slot=2)  # not the top one: nothing returns
        await step(pop=1)
        assert not ctx.get(dut.top_freed) and ctx.get(dut.bitmap_top) == 8
        await step(free=1, slot=0)
        assert ctx.get(dut.top_freed)
        await step(pop=1)
        await step(pop=1)  # both come off, the top first
        assert not ctx.get(dut.top_freed)
        assert (ctx.get(dut.bitmap_top), ctx.get(dut.value_top)) == (0, 0)
        await step(slot=2)
        assert not ctx.get(dut.desc).valid

    _simulate(dut, bench)
