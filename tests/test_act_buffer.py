import pytest

from sim.act_buffer_driver import build, buffer_params


def test_parameters_are_validated():
    with pytest.raises(ValueError, match="^lanes must be a power of two, not 3$"):
        build(buffer_params(width=8, lanes=3, bitmap_capacity=64, value_capacity=64,
                            max_tensors=2, max_rows=4, max_cols=4, max_len=64))


@pytest.mark.parametrize("width, lanes", [(8, 4), (16, 1)])
def test_cocotb_against_golden(run_cocotb, width, lanes):
    params = buffer_params(width=width, lanes=lanes, bitmap_capacity=512, value_capacity=160,
                           max_tensors=4, max_rows=9, max_cols=13, max_len=1 << 10)
    run_cocotb(build(params), toplevel="act_buffer", test_module="sim.tb_act_buffer",
               params={"buffer": params, "cases": 40})


def test_formal_stream_rules(prove):
    from sim.formal_act_buffer import ActivationBufferSpec

    params = buffer_params(width=3, lanes=2, bitmap_capacity=16, value_capacity=8,
                           max_tensors=2, max_rows=3, max_cols=3, max_len=15)
    prove(ActivationBufferSpec(params), name="act_buffer_w3l2", depth=6)


@pytest.mark.parametrize("order", ["rows", "cols"])
def test_formal_every_element_read_back_exactly_once(prove, order):
    from sim.formal_act_buffer import ExactlyOnceSpec

    params = buffer_params(width=2, lanes=2, bitmap_capacity=4, value_capacity=4,
                           max_tensors=1, max_rows=2, max_cols=2, max_len=4)
    prove(ExactlyOnceSpec(params, rows=2, cols=2, order=order),
          name=f"act_buffer_exactly_once_{order}", depth=40, mode="bmc")
