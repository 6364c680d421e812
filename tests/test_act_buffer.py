import pytest

from sim.drivers.act_buffer import build, buffer_params


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


# Word sizes: a wide word spanning several short rows, a word of one lane's bits, and a
# single-lane buffer.
@pytest.mark.parametrize("width, lanes, word_bits", [(8, 4, 16), (8, 2, 2), (16, 1, 8)])
def test_cocotb_against_golden(run_cocotb, width, lanes, word_bits):
    params = buffer_params(width=width, lanes=lanes, word_bits=word_bits, bitmap_capacity=512, value_capacity=160,
                           max_tensors=4, max_rows=9, max_cols=13, max_len=1 << 10)
    run_cocotb(build(params), toplevel="act_buffer", test_module="sim.testbenches.act_buffer",
               params={"buffer": params, "cases": 40})


def test_formal_stream_rules(prove):
    from sim.formal.act_buffer import ActivationBufferSpec

    params = buffer_params(width=3, lanes=2, word_bits=4, bitmap_capacity=16, value_capacity=8,
                           max_tensors=2, max_rows=3, max_cols=3, max_len=15)
    prove(ActivationBufferSpec(params), name="act_buffer_w3l2", depth=6)


# A bitmap word spanning both rows (lanes 2), and rows longer than a beat (lanes 1).
@pytest.mark.slow
@pytest.mark.parametrize("order, lanes", [("rows", 2), ("cols", 2), ("rows", 1)])
def test_formal_every_element_read_back_exactly_once(prove, order, lanes):
    from sim.formal.act_buffer import ExactlyOnceSpec

    params = buffer_params(width=2, lanes=lanes, word_bits=4, bitmap_capacity=4,
                           value_capacity=4, max_tensors=1, max_rows=2, max_cols=2, max_len=4)
    prove(ExactlyOnceSpec(params, rows=2, cols=2, order=order),
          name=f"act_buffer_exactly_once_{order}_l{lanes}", depth=40, mode="bmc")


# With the consumer stalling at most two cycles in a row, every run reaches the read's end by
# cycle 30, so this bounded check covers whole reads (and the deadline itself is asserted).
@pytest.mark.slow
@pytest.mark.parametrize("order, lanes", [("rows", 2), ("cols", 2), ("rows", 1)])
def test_formal_whole_reads_return_every_element_exactly_once(prove, order, lanes):
    from sim.formal.act_buffer import ExactlyOnceSpec

    params = buffer_params(width=2, lanes=lanes, word_bits=4, bitmap_capacity=4,
                           value_capacity=4, max_tensors=1, max_rows=2, max_cols=2, max_len=4)
    prove(ExactlyOnceSpec(params, rows=2, cols=2, order=order, deadline=30, max_stall=2),
          name=f"act_buffer_whole_read_{order}_l{lanes}", depth=32, mode="bmc")
