"""A cocotb driver for :class:`hw.act_buffer.ActivationBuffer`."""

from hw.act_buffer import ActivationBuffer, ActOp
from hw.mask_packer import compressed_beat

from .payload import pack, unpack
from .streams import StreamSink, StreamSource
from .topk import packer_beats

__all__ = ["ActivationBufferDriver", "beat_elements", "buffer_params", "CONV_FIELDS"]

#: The fields of a conv read's geometry (the command's ``conv``), as golden's ``read_conv``
#: takes them.
CONV_FIELDS = ("images", "height", "width", "out_h", "out_w", "kernel", "stride", "padding",
               "first_channel", "channels", "first_out_row", "out_rows")


def buffer_params(*, width, lanes, word_bits, bitmap_capacity, value_capacity, max_tensors,
                  max_rows, max_cols, max_len, conv_read=True, write_lanes=None, conv_words=1):
    """JSON-friendly parameters; the write layout is the top-K selector's for ``max_len`` and
    ``write_lanes`` (the buffer's ``lanes`` unless given)."""
    return dict(width=width, lanes=lanes, word_bits=word_bits, bitmap_capacity=bitmap_capacity,
                value_capacity=value_capacity, max_tensors=max_tensors, max_rows=max_rows,
                max_cols=max_cols, max_len=max_len, conv_read=conv_read,
                write_lanes=write_lanes or lanes, conv_words=conv_words)


def build(params):
    params = dict(params)
    max_len = params.pop("max_len")
    write_lanes = params.pop("write_lanes", None) or params["lanes"]
    return ActivationBuffer(**params, wdata_layout=compressed_beat(params["width"], write_lanes,
                                                                    max_len))


class ActivationBufferDriver:
    def __init__(self, dut, params, rng, *, stall=0.3):
        self.model = build(params)
        self.lanes = self.model.lanes
        self.write_lanes = self.model.wdata_layout["entries"].shape.length
        self.cmd = StreamSource(dut, "cmd", dut.clk, rng=rng, stall=stall)
        self.wdata = StreamSource(dut, "wdata", dut.clk, rng=rng, stall=stall)
        self.rdata = StreamSink(dut, "rdata", dut.clk, rng=rng, stall=stall)
        self.result = StreamSink(dut, "result", dut.clk, rng=rng, stall=stall)

    def _command(self, op, slot, rows=0, cols=0, directory=0, conv=None):
        conv = conv or {}
        self.cmd.send([pack(self.model.cmd_layout,
                            {"op": op.value, "slot": slot, "rows": rows, "cols": cols,
                             "directory": int(directory),
                             "conv": {name: conv.get(name, 0) for name in CONV_FIELDS}})])

    async def _result(self, timeout):
        await self.result.wait_for(len(self.result.received) + 1, timeout_cycles=timeout)
        self.rdata.check()
        self.result.check()
        return unpack(self.model.result_layout, self.result.received[-1])

    async def write(self, slot, x, mask, *, declared_shape=None, directory=False):
        """Write matrix ``x`` (kept elements per ``mask``), with a directory if ``directory``;
        return the result dict."""
        rows, cols = declared_shape or x.shape
        self._command(ActOp.WRITE, slot, rows, cols, directory=directory)
        beats = packer_beats(x, mask, self.write_lanes)
        self.wdata.send([pack(self.model.wdata_layout, b) for b in beats])
        return await self._result(40 * len(beats) + 200)

    async def free(self, slot):
        self._command(ActOp.FREE, slot)
        return await self._result(200)

    async def read(self, slot, op, n_hint=1):
        """Run a read; return ``(result, [(row, col, value), ...], lasts)``."""
        first = len(self.rdata.received)
        self._command(op, slot)
        result = await self._result(40 * n_hint + 200)
        beats = [unpack(self.model.rdata_layout, p) for p in self.rdata.received[first:]]
        return (result, *beat_elements(beats))


    async def read_conv(self, slot, conv, n_hint=1):
        """Run a conv read of geometry ``conv`` (a dict of :data:`CONV_FIELDS`); return
        ``(result, [(row, col, value), ...], lasts)``."""
        first = len(self.rdata.received)
        self._command(ActOp.READ_CONV, slot, conv=conv)
        result = await self._result(40 * n_hint + 400)
        beats = [unpack(self.model.rdata_layout, p) for p in self.rdata.received[first:]]
        return (result, *beat_elements(beats))


def beat_elements(beats):
    """The elements of ``rdata`` beats, ``[(row, col, value), ...]``, and each element's
    ``last`` flag (a beat's ``last`` marks its final element)."""
    elements, lasts = [], []
    for b in beats:
        assert 1 <= b["count"] <= len(b["col"]), f"rdata beat with count {b['count']}"
        for i in range(b["count"]):
            elements.append((b["row"], b["col"][i], b["value"][i]))
            lasts.append(b["last"] if i == b["count"] - 1 else 0)
    return elements, lasts
