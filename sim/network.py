"""Network-level SWAT results from the cycle model: ``python -m sim.network``.

For ResNet-18 on CIFAR-10 shapes and ResNet-50 on ImageNet shapes, under SWAT-U (first layer
dense) and SWAT-ERK at sparsity 0.8 and 0.9, it predicts with :mod:`golden.perf_model` the
cycles one training iteration takes on the generated accelerator, driven the way
:mod:`sim.swat_step` drives it, and compares them with the same hardware in dense mode:

* forward: the threshold refreshes of the weights and of the input activations (once every
  ``--period`` iterations), saving the sparsified activations, and the forward products;
* backward: the input-gradient and weight-gradient products.

The dense baseline runs the same products in the PE array's dense mode (every element), with no
threshold and no save. Each product is cut into the jobs the configuration allows (rows up to
``pe_max_rows``, reductions up to ``tile_depth``, columns up to ``pe_max_tiles`` tiles); the
weight gradient's activations are saved and read in chunks of ``tile_depth`` positions and as
many features as the activation buffer holds. A layer's jobs are sampled (``--samples`` per
row block, evenly spaced), modelled exactly, and scaled to the layer's job count.

Operands come from :mod:`golden.synthetic` (no trained tensors of these networks exist here):
weights and output gradients with log-normal per-channel scales, post-ReLU activations; SWAT's
exact per-tensor top-K picks the masks.

Speedups are given against the same hardware in dense mode (``*_speedup``) and against an ideal
dense array of the same PE count, ``R*C`` MACs a cycle with no feeding cost
(``*_speedup_vs_ideal_dense``): the honest baseline, since the dense mode also pays the
accelerator's feeding costs. ``stored_vs_dense`` is the bits the hardware holds for the saved
activations over the bits of dense ``X`` (whole network); ``offchip_bytes`` the saved
activations' host traffic of an iteration, bytes each way (``to_accelerator``, ``to_host``), per
layer and in total.

Writes ``network.json``, ``network.md`` and ``network.png`` into ``--out``, and prints the
tables. Also reports how the speedup changes with the array size and with the top-K period.
"""

import dataclasses
import json
import math
import os
import sys
import time

import numpy as np

from golden import budgets, networks, perf_model, synthetic, topk
from golden import pe_array as golden_pe
from golden.feature_maps import FeatureMapFormat
from golden.layers import im2col
from golden.cli import OneLineParser
from golden.config import AccelConfig, ConfigError, parse_pe
from golden.outputs import OutputPathError, check_output_folder

__all__ = ["NETWORKS", "SCHEMES", "SWAT_REPORTED", "layer_densities", "evaluate", "main"]

#: name -> (layer list, default batch)
NETWORKS = {
    "resnet18-cifar10": (networks.resnet18_cifar, 32),
    "resnet50-imagenet": (networks.resnet50_imagenet, 4),
}
#: (scheme, sparsity)
SCHEMES = [("SWAT-U", 0.8), ("SWAT-U", 0.9), ("SWAT-ERK", 0.8), ("SWAT-ERK", 0.9)]
#: SWAT's reported figures (``../shared/SWAT.md``): speedups on a simulated sparse accelerator
#: (any network) and ResNet-50's training FLOP reduction.
SWAT_REPORTED = {
    ("SWAT-U", 0.8): {"forward": 3.3, "backward": 3.4, "flop_reduction": 0.761},
    ("SWAT-U", 0.9): {"forward": 5.6, "backward": 6.3, "flop_reduction": 0.856},
    ("SWAT-ERK", 0.8): {"flop_reduction": 0.600},
    ("SWAT-ERK", 0.9): {"flop_reduction": 0.790},
}
SWAT_ACTIVATION_SAVING = "23-50 %"
#: configuration field -> the flag of this command that sets it
CONFIG_FLAGS = {"pe_rows": "--pe", "pe_cols": "--pe", "width": "--width",
                "topk_lanes": "--topk-lanes", "act_lanes": "--act-lanes",
                "act_conv_words": "--act-conv-words"}


def layer_densities(layers, scheme, sparsity):
    """Per-layer densities: SWAT-U keeps the first layer dense; SWAT-ERK by RigL's rule."""
    shapes = [(l.cout, l.cin, l.kernel, l.kernel) for l in layers]
    if scheme == "SWAT-U":
        return budgets.uniform_densities(shapes, 1 - sparsity, first_layer_dense=True)
    if scheme == "SWAT-ERK":
        return budgets.erk_densities(shapes, 1 - sparsity)
    raise ValueError(f"scheme must be SWAT-U or SWAT-ERK, not {scheme!r}")


def _chunks(total, size):
    """``[(start, length), ...]`` covering ``range(total)`` in pieces of at most ``size``."""
    return [(s, min(size, total - s)) for s in range(0, total, size)]


def _sample(chunks, count):
    """``[(chunk, weight), ...]``: ``count`` evenly spaced full chunks, each standing for its
    share of all the full ones, and the short last chunk, if any, for itself."""
    full = [c for c in chunks if c[1] == chunks[0][1]]
    rest = [(c, 1.0) for c in chunks[len(full):]]
    if len(full) > count:
        picked = [full[i] for i in np.linspace(0, len(full) - 1, count).round().astype(int)]
    else:
        picked = full
    return [(c, len(full) / len(picked)) for c in picked] + rest


def _sample_by_length(chunks, count):
    """``[(chunk, weight), ...]``: for each chunk length, ``count`` evenly spaced chunks of
    that length, each standing for its share of them."""
    by_length = {}
    for c in chunks:
        by_length.setdefault(c[1], []).append(c)
    picked = []
    for same in by_length.values():
        index = np.unique(np.linspace(0, len(same) - 1, min(count, len(same))).round()
                          .astype(int))
        picked += [(same[i], len(same) / len(index)) for i in index.tolist()]
    return picked


def _im2col_positions(x, layer, start, count):
    """Columns ``start .. start + count - 1`` of ``im2col(x).T`` (``features x count``)."""
    k, s, p = layer.kernel, layer.stride, layer.padding
    out = layer.out_size
    pos = np.arange(start, start + count)
    b, rest = np.divmod(pos, out * out)
    oy, ox = np.divmod(rest, out)
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dy, dx = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    rows = oy[:, None, None] * s + dy[None]
    cols = ox[:, None, None] * s + dx[None]
    patches = xp[b[:, None, None, None], np.arange(x.shape[1])[None, :, None, None],
                 rows[:, None], cols[:, None]]  # (count, cin, k, k)
    return patches.reshape(count, -1).T


@dataclasses.dataclass
class _Totals:
    threshold: float = 0.0
    save: float = 0.0
    forward: float = 0.0
    input_grad: float = 0.0
    weight_grad: float = 0.0
    dense_forward: float = 0.0
    dense_input_grad: float = 0.0
    dense_weight_grad: float = 0.0
    macs: float = 0.0
    forward_macs: float = 0.0
    sparse_macs: float = 0.0
    act_dense_bits: float = 0.0
    act_swat_bits: float = 0.0
    act_stored_bits: float = 0.0
    act_im2col_bits: float = 0.0
    act_to_accelerator_bytes: float = 0.0
    act_to_host_bytes: float = 0.0


class _ProductStream:
    """The cycles of one phase's products, sent back to back: the accelerator loads a job's rows
    while the job before computes. The first product costs its own cycles; each later one the
    distance from the reply before to its own, taken as a like product's after its twin
    (:func:`golden.perf_model.product_sequence`). ``cache`` keeps ``(alone, after its twin)``
    by key (dense-mode products depend on their shape only)."""

    def __init__(self, config, cache=None):
        self.config, self.cache = config, cache
        self.cycles, self._first = 0.0, True

    def add(self, product, weight, key=None):
        """Add ``weight`` products like ``product`` (:func:`golden.perf_model.product_sequence`'s
        form)."""
        if self.cache is not None and key in self.cache:
            alone, steady = self.cache[key]
        else:
            first, second = perf_model.product_sequence(self.config, [product, product])
            alone, steady = first, second - first
            if self.cache is not None:
                self.cache[key] = (alone, steady)
        if self._first:
            self.cycles += alone + (weight - 1) * steady
            self._first = False
        else:
            self.cycles += weight * steady


def _product_cycles(config, mask, cols, samples, *, dense_cache, sparse_layer=True):
    """Sparse and dense cycles of ``mask`` (rows x reduction, the sparse operand's keep mask)
    times ``cols`` dense columns, in the jobs the configuration allows, sent back to back, each
    job's rows longest first. A
    dense layer runs in dense mode in both: its sparse cycles are its dense ones."""
    rows, reduction = mask.shape
    per_job_cols = config.pe_max_tiles * config.pe_cols
    col_jobs = [(math.ceil(n / config.pe_cols), count) for n, count in
                _column_groups(cols, per_job_cols)]
    sparse, dense = _ProductStream(config), _ProductStream(config, dense_cache)
    for r0, r_len in _chunks(rows, config.pe_max_rows):
        for (k0, k_len), scale in _sample(_chunks(reduction, config.tile_depth), samples):
            job = mask[r0:r0 + r_len, k0:k0 + k_len]
            # The host sends a job's rows longest first (sim.swat_step's order).
            sorted_job = job[golden_pe.longest_first(job.sum(axis=1))]
            for tiles, count in col_jobs:
                if sparse_layer:
                    sparse.add(("gemm", sorted_job, tiles, False), scale * count)
                dense.add(("gemm", job, tiles, True), scale * count, key=(r_len, k_len, tiles))
    return (sparse.cycles if sparse_layer else dense.cycles), dense.cycles


def _column_groups(cols, per_job):
    """``[(columns of a job, how many such jobs)]``."""
    full, rest = divmod(cols, per_job)
    return [(n, c) for n, c in ((per_job, full), (rest, 1)) if c and n]


def _saved_chunk_features(config, positions, density):
    """Features of a saved chunk of ``positions`` that the activation buffer holds (bitmap
    bits, kept values with a 25 % margin over the expected count, rows)."""
    by_bits = config.act_bitmap_bits // positions
    by_values = int(config.act_values // max(1.0, 1.25 * density * positions))
    return max(1, min(config.pe_max_rows, config.act_max_rows, by_bits, by_values))


def evaluate(config, layers, densities, batch, *, samples, rng):
    """Cycles, MACs and saved-activation bits of one training iteration, per layer and in
    total: ``(per_layer, totals)`` with the threshold cycles given per refresh."""
    width = config.width
    dense_cache = {}
    per_layer, totals = [], _Totals()
    for index, (layer, density) in enumerate(zip(layers, densities)):
        t = _Totals()
        p = layer.positions(batch)
        f, cout = layer.features, layer.cout
        w = synthetic.weights(rng, cout, layer.cin, layer.kernel, width)
        x = synthetic.activations(rng, batch, layer.cin, layer.size, width)
        sparse_layer = density < 1.0
        # What the selector sends and the buffer stores: kept elements that are not zero.
        w_mask = (topk.sent_mask(w, topk.topk_mask(w, density)) if sparse_layer
                  else np.ones(w.shape, bool)).reshape(cout, f)
        x_mask = (topk.sent_mask(x, topk.topk_mask(x, density)) if sparse_layer
                  else np.ones(x.shape, bool))

        # Forward and input gradient: W~ (or its transpose) through the selector.
        t.forward, t.dense_forward = _product_cycles(config, w_mask, p, samples,
                                                     dense_cache=dense_cache,
                                                     sparse_layer=sparse_layer)
        t.macs += f * cout * p
        t.forward_macs += f * cout * p
        t.sparse_macs += float(w_mask.sum()) * p
        if index > 0:  # the first layer needs no input gradient
            t.input_grad, t.dense_input_grad = _product_cycles(
                config, w_mask.T, p, samples, dense_cache=dense_cache, sparse_layer=sparse_layer)
            t.macs += f * cout * p
            t.sparse_macs += float(w_mask.sum()) * p
        if sparse_layer:
            t.threshold = (perf_model.threshold_cycles(config, w.size)
                           + perf_model.threshold_cycles(config, x.size))

        # Weight gradient. A k x k conv layer (k > 1) whose maps the buffer holds saves X~
        # once as feature maps and reads its im2col rows on read (when the buffer has the
        # conv read, act_conv_read); other layers save their im2col matrix (X itself for a
        # 1x1 stride-1 conv or a linear layer) feature-major in chunks, read back by rows. The
        # dense baseline reads im2col chunks in dense mode.
        tiles = math.ceil(cout / config.pe_cols)
        maps = (sparse_layer and layer.kernel > 1 and layer.size ** 2 <= config.act_max_cols
                and bool(config.act_conv_read))
        p_chunks = _chunks(p, config.tile_depth)
        kept_sampled = elements_sampled = 0
        fc = _saved_chunk_features(config, config.tile_depth, density)
        dense_wg, saved_wg = _ProductStream(config, dense_cache), _ProductStream(config)
        for f0, f_len in _chunks(f, fc):
            for (p0, p_len), scale in _sample(p_chunks, samples):
                chunk = _im2col_positions(x_mask, layer, p0, p_len)[f0:f0 + f_len]
                kept_sampled += scale * int(chunk.sum())
                elements_sampled += scale * chunk.size
                dense_wg.add(("gemm", chunk, tiles, True), scale, key=(f_len, p_len, tiles))
                if sparse_layer and not maps:
                    t.save += scale * perf_model.save_act_cycles(config, chunk.size, chunk)
                    # The host streams each chunk of the im2col matrix in to be saved.
                    t.act_to_accelerator_bytes += scale * chunk.size * width / 8
                    saved_wg.add(("gemm_saved", chunk, tiles, None), scale)
        t.dense_weight_grad = dense_wg.cycles
        t.weight_grad = saved_wg.cycles if sparse_layer else t.dense_weight_grad
        t.macs += f * p * cout
        t.sparse_macs += f * p * cout * (kept_sampled / elements_sampled)

        # Saved activations: SWAT's X~ in the bitmap format, and what the hardware stores,
        # against dense X.
        t.act_dense_bits = x.size * width
        t.act_swat_bits = x.size + int(x_mask.sum()) * width
        t.act_im2col_bits = f * p * (1 + width * kept_sampled / elements_sampled)
        if maps:
            (t.save, t.weight_grad, t.act_stored_bits,
             t.act_to_accelerator_bytes) = _feature_map_weight_grad(config, layer, x_mask, tiles,
                                                                    samples)
        elif sparse_layer:
            t.act_stored_bits = t.act_im2col_bits
        else:  # a dense layer keeps X itself (it runs in dense mode, with nothing to select)
            t.act_stored_bits = t.act_dense_bits
        per_layer.append({"layer": layer.name, "density": density, **dataclasses.asdict(t),
                          "offchip_bytes": _offchip(t)})
        for field in dataclasses.fields(_Totals):
            setattr(totals, field.name, getattr(totals, field.name) + getattr(t, field.name))
    return per_layer, totals


def _feature_map_weight_grad(config, layer, x_mask, tiles, samples):
    """A conv layer's save and weight gradient with ``X~`` stored once as feature maps:
    ``(save cycles, weight-gradient cycles, stored bits, bytes the host streams in)``.

    ``X`` is saved in chunks of whole maps the buffer holds (every channel of as many images
    as fit, or as many channels of one image); each chunk's weight gradient runs in jobs of
    as many channels as the array's rows allow (``kernel**2`` features each) over as many
    output rows as one reduction (``tile_depth``) holds, their im2col rows built by the
    buffer's conv read. Jobs are sampled per channel group as :func:`evaluate` samples. Each
    job's read is modelled on its own images and channels, as if they began the stored tensor
    (the words and value words they straddle may differ by one at the edges)."""
    n_img, channels, height, width = x_mask.shape
    k, stride, padding = layer.kernel, layer.stride, layer.padding
    out = layer.out_size
    fmt = FeatureMapFormat(config.width, word_bits=config.act_scan_bits,
                           count_bits=config.act_values.bit_length())
    plane = height * width
    density = float(x_mask.mean())
    by_bits = config.act_bitmap_bits // plane
    by_values = int(config.act_values // max(1.0, 1.25 * density * plane))
    planes = max(1, min(by_bits, by_values, config.act_max_rows))
    per_chunk_images = max(1, planes // channels)
    per_chunk_channels = min(channels, planes)
    group = max(1, min(per_chunk_channels, config.pe_max_rows // (k * k)))
    rows_per_job = max(1, config.tile_depth // out)
    save = stored = 0.0
    jobs = {}  # channel group -> [(first output row, rows)] over the whole batch
    for i0, i_len in _chunks(n_img, per_chunk_images):
        for c0, c_len in _chunks(channels, per_chunk_channels):
            chunk = x_mask[i0:i0 + i_len, c0:c0 + c_len]
            # Saved as planes in (channel, image) order.
            save += perf_model.save_act_cycles(config, chunk.size, chunk.transpose(1, 0, 2, 3))
            stored += fmt.stored_bits(chunk.size, int(chunk.sum()))
            for g0, g_len in _chunks(c_len, group):
                jobs.setdefault((c0 + g0, g_len), []).extend(
                    (i0 * out + r0, r_len) for r0, r_len in _chunks(i_len * out, rows_per_job))
    weight_grad = _ProductStream(config)
    for (c0, c_len), row_jobs in jobs.items():
        for (r0, r_len), scale in _sample_by_length(row_jobs, samples):
            i0, i1 = r0 // out, -(-(r0 + r_len) // out)
            mask = x_mask[i0:i1, c0:c0 + c_len]
            first = r0 - i0 * out
            scan = perf_model.act_conv_read(config, mask, kernel=k, stride=stride,
                                            padding=padding, first_out_row=first,
                                            out_rows=r_len)
            keep = im2col(mask.astype(np.int8), k, stride, padding).T.astype(bool)
            keep = keep[:, first * out:(first + r_len) * out]
            weight_grad.add(("gemm_saved", keep, tiles, scan), scale)
    return save, weight_grad.cycles, stored, x_mask.size * config.width / 8


def _offchip(totals):
    """The saved activations' host traffic, bytes each way, of one iteration: what the host
    streams in to be saved, and what the accelerator sends back to be kept off chip."""
    return {"to_accelerator": round(totals.act_to_accelerator_bytes),
            "to_host": round(totals.act_to_host_bytes)}


def summarize(totals, period, pe_count):
    """Speedups, FLOP reduction and memory from :func:`evaluate`'s totals at top-K ``period``,
    on an array of ``pe_count`` PEs. The ideal dense array does ``pe_count`` MACs a cycle with
    no feeding cost: the honest baseline, since the dense mode also pays the accelerator's."""
    forward = totals.threshold / period + totals.save + totals.forward
    backward = totals.input_grad + totals.weight_grad
    dense_forward = totals.dense_forward
    dense_backward = totals.dense_input_grad + totals.dense_weight_grad
    ideal_forward = totals.forward_macs / pe_count
    ideal_backward = (totals.macs - totals.forward_macs) / pe_count
    return {
        "forward_cycles": round(forward), "backward_cycles": round(backward),
        "iteration_cycles": round(forward + backward),
        "dense_forward_cycles": round(dense_forward),
        "dense_backward_cycles": round(dense_backward),
        "forward_speedup": dense_forward / forward,
        "backward_speedup": dense_backward / backward,
        "training_speedup": (dense_forward + dense_backward) / (forward + backward),
        "ideal_dense_cycles": round(ideal_forward + ideal_backward),
        "forward_speedup_vs_ideal_dense": ideal_forward / forward,
        "backward_speedup_vs_ideal_dense": ideal_backward / backward,
        "training_speedup_vs_ideal_dense": (ideal_forward + ideal_backward) / (forward + backward),
        # The dense mode's MACs a cycle over the array's PEs: 1.0 is an ideal dense array.
        "dense_mode_utilization": totals.macs / pe_count / (dense_forward + dense_backward),
        "flop_reduction": 1 - totals.sparse_macs / totals.macs,
        "activation_memory_vs_dense": totals.act_swat_bits / totals.act_dense_bits,
        "activation_memory_saving": 1 - totals.act_swat_bits / totals.act_dense_bits,
        "stored_im2col_vs_dense": totals.act_im2col_bits / totals.act_dense_bits,
        "stored_vs_dense": totals.act_stored_bits / totals.act_dense_bits,
        "offchip_bytes": _offchip(totals),
        "threshold_share": totals.threshold / period / (forward + backward),
    }


def _run(config, network, scheme, sparsity, batch, samples, seed, period):
    layers = NETWORKS[network][0]()
    densities = layer_densities(layers, scheme, sparsity)
    rng = np.random.default_rng(seed)
    per_layer, totals = evaluate(config, layers, densities, batch, samples=samples, rng=rng)
    return {"network": network, "scheme": scheme, "sparsity": sparsity, "batch": batch,
            "pe": config.pe, "period": period,
            "global_density": budgets.global_density(
                [(l.cout, l.cin, l.kernel, l.kernel) for l in layers], densities),
            **summarize(totals, period, config.pe_rows * config.pe_cols),
            "totals": dataclasses.asdict(totals),
            "layers": per_layer}


def _fmt(x, digits=2):
    return f"{x:.{digits}f}"


def format_tables(results, sweep_pe, sweep_period, sweep_lanes):
    lines = ["| network | scheme | sparsity | batch | forward speedup | backward speedup | "
             "training speedup | training vs ideal dense array | FLOP reduction | "
             "saved activations vs dense (SWAT / stored) | SWAT reported (fwd / bwd, "
             "FLOP red.) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        ref = SWAT_REPORTED.get((r["scheme"], r["sparsity"]), {})
        speed = (f"{ref['forward']}x / {ref['backward']}x" if "forward" in ref else "-")
        flops = f"{100 * ref['flop_reduction']:.1f} %" if "flop_reduction" in ref else "-"
        lines.append(
            f"| {r['network']} | {r['scheme']} | {r['sparsity']} | {r['batch']} "
            f"| {_fmt(r['forward_speedup'])}x | {_fmt(r['backward_speedup'])}x "
            f"| {_fmt(r['training_speedup'])}x | {_fmt(r['training_speedup_vs_ideal_dense'])}x "
            f"| {100 * r['flop_reduction']:.1f} % "
            f"| {100 * r['activation_memory_vs_dense']:.1f} % / "
            f"{100 * r['stored_vs_dense']:.1f} % | {speed}, {flops} |")
    lines += ["", "Cycles of one iteration by phase (millions; dense mode in brackets):", "",
              "| network | scheme | sparsity | threshold passes | save activations | forward "
              "product | input gradient | weight gradient |",
              "|---|---|---|---|---|---|---|---|"]
    for r in results:
        t, period = r["totals"], r["period"]
        lines.append(
            f"| {r['network']} | {r['scheme']} | {r['sparsity']} "
            f"| {t['threshold'] / period / 1e6:.2f} | {t['save'] / 1e6:.2f} "
            f"| {t['forward'] / 1e6:.2f} ({t['dense_forward'] / 1e6:.2f}) "
            f"| {t['input_grad'] / 1e6:.2f} ({t['dense_input_grad'] / 1e6:.2f}) "
            f"| {t['weight_grad'] / 1e6:.2f} ({t['dense_weight_grad'] / 1e6:.2f}) |")
    for network in dict.fromkeys(r["network"] for r in sweep_pe):
        lines += _sweep_table("Array size", [r for r in sweep_pe if r["network"] == network],
                              "array", "pe", SPEEDUPS + ("training_speedup_vs_ideal_dense",))
    lines += _sweep_table("Top-K period", sweep_period, "period", "period",
                          ("forward_speedup", "training_speedup", "threshold_share"))
    lines += _sweep_table("Top-K selector lanes", sweep_lanes, "lanes", "topk_lanes", SPEEDUPS)
    return "\n".join(lines)


SPEEDUPS = ("forward_speedup", "backward_speedup", "training_speedup")


def _sweep_table(title, rows, label, key, columns):
    """A sweep's Markdown lines: ``key`` then ``columns`` (speedups, or a share in %)."""
    names = [c.replace("_", " ").replace("threshold share", "threshold passes' share")
             for c in columns]
    lines = ["", f"{title} ({_sweep_label(rows)}):", "",
             f"| {label} | " + " | ".join(names) + " |", "|---" * (len(columns) + 1) + "|"]
    for r in rows:
        cells = [f"{100 * r[c]:.1f} %" if c.endswith("share") else f"{_fmt(r[c])}x"
                 for c in columns]
        lines.append(f"| {r[key]} | " + " | ".join(cells) + " |")
    return lines


def _sweep_label(rows):
    if not rows:
        return "none"
    r = rows[0]
    return f"{r['network']}, {r['scheme']} {r['sparsity']}, batch {r['batch']}"


def plot(results, sweep_pe, sweep_period, sweep_lanes, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(19, 4.2))
    ax = axes[0]
    labels = [f"{r['network'].split('-')[0]}\n{r['scheme']} {r['sparsity']}" for r in results]
    xs = np.arange(len(results))
    ax.bar(xs - 0.2, [r["forward_speedup"] for r in results], 0.4, label="forward")
    ax.bar(xs + 0.2, [r["backward_speedup"] for r in results], 0.4, label="backward")
    for i, r in enumerate(results):
        ref = SWAT_REPORTED.get((r["scheme"], r["sparsity"]), {})
        if "forward" in ref:
            ax.plot([i - 0.2, i + 0.2], [ref["forward"], ref["backward"]], "k_", ms=14,
                    mew=2, label="SWAT reported" if i == 0 else None)
    ax.set_xticks(xs, labels, fontsize=7)
    ax.set_ylabel("speedup over dense mode")
    ax.set_title("training speedup")
    ax.legend(fontsize=8)
    first = [r for r in sweep_pe if r["network"] == sweep_pe[0]["network"]] if sweep_pe else []
    for network in dict.fromkeys(r["network"] for r in sweep_pe[len(first):]):
        rows = [r for r in sweep_pe if r["network"] == network]
        axes[1].plot([r["pe"] for r in rows], [r["training_speedup"] for r in rows], "s--",
                     label=f"training ({network.split('-')[0]})")
    for ax, rows, key, label, title, log in (
            (axes[1], first, "pe", "PE array", "array size", False),
            (axes[2], sweep_period, "period", "top-K period (iterations)", "top-K period", True),
            (axes[3], sweep_lanes, "topk_lanes", "top-K selector lanes", "selector lanes",
             False)):
        for column in SPEEDUPS:
            if rows:
                ax.plot([r[key] for r in rows], [r[column] for r in rows], "o-",
                        label=column.split("_")[0])
        if log:
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_title(f"speedup vs {title}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = OneLineParser(
        prog="python -m sim.network",
        description="Network-level SWAT results from the cycle model: the cycles of a training "
                    "iteration of ResNet-18 (CIFAR-10) and ResNet-50 (ImageNet) on the "
                    "generated accelerator, sparse against dense, with sweeps of the array "
                    "size, the top-K period and the selector lanes. Writes network.json, "
                    "network.md and network.png into --out.")
    parser.add_argument("--pe", default="16x16", help="PE array RxC (default: 16x16)")
    parser.add_argument("--width", type=int, default=8, help="operand width (default: 8)")
    parser.add_argument("--topk-lanes", type=int, default=AccelConfig().topk_lanes,
                        help="elements per cycle of the top-K selector (default: 0, derived "
                             "from the array: 16 on 16 PE rows)")
    parser.add_argument("--act-lanes", type=int, default=AccelConfig().act_lanes,
                        help="values per word and kept elements per read beat of the "
                             "activation buffer (default: 0, the selector's lanes up to 4)")
    parser.add_argument("--act-conv-words", type=int, default=AccelConfig().act_conv_words,
                        help="bitmap words the activation buffer's conv read scans a cycle, 1 "
                             "or 2 (default: 0, derived from the array: 2 from 256 PEs on)")
    parser.add_argument("--networks", default=",".join(NETWORKS),
                        help=f"comma-separated, of {', '.join(NETWORKS)} (default: both)")
    parser.add_argument("--batch", type=int, default=None,
                        help="batch size (default: 32 for CIFAR-10, 4 for ImageNet)")
    parser.add_argument("--period", type=int, default=10,
                        help="top-K period in iterations (default: 10, SWAT's CIFAR setting)")
    parser.add_argument("--samples", type=int, default=2,
                        help="jobs modelled per row block of a product (default: 2)")
    parser.add_argument("--sweep-pes", default="4x4,8x8,16x16,32x32",
                        help="array sizes of the array-size sweep, run for every network "
                             "(default: 4x4 to 32x32)")
    parser.add_argument("--sweep-periods", default="1,10,100,1000",
                        help="top-K periods of the period sweep (default: 1,10,100,1000)")
    parser.add_argument("--sweep-lanes", default="4,8,16",
                        help="top-K lanes of the selector-lanes sweep (default: 4,8,16)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    parser.add_argument("--out", default="network_results",
                        help="output folder (default: network_results)")
    args = parser.parse_args(argv)
    from hw.top import check_config

    try:
        rows, cols = parse_pe(args.pe)
        try:
            config = AccelConfig(pe_rows=rows, pe_cols=cols, width=args.width,
                                 topk_lanes=args.topk_lanes, act_lanes=args.act_lanes,
                                 act_conv_words=args.act_conv_words)
            check_config(config)
        except ConfigError as e:
            raise ValueError(e.naming_flag(CONFIG_FLAGS)) from None
        chosen = [n.strip() for n in args.networks.split(",") if n.strip()]
        for name in chosen:
            if name not in NETWORKS:
                raise ValueError(f"--networks: unknown network {name!r} (known: "
                                 f"{', '.join(NETWORKS)})")
        if not chosen:
            raise ValueError("--networks must name at least one network")
        for flag, value, lo in (("--batch", args.batch, 1), ("--period", args.period, 1),
                                ("--samples", args.samples, 1)):
            if value is not None and value < lo:
                raise ValueError(f"{flag} must be at least {lo}, not {value}")
        sweep_pes = [parse_pe(p, "--sweep-pes") for p in args.sweep_pes.split(",")
                     if p.strip()]
        sweep_configs = [dataclasses.replace(config, pe_rows=r, pe_cols=c)
                         for r, c in sweep_pes]
        for cfg in sweep_configs:
            try:
                check_config(cfg)
            except ConfigError as e:
                raise ValueError(f"--sweep-pes {cfg.pe}: {e}") from None
        try:
            periods = [int(p) for p in args.sweep_periods.split(",") if p.strip()]
        except ValueError:
            raise ValueError("--sweep-periods must be comma-separated integers, not "
                             f"{args.sweep_periods!r}") from None
        if any(p < 1 for p in periods):
            raise ValueError("--sweep-periods must be positive")
        try:
            lanes = [int(n) for n in args.sweep_lanes.split(",") if n.strip()]
        except ValueError:
            raise ValueError("--sweep-lanes must be comma-separated integers, not "
                             f"{args.sweep_lanes!r}") from None
        try:
            lane_configs = [dataclasses.replace(config, topk_lanes=n) for n in lanes]
            for cfg in lane_configs:
                check_config(cfg)
        except ConfigError as e:
            raise ValueError(f"--sweep-lanes: {e}") from None
    except (ConfigError, ValueError) as e:
        parser.error(str(e))
    try:
        check_output_folder(args.out, "--out")
    except OutputPathError as e:
        parser.exit(e.status, f"error: {e}\n")

    start = time.monotonic()
    results = []
    for name in chosen:
        batch = args.batch or NETWORKS[name][1]
        for scheme, sparsity in SCHEMES:
            print(f"{name} {scheme} {sparsity} on {config.pe} "
                  f"({time.monotonic() - start:.0f} s so far)", flush=True)
            results.append(_run(config, name, scheme, sparsity, batch, args.samples,
                                args.seed, args.period))
    # The sweeps, SWAT-U at 0.9: the array size for every network, the others for the first.
    sweep_pe = []
    for name in chosen:
        for cfg in sweep_configs:
            print(f"array-size sweep: {name} on {cfg.pe} ({time.monotonic() - start:.0f} s so "
                  "far)", flush=True)
            sweep_pe.append(_run(cfg, name, "SWAT-U", 0.9, args.batch or NETWORKS[name][1],
                                 args.samples, args.seed, args.period))
    sweep_net = chosen[0]
    sweep_batch = args.batch or NETWORKS[sweep_net][1]
    sweep_lanes = []
    for cfg in lane_configs:
        print(f"selector-lanes sweep: {cfg.selector_lanes} ({time.monotonic() - start:.0f} s so "
              "far)", flush=True)
        row = _run(cfg, sweep_net, "SWAT-U", 0.9, sweep_batch, args.samples, args.seed,
                   args.period)
        sweep_lanes.append({**row, "topk_lanes": cfg.selector_lanes})
    base = next(r for r in results if r["network"] == sweep_net and r["scheme"] == "SWAT-U"
                and r["sparsity"] == 0.9)
    sweep_period = []
    for period in periods:
        totals = _Totals(**base["totals"])
        sweep_period.append({**{k: base[k] for k in ("network", "scheme", "sparsity", "batch",
                                                     "pe")},
                             "period": period,
                             **summarize(totals, period, config.pe_rows * config.pe_cols)})

    os.makedirs(args.out, exist_ok=True)
    tables = format_tables(results, sweep_pe, sweep_period, sweep_lanes)
    with open(os.path.join(args.out, "network.json"), "w") as f:
        json.dump({"config": config.to_dict(), "period": args.period, "results": results,
                   "array_size_sweep": sweep_pe, "period_sweep": sweep_period,
                   "topk_lanes_sweep": sweep_lanes}, f, indent=1)
        f.write("\n")
    header = (f"SWAT training on the {config.pe} accelerator ({config.width}-bit, "
              f"{config.selector_lanes} top-K lanes), cycle model, top-K period {args.period}, "
              f"seed {args.seed}\n\n")
    with open(os.path.join(args.out, "network.md"), "w") as f:
        f.write(header + tables + "\n")
    plot(results, sweep_pe, sweep_period, sweep_lanes, os.path.join(args.out, "network.png"))
    print(header + tables)
    print(f"written: {args.out}/network.json, network.md, network.png "
          f"({time.monotonic() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
