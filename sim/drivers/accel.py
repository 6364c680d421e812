# amaranth: UnusedElaboratable=no
"""A cocotb host driver for :class:`hw.top.SwatAccel`: one method per command.

Every method sends the command and its streams (with random stalls on every port), waits for
the reply and returns it decoded, with whatever came back on ``result`` or ``act_out``. The
products can also be sent ahead (:meth:`AccelDriver.send_gemm`,
:meth:`AccelDriver.send_gemm_saved`) and finished in order (:meth:`AccelDriver.finish`): the
accelerator takes the next command while the PE array computes a product.

A product the PE array's banks cannot hold is refused before anything is sent
(:class:`JobTooLarge`): the driver knows what each row keeps (the thresholds it refreshed, the
tensors it saved) and where the array deals it (:func:`golden.pe_array.bank_words`).
"""

import dataclasses

import numpy as np

from golden import pe_array as golden_pe
from golden import topk
from golden.config import AccelConfig
from golden.layers import conv_out_size, im2col
from hw.top import AccelOp, RowMode, SwatAccel

from .act_buffer import beat_elements
from .payload import pack, unpack
from .pe_array import dense_beats
from .streams import StreamSink, StreamSource
from .topk import tensor_beats

__all__ = ["build", "AccelDriver", "JobTooLarge", "Product"]


class JobTooLarge(ValueError):
    """A product whose sparse rows the PE array's banks cannot hold."""


@dataclasses.dataclass
class Product:
    """A product command sent ahead: its place among the commands sent (its reply's), a
    bound on its work in cycles (for the reply's timeout) and, when its rows were sent in
    another order, the row of the operand each sent row is (``None``: in order)."""
    index: int
    work: int
    rows: list = None


def build(config):
    if isinstance(config, dict):
        config = AccelConfig.from_dict(config)
    return SwatAccel(config)


class AccelDriver:
    def __init__(self, dut, config, rng, *, stall=0.3, short=0.2):
        self.config = AccelConfig.from_dict(config) if isinstance(config, dict) else config
        self.model = build(self.config)
        self.rng = rng
        self.short = short
        self.lanes = self.config.selector_lanes
        self.cols = self.config.pe_cols
        self.cmd = StreamSource(dut, "cmd", dut.clk, rng=rng, stall=stall)
        self.tensor = StreamSource(dut, "tensor", dut.clk, rng=rng, stall=stall)
        self.dense = StreamSource(dut, "dense", dut.clk, rng=rng, stall=stall)
        self.result = StreamSink(dut, "result", dut.clk, rng=rng, stall=stall)
        self.act_out = StreamSink(dut, "act_out", dut.clk, rng=rng, stall=stall)
        self.reply = StreamSink(dut, "reply", dut.clk, rng=rng, stall=stall)
        #: Refuse products the banks cannot hold before sending them (off: let the hardware
        #: see them, and flag ``bank_full``).
        self.check_banks = True
        self.thresholds = {}  # threshold slot -> (threshold, keep_none), as refreshed
        self.saved = {}       # activation slot -> the entries each stored row keeps
        self.saved_maps = {}  # activation slot -> the sent mask of feature maps (N, C, H, W)
        # activation slot -> (shape, kernel, stride, padding) of a conv input saved as its
        # im2col matrix (an accelerator without the conv read)
        self.saved_im2col = {}
        self.commands_sent = 0
        self.products_finished = 0  # products whose results were taken (they end in order)
        self._result_cursor = 0     # the first result beat not yet given to a product

    # -- plumbing --------------------------------------------------------------------------
    def _pack_command(self, op, **fields):
        """A packed ``cmd`` payload: ``fields`` given, every other field zero."""
        payload = unpack(self.model.cmd_layout, 0)
        payload["op"] = op.value
        for key, value in fields.items():
            if isinstance(value, dict):  # a sub-struct: its fields given, the rest zero
                payload[key].update({k: int(v) for k, v in value.items()})
            else:
                payload[key] = value.value if hasattr(value, "value") else int(value)
        return pack(self.model.cmd_layout, payload)

    def _command(self, op, **fields):
        self._send_command(self._pack_command(op, **fields))

    def _send_command(self, payload):
        """Queue a packed command; its place among the commands sent (its reply's)."""
        self.cmd.send([payload])
        self.commands_sent += 1
        return self.commands_sent - 1

    def _send_tensor(self, x):
        beats = tensor_beats(np.asarray(x).reshape(-1), self.lanes, self.rng, short=self.short)
        layout = self.model.selector.data_layout
        self.tensor.send([pack(layout, {"values": v + [0] * (self.lanes - len(v)),
                                        "count": c, "last": int(last)}) for v, c, last in beats])
        return len(beats)

    async def _reply(self, work, index=None):
        """The reply of the command sent ``index``-th (default: the last sent), decoded."""
        index = self.commands_sent - 1 if index is None else index
        try:
            await self.reply.wait_for(index + 1, timeout_cycles=50 * work + 2000)
        except AssertionError as e:
            raise AssertionError(
                f"{e} (tensor beats left {len(self.tensor.queue)}, dense beats left "
                f"{len(self.dense.queue)}, results {len(self.result.received)})") from None
        for sink in (self.result, self.act_out, self.reply):
            sink.check()
        return unpack(self.model.reply_layout, self.reply.received[index])

    # -- commands --------------------------------------------------------------------------
    async def threshold(self, slot, x, k):
        """Threshold refresh: the exact top-K threshold of ``x`` into ``slot``."""
        self._command(AccelOp.THRESHOLD, slot=slot, k=k)
        beats = sum(self._send_tensor(x) for _ in range(self.model.selector.passes))
        reply = await self._reply(beats)
        if not reply["error"]:
            self.thresholds[slot] = (reply["threshold"], reply["keep_none"])
        return reply

    def sent_mask(self, x, slot):
        """The elements of ``x`` that threshold ``slot`` keeps and the selector sends."""
        threshold, keep_none = self.thresholds.get(slot, (0, 1))
        x = np.asarray(x)
        mask = np.zeros(x.shape, bool) if keep_none else topk.apply_threshold(x, threshold)
        return topk.sent_mask(x, mask)

    async def save_act(self, slot, act_slot, x):
        """Sparsify matrix ``x`` with threshold ``slot`` and store it in ``act_slot``."""
        rows, depth = np.asarray(x).shape
        self._command(AccelOp.SAVE_ACT, slot=slot, act_slot=act_slot, rows=rows, depth=depth)
        reply = await self._reply(self._send_tensor(x))
        if not reply["error"]:
            self.saved[act_slot] = self.sent_mask(x, slot)
        return reply

    def bank_words(self, row_entries):
        """Words each PE row's bank would hold for rows of ``row_entries`` (in order)."""
        return golden_pe.bank_words(row_entries, self.config.pe_rows,
                                    self.config.sparse_port_lanes)

    def _check_banks(self, row_entries):
        if not self.check_banks:
            return
        words = self.bank_words(row_entries)
        held = self.model.pe_array.bank_words
        if max(words) > held:
            row = int(np.argmax(words))
            raise JobTooLarge(
                f"the product's {len(row_entries)} sparse rows need {max(words)} bank words on "
                f"PE row {row}, whose bank holds {held} (pe_bank_entries "
                f"{self.config.pe_bank_entries}, {self.config.sparse_port_lanes} entries a word)")

    def _send_product(self, command, rows, d, send_rows):
        """Send a product's command, its rows (``send_rows()``) and the dense tiles of ``d``."""
        index = self._send_command(command)
        beats = send_rows()
        dense = dense_beats(d, self.cols, self.config.dense_port_lanes)
        self.dense.send([pack(self.model.pe_array.dense_layout, b) for b in dense])
        tiles = -(-np.asarray(d).shape[1] // self.cols)
        return Product(index, beats + len(dense) + rows * tiles * np.asarray(d).shape[0])

    async def finish(self, product):
        """Wait for a product's reply; return ``(reply, {(row, tile): sums})``. Products are
        finished in the order they were sent: each takes the results up to the one marked
        ``last`` (a failed job, which may mark none, takes every result come so far)."""
        reply = await self._reply(product.work, product.index)
        beats = [unpack(self.model.pe_array.result_layout, payload)
                 for payload in self.result.received[self._result_cursor:]]
        end = next((i + 1 for i, beat in enumerate(beats) if beat["last"]), len(beats))
        self._result_cursor += end
        got = {}
        for beat in beats[:end]:
            for slot in beat["slots"]:
                if slot["valid"]:
                    row = slot["row"]
                    if product.rows is not None and row < len(product.rows):
                        row = product.rows[row]
                    key = (row, slot["tile"])
                    assert key not in got, f"result {key} came twice"
                    got[key] = slot["values"]
        return reply, got

    def span(self, first, last):
        """Cycles from product ``first``'s command to product ``last``'s reply (both
        finished)."""
        return self.reply.cycles[last.index] - self.cmd.cycles[first.index]

    def results_matrix(self, got, rows, n):
        """The ``rows x n`` product from ``{(row, tile): sums}`` (tiles of ``pe_cols``)."""
        out = np.zeros((rows, n), dtype=np.int64)
        for (row, tile), values in got.items():
            width = min(self.cols, n - tile * self.cols)
            out[row, tile * self.cols:tile * self.cols + width] = values[:width]
        return out

    def _gemm_command(self, op, *, rows, depth, n, **fields):
        return self._pack_command(op, rows=rows, depth=depth, cols=min(self.cols, n),
                                  tiles=-(-n // self.cols), **fields)

    async def gemm(self, s, d, *, mode=RowMode.TOPK, slot=0, nm=(0, 0), longest_first=False):
        """``sparsify(s) @ d``: the rows of ``s`` streamed and sparsified by ``mode``."""
        return await self.finish(self.send_gemm(s, d, mode=mode, slot=slot, nm=nm,
                                                longest_first=longest_first))

    def send_gemm(self, s, d, *, mode=RowMode.TOPK, slot=0, nm=(0, 0), longest_first=False):
        """Send :meth:`gemm`'s command and streams; :meth:`finish` gives its reply.

        With ``longest_first``, the rows are sent in the order of their kept entries, most
        first (counted with the threshold the host holds; ties in row order), which makes the
        PE array's least-loaded dispatch an LPT schedule; the results come back under the
        operand's own rows."""
        s = np.asarray(s)
        rows, depth = s.shape
        if mode == RowMode.DENSE:
            entries = np.full(rows, depth)
        elif mode == RowMode.NM:
            entries = topk.sent_mask(s, topk.nm_mask(s, *nm)).sum(axis=1)
        else:
            entries = self.sent_mask(s, slot).sum(axis=1)
        order = golden_pe.longest_first(entries) if longest_first else None
        if order is not None:
            s, entries = s[order], np.asarray(entries)[order]
        self._check_banks(entries)
        command = self._gemm_command(AccelOp.GEMM, rows=rows, depth=depth,
                                     n=np.asarray(d).shape[1], mode=mode, slot=slot,
                                     nm_n=nm[0], nm_m=nm[1])
        product = self._send_product(command, rows, d,
                                     lambda: sum(self._send_tensor(row) for row in s))
        product.rows = order
        return product

    async def gemm_saved(self, act_slot, features, d, *, feature_major=False):
        """``X~.T @ d`` for the activations ``X~`` (``depth x features``, ``depth`` the rows
        of ``d``) stored in ``act_slot``: saved as ``X`` (read column by column) or, with
        ``feature_major``, as ``X.T`` (read row by row)."""
        return await self.finish(self.send_gemm_saved(act_slot, features, d,
                                                      feature_major=feature_major))

    def send_gemm_saved(self, act_slot, features, d, *, feature_major=False):
        """Send :meth:`gemm_saved`'s command and streams; :meth:`finish` gives its reply."""
        depth, n = np.asarray(d).shape
        if act_slot in self.saved:
            mask = self.saved[act_slot]
            self._check_banks((mask if feature_major else mask.T).sum(axis=1))
        command = self._gemm_command(AccelOp.GEMM_SAVED, rows=features, depth=depth, n=n,
                                     act_slot=act_slot, feature_major=feature_major)
        return self._send_product(command, features * depth, d, lambda: 0)

    async def save_feature_maps(self, slot, act_slot, x, *, kernel=None, stride=1, padding=0):
        """Sparsify a conv layer's input ``x`` (N, C, H, W) with threshold ``slot`` and store
        it in ``act_slot`` as feature maps with a directory (planes in (channel, image) order,
        :mod:`golden.feature_maps`), for :meth:`gemm_saved_conv`.

        An accelerator built without the conv read (``act_conv_read=0``) keeps no feature
        maps: the layer's im2col matrix for ``kernel``, ``stride`` and ``padding`` (then
        required) is saved instead, feature-major, and read by rows.
        """
        x = np.asarray(x)
        if not self.config.act_conv_read:
            if kernel is None:
                raise ValueError("an accelerator without the conv read (act_conv_read=0) saves "
                                 "a conv layer's im2col matrix: give kernel, stride and padding")
            reply = await self.save_act(slot, act_slot, im2col(x, kernel, stride, padding).T)
            if not reply["error"]:
                self.saved_im2col[act_slot] = (x.shape, kernel, stride, padding)
            return reply
        n_images, channels, height, width = x.shape
        planes = x.transpose(1, 0, 2, 3).reshape(channels * n_images, height * width)
        self._command(AccelOp.SAVE_ACT, slot=slot, act_slot=act_slot, rows=planes.shape[0],
                      depth=planes.shape[1], directory=1)
        reply = await self._reply(self._send_tensor(planes))
        if not reply["error"]:
            self.saved_maps[act_slot] = self.sent_mask(x, slot)
        return reply

    def conv_rows(self, act_slot, *, kernel, stride, padding, first_channel=0, channels=None,
                  first_out_row=0, out_rows=None):
        """The conv read's geometry for the maps saved in ``act_slot`` and its im2col keep
        matrix (features by output pixels), as the command and the bank check need them."""
        mask = self.saved_maps[act_slot]
        n_images, n_channels, height, width = mask.shape
        out_h = conv_out_size(height, kernel, stride, padding)
        out_w = conv_out_size(width, kernel, stride, padding)
        channels = n_channels - first_channel if channels is None else channels
        out_rows = n_images * out_h - first_out_row if out_rows is None else out_rows
        keep = im2col(mask[:, first_channel:first_channel + channels].astype(np.int64),
                      kernel, stride, padding).T.astype(bool)
        keep = keep[:, first_out_row * out_w:(first_out_row + out_rows) * out_w]
        geometry = {"images": n_images, "height": height, "width": width, "out_h": out_h,
                    "out_w": out_w, "kernel": kernel, "stride": stride, "padding": padding,
                    "first_channel": first_channel, "channels": channels,
                    "first_out_row": first_out_row, "out_rows": out_rows}
        return geometry, keep

    async def gemm_saved_conv(self, act_slot, d, *, kernel, stride, padding, first_channel=0,
                              channels=None, first_out_row=0, out_rows=None):
        """``im2col(X~).T @ d`` for the feature maps ``X~`` in ``act_slot`` (:meth:`
        save_feature_maps`): the rows of channels ``first_channel ..`` (``channels``) over the
        output rows ``first_out_row ..`` (``out_rows``, flattened over image and output row),
        built on read; ``d`` has one row per output pixel of those rows.

        Without the conv read (``act_conv_read=0``) the im2col matrix :meth:`save_feature_maps`
        saved is read whole, row by row (:meth:`gemm_saved` with ``feature_major``): the
        geometry must be the one it was saved with, and every channel and output row."""
        if act_slot in self.saved_im2col:
            return await self._gemm_saved_im2col(
                act_slot, d, (kernel, stride, padding), first_channel, channels, first_out_row,
                out_rows)
        geometry, keep = self.conv_rows(
            act_slot, kernel=kernel, stride=stride, padding=padding,
            first_channel=first_channel, channels=channels, first_out_row=first_out_row,
            out_rows=out_rows)
        depth, n = np.asarray(d).shape
        if depth != keep.shape[1]:
            raise ValueError(f"the dense operand has {depth} rows, not the read's "
                             f"{keep.shape[1]} output pixels")
        self._check_banks(keep.sum(axis=1))
        command = self._gemm_command(AccelOp.GEMM_SAVED, rows=keep.shape[0], depth=depth, n=n,
                                     act_slot=act_slot, conv_read=1, conv=geometry)
        return await self.finish(self._send_product(command, keep.size, d, lambda: 0))

    async def _gemm_saved_im2col(self, act_slot, d, geometry, first_channel, channels,
                                 first_out_row, out_rows):
        shape, *saved = self.saved_im2col[act_slot]
        n_images, n_channels, height, width = shape
        kernel, stride, padding = saved
        out_rows_all = n_images * conv_out_size(height, kernel, stride, padding)
        if (list(geometry) != saved or first_channel != 0 or first_out_row != 0
                or channels not in (None, n_channels) or out_rows not in (None, out_rows_all)):
            raise ValueError("the im2col matrix saved without the conv read is read whole, with "
                             "the kernel, stride and padding it was saved with")
        return await self.gemm_saved(act_slot, n_channels * kernel * kernel, d,
                                     feature_major=True)

    async def read_out(self, act_slot):
        """Every element of ``act_slot``: ``(reply, [(row, col, value), ...])``."""
        first = len(self.act_out.received)
        self._command(AccelOp.READ_OUT, act_slot=act_slot)
        reply = await self._reply(10000)
        beats = [unpack(self.model.act_buffer.rdata_layout, p)
                 for p in self.act_out.received[first:]]
        return reply, beat_elements(beats)[0]

    async def free(self, act_slot):
        self._command(AccelOp.FREE, act_slot=act_slot)
        self.saved.pop(act_slot, None)
        self.saved_maps.pop(act_slot, None)
        self.saved_im2col.pop(act_slot, None)
        return await self._reply(100)
