"""The first iterations of golden's integer training run, with every product on the RTL.

``python -m sim.train_rtl`` trains :mod:`golden.train`'s CNN (conv 3x3 1->16 pad 1, conv 3x3
16->32 stride 2 pad 1, linear 512->10; ``--channels C1xC2`` makes a smaller one of the same
layers) on golden.train's first mini-batches of the digits data (``--batch``, 4 by default)
for ``--iterations`` iterations, twice side by side:

* the golden integer run: :func:`golden.train.train_step` on :func:`golden.train.make_model`'s
  model, whose products are :meth:`golden.scaling.Pow2Scaling.gemm` (the exact integer product)
  and whose top-K is golden's (:class:`golden.topk.TopKPeriod`);
* the accelerator run: the same model and the same training step, with each SWAT layer's top-K
  and products dispatched to the accelerator top (:class:`AcceleratorHost`), simulated under
  cocotb through :class:`sim.drivers.accel.AccelDriver`.

On the accelerator every threshold is the selector's (``THRESHOLD`` of the integer weights and
input activations), the forward and input-gradient products are ``GEMM`` jobs whose rows the
selector sparsifies with those thresholds (tiled as :mod:`sim.swat_step` tiles them), and the
weight gradient is ``GEMM_SAVED`` over the activations the selector sparsified into the
activation buffer (``SAVE_ACT``) during the forward pass. The host does what a driver does:
it scales each tensor to integers by its power of two, lays convolutions out with im2col and
col2im, adds the partial sums of a product's jobs, and runs the optimizer.

After every iteration the loss and every weight and bias array of the accelerator run must
equal the golden run's bit for bit. The exit status is 1 with a one-line description of the
first mismatch, 2 on bad arguments.
"""

import json
import os
import sys
import time

import numpy as np

from golden import budgets, numerics, topk
from golden import pe_array as golden_pe
from golden.cli import OneLineParser
from golden.config import ConfigError, parse_pe
from golden.outputs import OutputPathError, check_output_file
from golden.scaling import GRAD_ROUNDINGS, NUMERICS, quantize_pow2

from .swat_step import LayerSpec, _tiled_gemm, step_config

__all__ = ["LAYER_NAMES", "network_specs", "network_config", "parse_channels", "ModelAccel",
           "AcceleratorHost", "run_now", "first_batches", "compare_models", "train_side_by_side",
           "main"]

#: Names of the network's layers in reports.
LAYER_NAMES = ("conv1", "conv2", "fc")

#: Input image side of the digits data.
IMAGE_SIZE = 8


def parse_channels(text):
    """``C1xC2``: the two convolutions' output channels (raises ``ValueError`` naming
    ``--channels``)."""
    parts = text.split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or min(map(int, parts)) < 1:
        raise ValueError(f"--channels must be C1xC2 with positive integers, like 4x8, "
                         f"not {text!r}")
    return int(parts[0]), int(parts[1])


def network_specs(channels):
    """The three layers of :class:`golden.train.DigitsCNN` with ``channels``, as
    :class:`sim.swat_step.LayerSpec`."""
    c1, c2 = channels
    conv2_out = LayerSpec("conv", c1, c2, 3, IMAGE_SIZE, 2, 1).out_size
    return [LayerSpec("conv", 1, c1, 3, IMAGE_SIZE, 1, 1),
            LayerSpec("conv", c1, c2, 3, IMAGE_SIZE, 2, 1),
            LayerSpec("linear", c2 * conv2_out ** 2, 10)]


def _pow2(n):
    return 1 << (max(1, int(n)) - 1).bit_length()


def network_config(pe_rows, pe_cols, width, specs, batch):
    """A configuration in which every product of a training iteration of the layers ``specs``
    fits: each field the largest :func:`sim.swat_step.step_config` asks for any one layer,
    and an activation buffer holding every layer's saved activations at once (the forward pass
    saves them all before the backward pass reads them)."""
    configs = [step_config(pe_rows, pe_cols, width, spec, batch) for spec in specs]
    merged = {name: max(getattr(c, name) for c in configs)
              for name in ("tile_depth", "pe_max_rows", "pe_max_tiles", "max_tensor_len",
                           "act_max_rows", "act_max_cols")}
    saved = sum(spec.positions(batch) * spec.features for spec in specs)
    config = configs[0].replace(**merged, act_bitmap_bits=_pow2(saved), act_values=_pow2(saved),
                                act_tensors=len(specs))
    # Banks for the longest rows of any job of the merged shape (as step_config sizes them).
    lanes = config.sparse_port_lanes
    return config.replace(pe_bank_entries=lanes * golden_pe.bank_words_bound(
        config.pe_max_rows, config.tile_depth, pe_rows, lanes))


def run_now(async_fn, *args, **kwargs):
    """Run a coroutine that never waits (:class:`ModelAccel`'s commands) to its result."""
    coroutine = async_fn(*args, **kwargs)
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError(f"{async_fn.__name__} waited; run it on the simulator")


class ModelAccel:
    """The accelerator's commands computed by golden's models, with no simulation: the same
    interface as :class:`sim.drivers.accel.AccelDriver` for what :class:`AcceleratorHost`
    uses. It checks the host's side of the accelerator run (scaling, layouts, tiling, partial
    sums) in seconds; its cycle counts are zero.
    """

    def __init__(self, config):
        self.config = config
        self.thresholds = {}  # threshold slot -> (threshold, keep_none)
        self.saved = {}       # activation slot -> the sparsified matrix

    def _reply(self, **fields):
        return {"error": 0, "cycles": 0, **fields}

    def _keep(self, x, slot):
        threshold, keep_none = self.thresholds[slot]
        return np.zeros(np.shape(x), bool) if keep_none else topk.apply_threshold(x, threshold)

    async def threshold(self, slot, x, k):
        keep_none = int(k == 0)
        threshold = 0 if keep_none else topk.kth_largest_magnitude(np.asarray(x), int(k))
        self.thresholds[slot] = (threshold, keep_none)
        return self._reply(threshold=threshold, keep_none=keep_none)

    async def save_act(self, slot, act_slot, x):
        numerics.check_operands(x, self.config.width, "activations")
        self.saved[act_slot] = np.where(self._keep(x, slot), x, 0)
        return self._reply()

    async def gemm(self, s, d, *, slot=0, longest_first=False):
        return await self.finish(self.send_gemm(s, d, slot=slot))

    def send_gemm(self, s, d, *, slot=0, longest_first=False):
        # The row order changes the accelerator's schedule, not its results.
        if np.shape(s)[1] > self.config.tile_depth or np.shape(s)[0] > self.config.pe_max_rows:
            raise RuntimeError(f"a {np.shape(s)} job exceeds the configuration")
        sparse = np.where(self._keep(s, slot), s, 0)
        return self._reply(), numerics.gemm(sparse, np.asarray(d), self.config.width)

    async def finish(self, product):
        return product

    def span(self, first, last):
        return 0

    async def gemm_saved(self, act_slot, features, d, *, feature_major=False):
        saved = self.saved[act_slot]
        x_t = saved if feature_major else saved.T
        return self._reply(), numerics.gemm(x_t[:features], np.asarray(d), self.config.width)

    async def free(self, act_slot):
        del self.saved[act_slot]
        return self._reply()

    def results_matrix(self, got, rows, n):
        return got[:rows, :n]


def _integers(x, exponent, width, what):
    """``x * 2**exponent`` as ``int64``; the host rounded ``x`` on that scale already, so
    this is exact (raises if not)."""
    q = np.asarray(x, dtype=np.float64) * 2.0 ** exponent
    lo, hi = numerics.operand_range(width)
    if not (np.array_equal(q, np.floor(q)) and (q.size == 0 or lo <= q.min() <= q.max() <= hi)):
        raise ArithmeticError(f"{what} is not a {width}-bit integer tensor at scale 2**{exponent}")
    return q.astype(np.int64)


class _SelectorThreshold:
    """Stands in for a layer's :class:`golden.topk.TopKPeriod`: the top-K threshold of a
    tensor is the accelerator selector's (``THRESHOLD`` of the tensor's integers into a slot).

    Keeps the integers and their exponent for the products that follow. The mask it gives the
    layer is the slot's threshold applied to the tensor (what the driver knows from the reply):
    golden's code counts kept elements with it, while the products' operands leave the host
    unmasked and the selector sparsifies them itself.
    """

    def __init__(self, host, slot):
        self.host, self.slot = host, slot
        self.q = self.exponent = None

    def mask(self, x, density, iteration):
        """``(mask, True)``: the threshold is recomputed every iteration (top-K period 1, as
        golden.train trains; a stored integer threshold would not follow the tensor's scale
        from one iteration to the next)."""
        self.q, self.exponent = quantize_pow2(x, self.host.width)
        _integers(x, self.exponent, self.host.width, "a selected tensor")  # round trip exact
        self.host.command(self.host.accel.threshold, self.slot, self.q,
                          topk.topk_k(self.q.size, density))
        threshold, keep_none = self.host.accel.thresholds[self.slot]
        if keep_none:
            return np.zeros(self.q.shape, bool), True
        return topk.apply_threshold(self.q, threshold), True


class _LayerProducts:
    """A layer's ``gemm``: its three products on the accelerator.

    golden's layer calls ``gemm(a, w_sparse.T)`` forward, then ``gemm(dy.T, a_sparse)`` and
    ``gemm(dy, w_sparse)`` backward, passing the sparse operands it keeps
    (``layer._a_sparse``, ``layer._w_sparse``); which product is asked is told by them. The
    sparse operands themselves never reach the accelerator: it sparsifies the unmasked
    integers kept by the layer's selector thresholds.
    """

    def __init__(self, host, layer, index):
        self.host, self.layer, self.index = host, layer, index
        self.weights = layer.weight_period
        self.acts = layer.act_period

    def __call__(self, a, b):
        if b is self.layer._a_sparse:
            return self.weight_gradient(a.T)
        if b is self.layer._w_sparse:
            return self.input_gradient(a)
        return self.forward(a)

    @staticmethod
    def _scaled(acc, exponent):
        # Row-major like golden's product: NumPy's sums (the softmax's) add in memory order,
        # so a transposed result would round differently in the last place.
        return np.ascontiguousarray(acc, dtype=np.float64) * 2.0 ** -exponent

    def _gradient(self, dy):
        q, exponent = quantize_pow2(dy, self.host.width)
        _integers(dy, exponent, self.host.width, "an output gradient")
        return q, exponent

    def forward(self, cols):
        """``cols @ W~.T`` (``cols`` the im2col of the layer input, or the input): the
        activations are saved sparsified for the weight gradient, then multiplied dense by
        the selector's sparse weights."""
        host, w, x = self.host, self.weights, self.acts
        # im2col only copies the input's values, so they keep its scale.
        q_cols = _integers(cols, x.exponent, host.width, "im2col of the input")
        # Saved feature-major (the layout the PE array's outputs come in), so the weight
        # gradient reads it row by row.
        host.command(host.accel.save_act, x.slot, self.index, q_cols.T)
        w_matrix = w.q.reshape(w.q.shape[0], -1)
        y_t = host.tiled_gemm(w_matrix, q_cols.T, slot=w.slot)
        return self._scaled(y_t.T, w.exponent + x.exponent)

    def weight_gradient(self, dy):
        """``dy.T @ A~`` over the saved activations; frees them."""
        host, x = self.host, self.acts
        q_dy, e_dy = self._gradient(dy)
        features = self.layer._a_sparse.shape[1]
        reply, got = host.command(host.accel.gemm_saved, self.index, features, q_dy,
                                  feature_major=True)
        dw_t = host.accel.results_matrix(got, features, q_dy.shape[1])
        host.command(host.accel.free, self.index)
        return self._scaled(dw_t.T, x.exponent + e_dy)

    def input_gradient(self, dy):
        """``dy @ W~`` with the selector's sparse weights, transposed."""
        host, w = self.host, self.weights
        q_dy, e_dy = self._gradient(dy)
        w_matrix = w.q.reshape(w.q.shape[0], -1)
        dcols_t = host.tiled_gemm(w_matrix.T, q_dy.T, slot=w.slot)
        return self._scaled(dcols_t.T, w.exponent + e_dy)


class AcceleratorHost:
    """The host driver of golden's SWAT layers on the accelerator.

    :meth:`attach` makes a model's layers select and multiply on ``accel``: layer ``i`` uses
    threshold slots ``2i`` (weights) and ``2i + 1`` (input activations) and activation slot
    ``i``.

    Parameters
    ----------
    accel : sim.drivers.accel.AccelDriver or ModelAccel
    width : int
        The operand width (the layers' scaling's).
    run : callable
        ``run(async_fn, *args, **kwargs)`` runs an accelerator coroutine to its result from the
        training code: :func:`cocotb.task.resume`'s blocking call in a bridge thread, or
        :func:`run_now` for :class:`ModelAccel`.
    """

    def __init__(self, accel, width, run):
        self.accel, self.width, self.run = accel, width, run
        self.cycles = 0

    def attach(self, model):
        for index, layer in enumerate(model.layers):
            if layer.scaling is None or layer.scaling.width != self.width:
                raise ValueError(f"layer {index} is not in the accelerator's {self.width}-bit "
                                 "numerics")
            if layer.selection != "topk":
                raise ValueError("the accelerator run selects weights by top-K")
            if layer.weight_period.period != 1:
                raise ValueError("the accelerator run recomputes every threshold (period 1)")
            layer.weight_period = _SelectorThreshold(self, 2 * index)
            layer.act_period = _SelectorThreshold(self, 2 * index + 1)
            layer.gemm = _LayerProducts(self, layer, index)
        return model

    def command(self, async_fn, *args, **kwargs):
        """Run one accelerator command; its reply (and results), counting its cycles."""
        out = self.run(async_fn, *args, **kwargs)
        reply = out[0] if isinstance(out, tuple) else out
        if reply["error"]:
            raise RuntimeError(f"the accelerator reported an error on {async_fn.__name__}: "
                               f"{reply}")
        self.cycles += int(reply["cycles"])
        return out

    def tiled_gemm(self, s, d, *, slot):
        """``topk(s) @ d`` in the jobs the configuration allows (:mod:`sim.swat_step`'s
        tiling), partial sums added on the host."""
        product, cycles = self.run(_tiled_gemm, self.accel, s, d, slot=slot)
        self.cycles += int(cycles)
        return product


def first_batches(y_train, batch, seed, iterations):
    """The mini-batch indices of the first ``iterations`` iterations, in
    :func:`golden.train.train`'s order (its first epoch's permutation)."""
    order = np.random.default_rng(seed + 1).permutation(len(y_train))
    starts = range(0, len(order), batch)
    if iterations > len(starts):
        raise ValueError(f"--iterations must be at most one epoch ({len(starts)}), "
                         f"not {iterations}")
    return [order[start:start + batch] for start in list(starts)[:iterations]]


def compare_models(accel_model, golden_model):
    """The first weight or bias that differs bit for bit, as one line, or None."""
    for name, a, g in zip(LAYER_NAMES, accel_model.layers, golden_model.layers):
        for what, got, want in (("weight", a.weight, g.weight), ("bias", a.bias, g.bias)):
            if got.shape != want.shape:
                return f"{name} {what} has shape {got.shape}, not {want.shape}"
            differ = got.view(np.int64) != want.view(np.int64)
            if differ.any():
                where = tuple(int(i) for i in np.argwhere(differ)[0])
                return (f"{name} {what}: {int(differ.sum())} values differ, first at {where}: "
                        f"{float(got[where])!r}, not {float(want[where])!r}")
    return None


def train_side_by_side(accel, run, *, iterations, batch, numerics_name, density, channels,
                       seed, grad_rounding="nearest", data=None, log=None):
    """Train golden's model twice, on ``accel`` and on golden's integer products, comparing
    the loss and every weight after every iteration; stops at the first mismatch.

    Returns a dict: ``layer_densities``, ``iterations`` (per iteration ``loss``,
    ``golden_loss``, ``loss_match``, ``weights_match``, ``cycles`` and ``seconds``),
    ``match`` and ``mismatch`` (the first, one line, or None).
    """
    from golden import train as golden_train

    x_train, y_train, _, _ = data if data is not None else golden_train.load_digits_split(seed)
    batches = first_batches(y_train, batch, seed, iterations)
    # SWAT-U as golden.train builds it, at exactly the density asked (not 1 - (1 - density)).
    densities = budgets.uniform_densities(golden_train.DigitsCNN.shapes(channels), density,
                                          first_layer_dense=True)

    def model():
        return golden_train.make_model(None, seed=seed, numerics=numerics_name,
                                       grad_rounding=grad_rounding, channels=channels,
                                       densities=densities)

    golden_model, golden_opt, _, _ = model()
    accel_model, accel_opt, scaling, _ = model()
    host = AcceleratorHost(accel, scaling.width, run)
    host.attach(accel_model)
    report = {"layer_densities": densities, "iterations": [], "match": True,
              "mismatch": None}
    for iteration, idx in enumerate(batches):
        start, cycles = time.perf_counter(), host.cycles
        accel_loss = golden_train.train_step(accel_model, accel_opt, x_train[idx],
                                             y_train[idx], iteration)
        seconds = time.perf_counter() - start
        golden_loss = golden_train.train_step(golden_model, golden_opt, x_train[idx],
                                              y_train[idx], iteration)
        loss_match = np.float64(accel_loss).view(np.int64) == \
            np.float64(golden_loss).view(np.int64)
        weights_problem = compare_models(accel_model, golden_model)
        report["iterations"].append({
            "iteration": iteration, "loss": float(accel_loss), "golden_loss": float(golden_loss),
            "loss_match": bool(loss_match), "weights_match": weights_problem is None,
            "cycles": host.cycles - cycles, "seconds": round(seconds, 2)})
        if log is not None:
            log(f"iteration {iteration}: loss {float(accel_loss)!r} (golden "
                f"{float(golden_loss)!r}), {host.cycles - cycles} accelerator cycles, "
                f"{seconds:.1f} s")
        if not loss_match:
            report["mismatch"] = (f"iteration {iteration}: loss {float(accel_loss)!r} on the "
                                  f"accelerator, {float(golden_loss)!r} in golden")
        elif weights_problem is not None:
            report["mismatch"] = f"iteration {iteration}: {weights_problem}"
        if report["mismatch"] is not None:
            report["match"] = False
            break
    return report


def main(argv=None):
    parser = OneLineParser(
        prog="python -m sim.train_rtl",
        description="Train the digits CNN of python -m golden.train for a few iterations with "
                    "every product and every top-K on the simulated accelerator, and check the "
                    "loss and every weight against golden's integer run bit for bit after each "
                    "iteration.")
    parser.add_argument("--iterations", type=int, default=3,
                        help="training iterations (default: 3)")
    parser.add_argument("--batch", type=int, default=4, help="mini-batch size (default: 4)")
    parser.add_argument("--numerics", choices=[n for n in NUMERICS if NUMERICS[n]],
                        default="int8", help="operand width of the products (default: int8)")
    parser.add_argument("--grad-rounding", choices=list(GRAD_ROUNDINGS), default="nearest",
                        help="rounding of output gradients (default: nearest)")
    parser.add_argument("--density", type=float, default=0.5,
                        help="SWAT density of the second and third layers' weights and "
                             "input activations; the first layer stays dense (default: 0.5)")
    parser.add_argument("--channels", default="16x32",
                        help="output channels of the two convolutions, C1xC2; smaller than "
                             "golden.train's 16x32 for a smaller network of the same layers "
                             "(default: 16x32)")
    parser.add_argument("--pe", default="4x4", help="PE array size RxC (default: 4x4)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the data split, the initial weights and the batches, "
                             "as golden.train's (default: 0)")
    parser.add_argument("--sim", choices=("verilator", "icarus"), default="verilator",
                        help="simulator (default: verilator)")
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="also write per iteration the loss, whether the loss and every "
                             "weight matched golden and the accelerator cycles to FILE")
    args = parser.parse_args(argv)
    try:
        if not 1 <= args.iterations <= 100:
            raise ValueError(f"--iterations must be between 1 and 100, not {args.iterations}")
        if not 1 <= args.batch <= 64:
            raise ValueError(f"--batch must be between 1 and 64, not {args.batch}")
        if not 0.0 <= args.density <= 1.0:
            raise ValueError(f"--density must be between 0 and 1, not {args.density}")
        channels = parse_channels(args.channels)
        from golden.train import load_digits_split

        first_batches(load_digits_split(args.seed)[1], args.batch, args.seed, args.iterations)
        rows, cols = parse_pe(args.pe)
        width = NUMERICS[args.numerics]
        config = network_config(rows, cols, width, network_specs(channels), args.batch)
        if args.json is not None:
            check_output_file(args.json, "--json")
    except ConfigError as e:
        parser.error(e.naming_flag({"pe_rows": "--pe", "pe_cols": "--pe"}))
    except ValueError as e:
        parser.error(str(e))
    except OutputPathError as e:
        print(f"sim.train_rtl: error: {e}", file=sys.stderr)
        return e.status
    from hw.top import SwatAccel
    from rtl_gen.cache import cache_dir
    from rtl_gen.progress import Progress
    from rtl_gen.verilog import to_verilog

    from .runner import SimulationFailed, run_cocotb, simulator_missing

    reason = simulator_missing(args.sim)
    if reason:
        print(f"sim.train_rtl: error: {reason}", file=sys.stderr)
        return 2
    out = cache_dir("train_rtl") / f"train_{os.getpid()}.json"
    if out.exists():
        out.unlink()
    params = {"config": config.to_dict(), "iterations": args.iterations, "batch": args.batch,
              "numerics": args.numerics, "grad_rounding": args.grad_rounding,
              "density": args.density, "channels": list(channels), "seed": args.seed,
              "out": str(out)}
    start = time.perf_counter()
    failure = None
    try:
        with Progress("sim.train_rtl", every=15.0) as progress:
            progress.step(f"generating the Verilog of the {config.pe} accelerator")
            verilog = to_verilog(SwatAccel(config), "swat_accel")
            # The build is cached by the Verilog text, so only a new configuration waits.
            progress.step(f"building the simulation with {args.sim} (minutes for a new "
                          f"configuration) and training {args.iterations} iterations")
            run_cocotb(verilog, toplevel="swat_accel", test_module="sim.testbenches.train_rtl",
                       simulator=args.sim, params=params, seed=args.seed)
    except SimulationFailed as e:
        failure = e
    seconds = time.perf_counter() - start
    if not out.exists():
        print(f"sim.train_rtl: simulation failed:\n{failure}", file=sys.stderr)
        return 1
    report = json.loads(out.read_text())
    if args.json is not None:
        with open(args.json, "w") as f:
            json.dump({"channels": list(channels), "batch": args.batch,
                       "numerics": args.numerics, "grad_rounding": args.grad_rounding,
                       "density": args.density, "layer_densities": report["layer_densities"],
                       "seed": args.seed, "config": config.to_dict(), "simulator": args.sim,
                       "iterations": report["iterations"], "match": report["match"],
                       "mismatch": report["mismatch"], "seconds": round(seconds, 1)},
                      f, indent=1, sort_keys=True)
            f.write("\n")
    c1, c2 = channels
    print(f"SWAT training of the digits CNN (conv 1->{c1}, conv {c1}->{c2} stride 2, linear "
          f"{16 * c2}->10), batch {args.batch}, {args.numerics}, layer densities "
          f"{' / '.join(f'{d:g}' for d in report['layer_densities'])}, {config.pe} array, "
          f"on {args.sim}")
    print("| iteration | loss | golden loss | loss and weights bit-exact | accelerator cycles |")
    print("|---|---|---|---|---|")
    for row in report["iterations"]:
        exact = "yes" if row["loss_match"] and row["weights_match"] else "NO"
        print(f"| {row['iteration']} | {row['loss']!r} | {row['golden_loss']!r} | {exact} | "
              f"{row['cycles']} |")
    print(f"wall time {seconds:.1f} s")
    if not report["match"]:
        print(f"MISMATCH against golden: {report['mismatch']}")
        return 1
    if failure is not None:
        print(f"sim.train_rtl: simulation failed:\n{failure}", file=sys.stderr)
        return 1
    print("loss and every weight match golden's integer run bit for bit after every iteration")
    return 0


if __name__ == "__main__":
    sys.exit(main())
