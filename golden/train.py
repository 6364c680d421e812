"""Train a small CNN with SWAT on scikit-learn's bundled 8x8 digits, at several sparsities.

Run ``python -m golden.train``. It prints, for every sparsity, the test accuracy, the training
multiply-accumulates relative to dense (forward, input gradient and weight gradient, counting
only the non-zeros of each product's sparse operand), and the saved-activation memory relative
to dense (the inputs of every SWAT layer, kept for the weight gradient, stored in the smaller of
the dense, bitmap and index-value encodings at the configured operand width).

The network: conv 3x3 (1->16, pad 1), ReLU, conv 3x3 (16->32, stride 2, pad 1), ReLU,
linear (512->10), softmax cross-entropy. SWAT-U keeps the first layer dense, as SWAT's shipped
configurations do; ``--budget erk`` uses the ERK rule instead.
"""

import json
import sys
import time

import numpy as np

from . import budgets, encodings
from .cli import OneLineParser
from .config import AccelConfig, ConfigError
from .outputs import OutputPathError, check_output_file
from .layers import SGD, SwatConv2d, SwatLinear
from .scaling import GRAD_ROUNDINGS, NUMERICS, scaling_for

__all__ = ["DigitsCNN", "load_digits_split", "layer_densities", "make_model", "train_step",
           "train", "main"]


def load_digits_split(seed=0, test_fraction=0.2):
    """The 1797 digits (8x8, values 0..16) as NCHW floats in [0, 1], split train/test."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images / 16.0).astype(np.float64)[:, None, :, :]
    y = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, train_idx = order[:n_test], order[n_test:]
    return x[train_idx], y[train_idx], x[test], y[test]


def _he(rng, shape, fan_in):
    return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)


class DigitsCNN:
    """conv(1->16) - ReLU - conv(16->32, /2) - ReLU - linear(512->10), every layer SWAT.

    ``channels`` sets the two convolutions' output channels (a smaller network of the same
    layers, e.g. for simulating the training on the RTL); the linear layer takes the second
    one's 4x4 outputs.
    """

    weight_shapes = [(16, 1, 3, 3), (32, 16, 3, 3), (10, 512)]

    @staticmethod
    def shapes(channels=(16, 32)):
        """The weight shapes of the network with ``channels`` conv output channels."""
        c1, c2 = (int(c) for c in channels)
        return [(c1, 1, 3, 3), (c2, c1, 3, 3), (10, 16 * c2)]

    def __init__(self, densities, *, period=1, seed=0, scaling=None, channels=(16, 32)):
        rng = np.random.default_rng(seed)
        d1, d2, d3 = densities
        s1, s2, s3 = self.shapes(channels)
        self.layers = [
            SwatConv2d(_he(rng, s1, 9), np.zeros(s1[0]), padding=1, density=d1,
                       period=period, needs_input_grad=False, scaling=scaling),
            SwatConv2d(_he(rng, s2, 9 * s2[1]), np.zeros(s2[0]), stride=2, padding=1,
                       density=d2, period=period, scaling=scaling),
            SwatLinear(_he(rng, s3, s3[1]), np.zeros(10), density=d3, period=period,
                       scaling=scaling),
        ]

    def forward(self, x, iteration=0):
        conv1, conv2, fc = self.layers
        self._h1 = conv1.forward(x, iteration)
        a1 = np.maximum(self._h1, 0)
        self._h2 = conv2.forward(a1, iteration)
        a2 = np.maximum(self._h2, 0)
        self._a2_shape = a2.shape
        return fc.forward(a2.reshape(len(x), -1), iteration)

    def backward(self, dlogits):
        conv1, conv2, fc = self.layers
        da2 = fc.backward(dlogits).reshape(self._a2_shape)
        da1 = conv2.backward(da2 * (self._h2 > 0))
        conv1.backward(da1 * (self._h1 > 0))


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy and its gradient with respect to the logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(shifted)
    p /= p.sum(axis=1, keepdims=True)
    n = len(labels)
    loss = -np.log(p[np.arange(n), labels] + 1e-12).mean()
    grad = p.copy()
    grad[np.arange(n), labels] -= 1
    return loss, grad / n


def layer_densities(sparsity, budget="uniform", channels=(16, 32)):
    """The per-layer densities of ``budget`` at ``sparsity`` (SWAT-U keeps the first layer
    dense)."""
    density = 1.0 - float(sparsity)
    if budget == "uniform":
        return budgets.uniform_densities(DigitsCNN.shapes(channels), density,
                                         first_layer_dense=True)
    if budget == "erk":
        return budgets.erk_densities(DigitsCNN.shapes(channels), density)
    raise ValueError(f"budget must be 'uniform' or 'erk', not {budget!r}")


def make_model(sparsity, *, lr=0.05, period=1, budget="uniform", seed=0, numerics="float",
               grad_rounding="nearest", channels=(16, 32), densities=None):
    """The trainer's model and optimizer: ``(model, optimizer, scaling, densities)``.

    ``densities`` (one per layer) replaces ``sparsity`` and ``budget`` when given.
    """
    scaling = scaling_for(numerics, grad_rounding=grad_rounding, seed=seed)
    if densities is None:
        densities = layer_densities(sparsity, budget, channels)
    model = DigitsCNN(densities, period=period, seed=seed, scaling=scaling, channels=channels)
    opt = SGD(model.layers, lr=lr, momentum=0.9, weight_decay=5e-4)
    return model, opt, scaling, densities


def train_step(model, opt, x, labels, iteration):
    """One SWAT training iteration on a mini-batch; returns the loss (before the update)."""
    logits = model.forward(x, iteration)
    loss, dlogits = softmax_cross_entropy(logits, labels)
    model.backward(dlogits)
    opt.step()
    return loss


def train(sparsity, *, epochs=20, batch=64, lr=0.05, period=1, budget="uniform", seed=0,
          width=8, data=None, numerics="float", grad_rounding="nearest", channels=(16, 32),
          iterations=None):
    """Train one model at ``sparsity`` and return its figures as a dict.

    ``numerics`` (:data:`golden.scaling.NUMERICS`): ``"float"``, or ``"int16"``/``"int8"``,
    where every product of the three SWAT GEMMs is the accelerator's exact integer product of
    operands the host scaled per tensor (:class:`golden.scaling.Pow2Scaling`, gradients rounded
    by ``grad_rounding``); the master weights and the optimizer stay in floating point. The
    saved-activation figure counts ``width``-bit values, or the integer width. ``channels``
    sizes the network (:class:`DigitsCNN`); ``iterations`` stops the training after that many
    mini-batches (for checks of the first iterations).
    """
    model, opt, scaling, densities = make_model(
        sparsity, lr=lr, period=period, budget=budget, seed=seed, numerics=numerics,
        grad_rounding=grad_rounding, channels=channels)
    if scaling is not None:
        width = scaling.width
    x_train, y_train, x_test, y_test = data if data is not None else load_digits_split(seed)
    rng = np.random.default_rng(seed + 1)
    saved_bits = dense_bits = 0
    loss = float("nan")
    done = 0
    for _epoch in range(epochs):
        order = rng.permutation(len(y_train))
        for iteration, start in enumerate(range(0, len(order), batch)):
            if iterations is not None and done == iterations:
                break
            idx = order[start:start + batch]
            for layer in model.layers:
                layer.saved_elements = layer.saved_kept = 0
            loss = train_step(model, opt, x_train[idx], y_train[idx], iteration)
            done += 1
            for layer in model.layers:
                n, kept = layer.saved_elements, layer.saved_kept
                saved_bits += encodings.smallest_encoding(n, kept, width)[1]
                dense_bits += n * width
    # Evaluation uses the sparse weights the network was trained with (the hard prune).
    predictions = model.forward(x_test).argmax(axis=1)
    sparse_macs = sum(layer.macs.sparse_total for layer in model.layers)
    dense_macs = sum(layer.macs.dense_total for layer in model.layers)
    return {
        "sparsity": float(sparsity),
        "budget": budget,
        "numerics": numerics,
        "grad_rounding": grad_rounding if scaling is not None else None,
        "layer_densities": [round(d, 4) for d in densities],
        "test_accuracy": float((predictions == y_test).mean()),
        "final_loss": float(loss),
        "train_macs_vs_dense": sparse_macs / dense_macs,
        "saved_activations_vs_dense": saved_bits / dense_bits,
        "activation_width": width,
    }


def format_table(rows):
    lines = [
        "| sparsity | budget | numerics | layer densities | test accuracy "
        "| training MACs vs dense | saved activations vs dense |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        numerics = r["numerics"] + (f" ({r['grad_rounding']} gradients)"
                                    if r["grad_rounding"] == "stochastic" else "")
        lines.append(
            f"| {r['sparsity']:.1f} | {r['budget']} | {numerics} | "
            f"{' / '.join(f'{d:.2f}' for d in r['layer_densities'])} | "
            f"{100 * r['test_accuracy']:.1f} % | {100 * r['train_macs_vs_dense']:.1f} % | "
            f"{100 * r['saved_activations_vs_dense']:.1f} % |")
    return "\n".join(lines)


def main(argv=None):
    parser = OneLineParser(
        prog="python -m golden.train",
        description="Train a small CNN on the bundled 8x8 digits with SWAT and print accuracy, "
                    "training MACs and saved-activation memory relative to dense.")
    parser.add_argument("--sparsity", type=float, nargs="+", default=[0.0, 0.5, 0.8, 0.9],
                        help="sparsities to train at (default: 0 0.5 0.8 0.9)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs (default: 20)")
    parser.add_argument("--batch", type=int, default=64, help="mini-batch size (default: 64)")
    parser.add_argument("--lr", type=float, default=0.05, help="learning rate (default: 0.05)")
    parser.add_argument("--period", type=int, default=1,
                        help="top-K period in iterations (default: 1)")
    parser.add_argument("--budget", choices=["uniform", "erk"], nargs="+", default=["uniform"],
                        help="per-layer budgets: uniform (first layer dense) and/or erk "
                             "(default: uniform)")
    parser.add_argument("--numerics", choices=list(NUMERICS), nargs="+", default=["float"],
                        help="arithmetic of the three products: float, and/or the "
                             "accelerator's exact integer products of per-tensor power-of-two "
                             "scaled 16- or 8-bit operands (default: float)")
    parser.add_argument("--grad-rounding", choices=list(GRAD_ROUNDINGS), nargs="+",
                        default=["nearest"],
                        help="rounding of output gradients in the integer numerics: nearest "
                             "(half up) and/or stochastic (default: nearest)")
    parser.add_argument("--width", type=int, default=AccelConfig().width,
                        help="operand width for the saved-activation memory figure with float "
                             f"numerics; the integer numerics use their own (default: "
                             f"{AccelConfig().width})")
    parser.add_argument("--seed", type=int, nargs="+", default=[0],
                        help="random seeds (data split, initial weights, batches, stochastic "
                             "rounding); one run per seed (default: 0)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON to FILE")
    args = parser.parse_args(argv)
    for s in args.sparsity:
        if not 0.0 <= s < 1.0:
            parser.error(f"--sparsity values must be in [0, 1), not {s}")
    for name in ("epochs", "batch", "period"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, not {getattr(args, name)}")
    if not args.lr > 0:
        parser.error(f"--lr must be positive, not {args.lr}")
    try:
        AccelConfig(width=args.width)
    except ConfigError as e:
        parser.error(e.naming_flag())
    if args.json is not None:
        try:
            check_output_file(args.json, "--json")
        except OutputPathError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(e.status)

    runs = [(seed, budget, numerics, rounding if numerics != "float" else "nearest", s)
            for seed in args.seed for budget in args.budget for numerics in args.numerics
            for rounding in (args.grad_rounding if numerics != "float" else ["nearest"])
            for s in args.sparsity]
    data = {seed: load_digits_split(seed) for seed in args.seed}
    rows = []
    for seed, budget, numerics, rounding, s in runs:
        start = time.perf_counter()
        row = train(s, epochs=args.epochs, batch=args.batch, lr=args.lr, period=args.period,
                    budget=budget, seed=seed, width=args.width, data=data[seed],
                    numerics=numerics, grad_rounding=rounding)
        row["seed"] = seed
        row["seconds"] = round(time.perf_counter() - start, 2)
        rows.append(row)
        print(f"[{len(rows)}/{len(runs)}] seed {seed}, {budget}, {numerics}"
              + (f" ({rounding} gradients)" if numerics != "float" else "")
              + f", sparsity {s:.1f}: accuracy {100 * row['test_accuracy']:.1f} % "
              f"({row['seconds']} s)", file=sys.stderr)
    print(format_table(rows))
    if args.json is not None:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
