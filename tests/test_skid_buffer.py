import pytest
from amaranth.hdl import signed
from amaranth.lib import data

from hw.skid_buffer import SkidBuffer


def test_rejects_bad_payload_shape():
    with pytest.raises(TypeError, match=r"^Payload shape must be a shape-castable object, not 'x'$"):
        SkidBuffer("x")


def test_struct_payload_elaborates():
    layout = data.StructLayout({"value": signed(8), "last": 1})
    dut = SkidBuffer(layout)
    assert dut.payload_shape is layout


@pytest.mark.parametrize("width", [1, 8, 37])
def test_cocotb_against_fifo_model(run_cocotb, width):
    run_cocotb(SkidBuffer(width), toplevel="skid_buffer", test_module="sim.testbenches.skid_buffer",
               params={"width": width, "count": 400})


@pytest.mark.parametrize("width", [1, 8])
def test_formal_no_drop_duplicate_reorder(prove, width):
    from sim.formal.skid_buffer import SkidBufferSpec

    prove(SkidBufferSpec(width), name=f"skid_buffer_w{width}", depth=8)
