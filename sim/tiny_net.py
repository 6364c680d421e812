"""A tiny integer network trained with SWAT, whose matrix products run on either golden or the
RTL: the same training code drives both, so their losses can be compared bit for bit.

The network is two linear layers with integer arithmetic throughout: ``width``-bit operands,
exact products, :func:`golden.numerics.requantize` between layers, ReLU, a squared-error loss,
and SGD whose update is the weight gradient requantised by a fixed shift. A *layer engine*
does SWAT's three products of a layer:

* :class:`GoldenEngine`: :class:`golden.layers.SwatLinear` with the exact integer product;
* :class:`RtlEngine`: the accelerator top through :class:`sim.drivers.accel.AccelDriver`
  (threshold refresh of weights and activations, activation save, forward ``GEMM``, input
  gradient ``GEMM`` on the transposed weights, weight gradient ``GEMM_SAVED``).
"""

import numpy as np

from golden import numerics, topk
from golden.layers import SwatLinear

__all__ = ["GoldenEngine", "RtlEngine", "init_params", "make_batch", "train_step"]

SHIFTS = {"hidden": 7, "out": 7, "back": 7, "lr": 9}


class GoldenEngine:
    """SWAT's three products of each layer in golden, with the exact integer product."""

    def __init__(self, width, density):
        self.width, self.density = width, density
        self.layers = {}

    def _exact(self, a, b):
        return numerics.gemm(np.rint(a).astype(np.int64), np.rint(b).astype(np.int64),
                             self.width).astype(np.float64)

    async def forward(self, layer, w, x):
        swat = SwatLinear(w.astype(float), density=self.density, gemm=self._exact)
        self.layers[layer] = swat
        return np.rint(swat.forward(x.astype(float))).astype(np.int64)

    async def backward(self, layer, dy, need_input_grad):
        swat = self.layers[layer]
        dx = swat.backward(dy.astype(float))
        dw = np.rint(swat.grad_weight).astype(np.int64)
        return (np.rint(dx).astype(np.int64) if need_input_grad else None), dw


class RtlEngine:
    """The same products on the accelerator top. Layer ``i`` uses threshold slots ``2i``
    (weights) and ``2i + 1`` (activations) and activation slot ``i``."""

    def __init__(self, drv, density):
        self.drv, self.density = drv, density
        self.weights = {}
        self.cycles = 0

    async def _check(self, reply):
        if reply["error"]:
            raise RuntimeError(f"the accelerator reported an error: {reply}")
        self.cycles += reply["cycles"]
        return reply

    async def forward(self, layer, w, x):
        drv = self.drv
        self.weights[layer] = w
        await self._check(await drv.threshold(2 * layer, w, topk.topk_k(w.size, self.density)))
        await self._check(await drv.threshold(2 * layer + 1, x,
                                               topk.topk_k(x.size, self.density)))
        await self._check(await drv.save_act(2 * layer + 1, layer, x))
        reply, got = await drv.gemm(w, x.T, slot=2 * layer)
        await self._check(reply)
        return drv.results_matrix(got, w.shape[0], x.shape[0]).T

    async def backward(self, layer, dy, need_input_grad):
        drv = self.drv
        w = self.weights[layer]
        dx = None
        if need_input_grad:
            reply, got = await drv.gemm(w.T, dy.T, slot=2 * layer)
            await self._check(reply)
            dx = drv.results_matrix(got, w.shape[1], dy.shape[0]).T
        reply, got = await drv.gemm_saved(layer, w.shape[1], dy)
        await self._check(reply)
        await self._check(await drv.free(layer))
        return dx, drv.results_matrix(got, w.shape[1], w.shape[0]).T


def init_params(rng, sizes, width):
    """Integer weights of the layers ``sizes = (inputs, hidden, outputs)``."""
    lo, hi = numerics.operand_range(width)
    scale = hi // 2
    return [rng.integers(-scale, scale + 1, size=(o, i)).astype(np.int64)
            for i, o in zip(sizes[:-1], sizes[1:])]


def make_batch(rng, batch, sizes, width):
    """Inputs and targets of one batch (integers in range)."""
    lo, hi = numerics.operand_range(width)
    x = rng.integers(lo, hi + 1, size=(batch, sizes[0])).astype(np.int64)
    target = rng.integers(-(hi // 4), hi // 4 + 1, size=(batch, sizes[-1])).astype(np.int64)
    return x, target


async def train_step(engine, params, x, target, width):
    """One SWAT iteration of the two-layer network on ``engine``; updates ``params`` in place
    and returns the loss (an exact integer)."""
    lo, hi = numerics.operand_range(width)
    w1, w2 = params
    y1 = await engine.forward(0, w1, x)
    a1 = np.maximum(numerics.requantize(y1, SHIFTS["hidden"], width)[0], 0)
    y2 = await engine.forward(1, w2, a1)
    out = numerics.requantize(y2, SHIFTS["out"], width)[0]
    error = out - target
    loss = int((error * error).sum())
    dy2 = np.clip(error, lo, hi)
    da1, dw2 = await engine.backward(1, dy2, True)
    dy1 = np.where(a1 > 0, numerics.requantize(da1, SHIFTS["back"], width)[0], 0)
    _, dw1 = await engine.backward(0, dy1, False)
    for w, dw in ((w1, dw1), (w2, dw2)):
        w -= numerics.requantize(dw, SHIFTS["lr"], width)[0]
        np.clip(w, lo, hi, out=w)
    return loss
