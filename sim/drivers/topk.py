# amaranth: UnusedElaboratable=no
"""A cocotb driver for :class:`hw.topk_selector.TopKSelector`, and the golden view of its output.

:class:`TopKSelectorDriver` sends commands and tensors through the selector's four streams (with
random stalls on every port) and returns decoded results; :func:`golden_apply` and
:func:`golden_threshold` say what ``golden/`` expects, in the same form.
"""

import dataclasses
import math

import numpy as np

from golden import encodings, topk
from hw.topk_selector import TopKOp, TopKSelector

from .payload import pack, unpack
from .streams import StreamSink, StreamSource

__all__ = ["TopKSelectorDriver", "Applied", "tensor_beats", "golden_threshold", "golden_apply",
           "golden_nm", "golden_encoded", "slice_norms",
           "golden_slice_threshold", "golden_slice_apply", "packer_beats"]


@dataclasses.dataclass
class Applied:
    """A compressed tensor: its bitmap, packed entries, and what the result reported."""
    bitmap: list
    indices: list
    values: list
    n: int
    kept: int
    nonzero: int = 0
    error: int = 0
    threshold: object = None
    beats: int = 0


def tensor_beats(values, lanes, rng, *, short=0.0):
    """Split a flat tensor into ``(lane values, count, last)`` beats.

    With probability ``short`` a beat carries fewer than ``lanes`` elements (possibly none), as a
    producer that sometimes has less to send would. Unused lanes hold random values, which the
    design must ignore.
    """
    values = [int(v) for v in np.asarray(values).reshape(-1)]
    beats, pos = [], 0
    while True:
        remaining = len(values) - pos
        count = min(lanes, remaining)
        if remaining > lanes and rng.random() < short:
            count = rng.randrange(0, lanes)
        last = pos + count == len(values)
        beats.append((values[pos:pos + count], count, last))
        pos += count
        if last:
            return beats


def golden_threshold(x, k):
    """``(threshold, keep_none)`` as the selector reports golden's k-th largest magnitude."""
    thr = topk.kth_largest_magnitude(x, k)
    return (0, 1) if thr == math.inf else (int(thr), 0)


def golden_encoded(x, mask, width):
    """The :class:`Applied` that golden's encodings give for the elements of ``x`` in ``mask``:
    the kept elements that are not zero are sent (:func:`golden.topk.sent_mask`), and
    ``kept`` counts them all."""
    x = np.asarray(x).reshape(-1)
    mask = np.asarray(mask, bool).reshape(-1)
    sent = topk.sent_mask(x, mask)
    bm = encodings.encode_bitmap(x, sent, width)
    iv = encodings.encode_index_value(x, sent, width)
    assert np.array_equal(bm.values, iv.values)
    return Applied(bitmap=bm.bitmap.astype(int).tolist(), indices=iv.indices.tolist(),
                   values=iv.values.tolist(), n=int(x.size), kept=int(mask.sum()),
                   nonzero=int(sent.sum()))


def golden_apply(x, threshold, keep_none, width):
    """What golden expects of ``APPLY``: ``x`` cut at ``threshold`` (nothing if keep_none)."""
    x = np.asarray(x).reshape(-1)
    mask = np.zeros(x.shape, bool) if keep_none else topk.apply_threshold(x, threshold)
    return golden_encoded(x, mask, width)


def slice_norms(x, slice_len):
    """L1 norms of consecutive groups of ``slice_len`` elements (the last may be shorter).

    For a (Cout, Cin, kh, kw) weight and ``slice_len = kh * kw`` these are
    ``golden.topk.structured_norms`` in row-major order.
    """
    mags = topk.magnitudes(np.asarray(x).reshape(-1))
    return np.array([int(mags[i:i + slice_len].sum()) for i in range(0, mags.size, slice_len)],
                    dtype=np.int64)


def golden_slice_threshold(x, k, slice_len):
    """``(threshold, keep_none)`` of the k-th largest kernel-slice norm."""
    thr = topk.kth_largest_magnitude(slice_norms(x, slice_len), k)
    return (0, 1) if thr == math.inf else (int(thr), 0)


def golden_slice_apply(x, slice_len, threshold, keep_none, width):
    """What golden expects of ``SLICE_APPLY``: whole slices whose norm reaches the threshold."""
    x = np.asarray(x).reshape(-1)
    keep = np.zeros(0, bool) if keep_none else slice_norms(x, slice_len) >= threshold
    mask = np.zeros(x.size, bool) if keep_none else np.repeat(keep, slice_len)[:x.size]
    return golden_encoded(x, mask, width)


def golden_nm(x, n, m, width):
    """What golden expects of ``NM``: ``golden.topk.nm_mask`` over the flat tensor."""
    x = np.asarray(x).reshape(-1)
    mask = topk.nm_mask(x, n, m) if x.size else np.zeros(0, bool)
    return golden_encoded(x, mask, width)


def packer_beats(values, mask, lanes):
    """The compressed stream :class:`hw.mask_packer.MaskPacker` emits for a tensor sent in full
    beats, as a list of dicts in its ``out`` layout (what golden expects on the wire)."""
    values = [int(v) for v in np.asarray(values).reshape(-1)]
    mask = [bool(b) for b in np.asarray(mask).reshape(-1)]
    beats, pending, n = [], [], len(values)
    starts = list(range(0, n, lanes)) or [0]
    for start in starts:
        chunk = range(start, min(start + lanes, n))
        bitmap = sum(1 << (i - start) for i in chunk if mask[i])
        pending += [(i, values[i]) for i in chunk if mask[i]]
        last = start == starts[-1]
        words = []
        if len(pending) >= lanes and not (last and len(pending) <= lanes):
            words, pending = pending[:lanes], pending[lanes:]
        elif last:
            words, pending = pending, []
        beats.append({"bitmap": bitmap, "bitmap_count": len(chunk), "words": words,
                      "last": last and not pending})
        if last and pending:
            beats.append({"bitmap": 0, "bitmap_count": 0, "words": pending, "last": True})
    out = []
    for beat in beats:
        entries = [{"index": i, "value": v} for i, v in beat["words"]]
        entries += [{"index": 0, "value": 0}] * (lanes - len(entries))
        out.append({"bitmap": beat["bitmap"], "bitmap_count": beat["bitmap_count"],
                    "entries": entries, "count": len(beat["words"]), "last": int(beat["last"])})
    return out


class TopKSelectorDriver:
    """Drive a ``TopKSelector`` DUT built from ``params`` (its constructor's arguments)."""

    def __init__(self, dut, params, rng, *, stall=0.3, short=0.1):
        self.model = TopKSelector(**params)
        self.lanes = self.model.lanes
        self.width = self.model.width
        self.rng = rng
        self.cmd = StreamSource(dut, "cmd", dut.clk, rng=rng, stall=stall)
        self.data = StreamSource(dut, "data", dut.clk, rng=rng, stall=stall)
        self.out = StreamSink(dut, "out", dut.clk, rng=rng, stall=stall)
        self.result = StreamSink(dut, "result", dut.clk, rng=rng, stall=stall)
        self.short = short  # probability of a short beat mid-tensor (element modes only)

    def _send_tensor(self, x):
        payloads = []
        for lane_values, count, last in tensor_beats(x, self.lanes, self.rng, short=self.short):
            lo, hi = -(1 << (self.width - 1)), (1 << (self.width - 1)) - 1
            padded = lane_values + [self.rng.randint(lo, hi) for _ in range(self.lanes - count)]
            payloads.append(pack(self.model.data_layout,
                                 {"values": padded, "count": count, "last": int(last)}))
        self.data.send(payloads)
        return len(payloads)

    def _timeout(self, beats):
        return 50 * beats + 20 * (1 << 8) * self.model.slice_passes + 1000

    async def _result(self, beats):
        await self.result.wait_for(len(self.result.received) + 1,
                                   timeout_cycles=self._timeout(beats))
        self.out.check()
        self.result.check()
        return unpack(self.model.result_layout, self.result.received[-1])

    def _command(self, op, **fields):
        payload = {name: 0 for name, _ in self.model.cmd_layout}
        payload.update(op=op.value, **fields)
        self.cmd.send([pack(self.model.cmd_layout, payload)])

    async def threshold(self, x, k):
        """Run ``THRESHOLD`` on ``x``; return the result as a dict."""
        self._command(TopKOp.THRESHOLD, k=k)
        beats = sum(self._send_tensor(x) for _ in range(self.model.passes))
        return await self._result(beats)

    async def slice_threshold(self, x, k, slice_len):
        """Run ``SLICE_THRESHOLD`` on the weight ``x``; return the result as a dict."""
        self._command(TopKOp.SLICE_THRESHOLD, k=k, slice_len=slice_len)
        saved, self.short = self.short, 0.0
        beats = sum(self._send_tensor(x) for _ in range(self.model.slice_passes))
        self.short = saved
        return await self._result(beats)

    async def slice_apply(self, x, slice_len, threshold=None, keep_none=0):
        """Run ``SLICE_APPLY`` on ``x`` with the stored (``threshold=None``) or a given norm."""
        if threshold is None:
            self._command(TopKOp.SLICE_APPLY, use_stored=1, slice_len=slice_len)
        else:
            self._command(TopKOp.SLICE_APPLY, threshold=threshold, keep_none=keep_none,
                          slice_len=slice_len)
        return await self._compressed(x, short=0.0)

    async def apply(self, x, threshold=None, keep_none=0):
        """Run ``APPLY`` on ``x`` with the stored threshold (``threshold=None``) or a given one."""
        if threshold is None:
            self._command(TopKOp.APPLY, use_stored=1)
        else:
            self._command(TopKOp.APPLY, threshold=threshold, keep_none=keep_none)
        return await self._compressed(x)

    async def nm(self, x, n, m, *, short=None):
        """Run ``NM`` on ``x``: keep the ``n`` largest of every ``m`` (beats full but the last)."""
        self._command(TopKOp.NM, nm_n=n, nm_m=m)
        return await self._compressed(x, short=0.0 if short is None else short)

    async def _compressed(self, x, short=None):
        first = len(self.out.received)
        saved, self.short = self.short, (self.short if short is None else short)
        beats = self._send_tensor(x)
        self.short = saved
        result = await self._result(beats)
        applied = Applied(bitmap=[], indices=[], values=[], n=result["n"], kept=result["kept"],
                          nonzero=result["nonzero"], error=result["error"],
                          threshold=(result["threshold"], result["keep_none"]))
        received = [unpack(self.model.out_layout, p) for p in self.out.received[first:]]
        applied.beats = len(received)
        for i, beat in enumerate(received):
            assert beat["last"] == (i == len(received) - 1), f"last on beat {i} of {len(received)}"
            applied.bitmap += [(beat["bitmap"] >> lane) & 1 for lane in range(beat["bitmap_count"])]
            for entry in beat["entries"][:beat["count"]]:
                applied.indices.append(entry["index"])
                applied.values.append(entry["value"])
            if i < len(received) - 1:
                assert beat["count"] in (0, self.lanes), "a word before the last is not full"
        return applied
