"""One complete SWAT training step of a layer, run on the RTL through the host interface.

``python -m sim.swat_step --pe RxC --layer linear:OUTxIN --batch B --density D`` (or
``--layer conv:CINxCOUTxKxSIZE`` for a k x k convolution on SIZE x SIZE inputs, with
``--stride S`` (default 1) and ``--padding P`` (default k//2)) builds the accelerator top for the layer, simulates it (Verilator by default) and runs,
through :class:`sim.drivers.accel.AccelDriver`:

1. threshold refresh of the weights and of the input activations (exact per-tensor top-K);
2. saving the sparsified activations in the activation buffer: a conv layer's ``X~`` once, as
   feature maps with a directory (with ``--act-conv-read 0``, an accelerator without the conv
   read, its im2col matrix feature-major instead), a linear layer's feature-major (``X``
   transposed, as the previous layer's PE-array results would come);
3. the forward product, the input-gradient product and the weight-gradient product (a conv
   layer's im2col rows built on read from the feature maps, or read as saved with
   ``--act-conv-read 0``), the first two tiled over the array
   by the driver (rows, reduction and columns in chunks the
   configuration allows, the jobs sent back to back; partial sums added on the host, which is
   exact).

Every output (the layer output, the input gradient and the weight gradient) is compared bit
for bit with :mod:`golden.layers` running the same step with the exact integer product. The
cycles of each phase (beside the cycle model's) and the activation buffer's stored bits are
printed, and with ``--json FILE`` written as ``phases`` (each phase's ``cycles`` and ``model``),
``stored_bits``, ``dense_bits`` (the bits of dense ``X``) and ``match``; the exit status is 1 on
any mismatch, 2 on bad arguments.
"""

import json
import os
import re
import sys

import numpy as np

from golden import numerics, topk
from golden import pe_array as golden_pe
from golden.cli import OneLineParser
from golden.config import AccelConfig, ConfigError, parse_pe
from golden.outputs import OutputPathError, check_output_file
from golden.layers import SwatConv2d, SwatLinear, col2im, conv_out_size, im2col

__all__ = ["LayerSpec", "parse_layer", "step_config", "make_operands", "golden_step",
           "run_step_on_rtl", "predict_step", "main"]


class LayerSpec:
    """A linear (``kernel == 0``) or conv layer of the step."""

    def __init__(self, kind, cin, cout, kernel=0, size=1, stride=1, padding=None):
        self.kind, self.cin, self.cout, self.kernel, self.size = kind, cin, cout, kernel, size
        self.stride = stride
        self.padding = kernel // 2 if padding is None else padding

    @property
    def out_size(self):
        """Output rows (and columns) of a conv layer; 1 for a linear layer."""
        if self.kind == "linear":
            return 1
        return conv_out_size(self.size, self.kernel, self.stride, self.padding)

    @property
    def features(self):
        return self.cin * max(self.kernel, 1) ** 2

    def positions(self, batch):
        return batch * self.out_size ** 2

    def to_dict(self):
        return {"kind": self.kind, "cin": self.cin, "cout": self.cout, "kernel": self.kernel,
                "size": self.size, "stride": self.stride, "padding": self.padding}

    @classmethod
    def from_dict(cls, d):
        return cls(**d)


def parse_layer(text, stride=None, padding=None):
    """``linear:OUTxIN`` or ``conv:CINxCOUTxKxSIZE``, with a conv layer's ``stride`` (default
    1) and ``padding`` (default k//2) (raises ``ValueError``, one line, naming the flag)."""
    match = re.fullmatch(r"linear:(\d+)x(\d+)", text)
    if match:
        out, inp = int(match.group(1)), int(match.group(2))
        if min(out, inp) < 1:
            raise ValueError(f"--layer sizes must be positive, not {text!r}")
        if stride is not None or padding is not None:
            raise ValueError("--stride and --padding apply to conv layers only")
        return LayerSpec("linear", inp, out)
    match = re.fullmatch(r"conv:(\d+)x(\d+)x(\d+)x(\d+)", text)
    if match:
        cin, cout, k, size = (int(g) for g in match.groups())
        if min(cin, cout, k, size) < 1 or k % 2 == 0 or k > size:
            raise ValueError(f"--layer conv needs positive sizes, an odd kernel no larger than "
                             f"the input, not {text!r}")
        stride = 1 if stride is None else stride
        padding = k // 2 if padding is None else padding
        if not 1 <= stride <= k:
            raise ValueError(f"--stride must be between 1 and the kernel ({k}), not {stride}")
        if not 0 <= padding < k:
            raise ValueError(f"--padding must be between 0 and the kernel minus 1 ({k - 1}), "
                             f"not {padding}")
        return LayerSpec("conv", cin, cout, k, size, stride, padding)
    raise ValueError(f"--layer must be linear:OUTxIN or conv:CINxCOUTxKxSIZE, not {text!r}")


def _pow2(n, lo=16):
    return max(lo, 1 << (max(1, n) - 1).bit_length())


def step_config(pe_rows, pe_cols, width, spec, batch, tile_depth=None, act_conv_read=1,
                topk_lanes=0, act_lanes=0, act_conv_words=0):
    """A configuration large enough for the layer's step in single jobs where it must be
    (the weight gradient reads the saved activations whole). A smaller ``tile_depth`` makes
    the driver split the forward and input-gradient reductions into several jobs;
    ``act_conv_read=0`` leaves the conv read out (a conv layer saves its im2col matrix);
    ``topk_lanes``, ``act_lanes`` and ``act_conv_words`` are the configuration's (0 derives
    them)."""
    positions = spec.positions(batch)
    f, cout = spec.features, spec.cout
    depth = _pow2(max(f, cout, positions))
    if tile_depth is not None:
        if tile_depth < positions:
            raise ValueError(f"--tile-depth must be at least batch x positions ({positions}): "
                             "the weight gradient reduces over them in one job")
        depth = tile_depth
    rows = max(f, cout)
    tensor = max(f * cout, positions * f, batch * spec.cin * spec.size ** 2)
    # A conv layer's X~ is saved as feature maps: planes (channel, image) of size x size.
    planes, plane = ((batch * spec.cin, spec.size ** 2) if spec.kind == "conv" else (1, 1))
    config = AccelConfig(
        pe_rows=pe_rows, pe_cols=pe_cols, width=width, tile_depth=depth,
        pe_max_rows=rows, pe_max_tiles=max(1, -(-max(positions, cout) // pe_cols)),
        max_tensor_len=_pow2(tensor), act_bitmap_bits=_pow2(positions * f),
        act_values=_pow2(positions * f), act_tensors=2,
        act_max_rows=max(depth, _pow2(f), _pow2(planes)),
        act_max_cols=max(depth, _pow2(f), _pow2(plane)), act_conv_read=act_conv_read,
        topk_lanes=topk_lanes, act_lanes=act_lanes, act_conv_words=act_conv_words)
    # Banks for any job of the step, whatever its rows keep: a row takes whole words.
    lanes = config.sparse_port_lanes
    return config.replace(pe_bank_entries=lanes * golden_pe.bank_words_bound(
        rows, depth, pe_rows, lanes))


def make_operands(spec, batch, width, seed):
    """Weights, input and output gradient of the step: random full-range integers, with some
    zeros (so top-K ties at 0 occur)."""
    rng = np.random.default_rng(seed)
    lo, hi = numerics.operand_range(width)

    def draw(shape):
        x = rng.integers(lo, hi + 1, size=shape)
        x[rng.random(shape) < 0.2] = 0
        return x.astype(np.int64)

    if spec.kind == "linear":
        return (draw((spec.cout, spec.cin)), draw((batch, spec.cin)),
                draw((batch, spec.cout)))
    return (draw((spec.cout, spec.cin, spec.kernel, spec.kernel)),
            draw((batch, spec.cin, spec.size, spec.size)),
            draw((batch, spec.cout, spec.out_size, spec.out_size)))


def golden_step(spec, w, x, dy, density, width):
    """golden's SWAT step with the exact integer product: ``(y, dx, dw)`` as int64."""
    def exact(a, b):
        return numerics.gemm(np.rint(a).astype(np.int64), np.rint(b).astype(np.int64),
                             width).astype(np.float64)

    if spec.kind == "linear":
        layer = SwatLinear(w.astype(float), density=density, gemm=exact)
    else:
        layer = SwatConv2d(w.astype(float), stride=spec.stride, padding=spec.padding,
                           density=density, gemm=exact)
    y = layer.forward(x.astype(float))
    dx = layer.backward(dy.astype(float))
    return (np.rint(y).astype(np.int64), np.rint(dx).astype(np.int64),
            np.rint(layer.grad_weight).astype(np.int64))


async def _tiled_gemm(drv, s, d, *, slot):
    """``topk(s) @ d`` on the array in jobs the configuration allows, sent back to back (each
    job's rows load while the one before computes, longest first); ``(product, cycles)``, the
    cycles from the first job's command to the last one's reply."""
    cfg = drv.config
    rows, depth = s.shape
    n = d.shape[1]
    out = np.zeros((rows, n), dtype=np.int64)
    col_step = cfg.pe_max_tiles * cfg.pe_cols
    jobs = []
    for r0 in range(0, rows, cfg.pe_max_rows):
        for k0 in range(0, depth, cfg.tile_depth):
            for c0 in range(0, n, col_step):
                s_tile = s[r0:r0 + cfg.pe_max_rows, k0:k0 + cfg.tile_depth]
                d_tile = d[k0:k0 + cfg.tile_depth, c0:c0 + col_step]
                jobs.append((r0, c0, s_tile.shape[0], d_tile.shape[1],
                             drv.send_gemm(s_tile, d_tile, slot=slot,
                                           longest_first=True)))
    for r0, c0, job_rows, job_cols, product in jobs:
        reply, got = await drv.finish(product)
        if reply["error"]:
            raise RuntimeError(f"GEMM job failed: {reply}")
        out[r0:r0 + job_rows, c0:c0 + job_cols] += drv.results_matrix(got, job_rows, job_cols)
    return out, drv.span(jobs[0][-1], jobs[-1][-1])


async def run_step_on_rtl(drv, spec, w, x, dy, density):
    """The step through the host interface; ``(y, dx, dw, phases)`` with the cycles per phase
    and the activation buffer's stored bits."""
    batch = x.shape[0]
    phases = {}
    w_matrix = w.reshape(spec.cout, -1)
    k_w = topk.topk_k(w.size, density)
    k_x = topk.topk_k(x.size, density)
    reply = await drv.threshold(0, w, k_w)
    phases["weight threshold"] = reply["cycles"]
    reply = await drv.threshold(1, x, k_x)
    phases["activation threshold"] = reply["cycles"]
    if spec.kind == "linear":
        cols = x
        # Saved feature-major (the layout the PE array's outputs come in), so the weight
        # gradient reads it row by row.
        reply = await drv.save_act(1, 0, cols.T)
    else:
        # The forward's dense operand is im2col(X) from the host; X~ is saved once, as
        # feature maps, and the weight gradient's im2col rows are built on read.
        # Without the conv read the driver saves im2col(X~) feature-major instead.
        cols = im2col(x, spec.kernel, spec.stride, spec.padding)
        reply = await drv.save_feature_maps(1, 0, x, kernel=spec.kernel, stride=spec.stride,
                                            padding=spec.padding)
    if reply["error"]:
        raise RuntimeError(f"saving the activations failed: {reply}")
    phases["save activations"] = reply["cycles"]
    stored_bits = reply["stored_bits"]

    y_t, phases["forward"] = await _tiled_gemm(drv, w_matrix, cols.T, slot=0)
    dy_matrix = dy if spec.kind == "linear" else dy.transpose(0, 2, 3, 1).reshape(-1, spec.cout)
    dcols_t, phases["input gradient"] = await _tiled_gemm(drv, w_matrix.T, dy_matrix.T, slot=0)
    if spec.kind == "linear":
        reply, got = await drv.gemm_saved(0, spec.features, dy_matrix, feature_major=True)
    else:
        reply, got = await drv.gemm_saved_conv(0, dy_matrix, kernel=spec.kernel,
                                               stride=spec.stride, padding=spec.padding)
    if reply["error"]:
        raise RuntimeError(f"the weight gradient failed: {reply}")
    phases["weight gradient"] = reply["cycles"]
    dw_t = drv.results_matrix(got, spec.features, spec.cout)
    await drv.free(0)

    if spec.kind == "linear":
        y, dx = y_t.T, dcols_t.T
    else:
        y = y_t.T.reshape(batch, spec.out_size, spec.out_size, spec.cout).transpose(0, 3, 1, 2)
        dx = np.rint(col2im(dcols_t.T.astype(float), x.shape, spec.kernel, spec.stride,
                            spec.padding)).astype(np.int64)
    dw = dw_t.T.reshape(w.shape)
    return y, dx, dw, {"cycles": phases, "stored_bits": int(stored_bits),
                       "dense_bits": int(x.size * drv.config.width)}


def _job_tiles(config, rows, depth, n):
    """The jobs :func:`_tiled_gemm` runs: ``(row slice, reduction slice, dense tiles)``."""
    col_step = config.pe_max_tiles * config.pe_cols
    for r0 in range(0, rows, config.pe_max_rows):
        for k0 in range(0, depth, config.tile_depth):
            for c0 in range(0, n, col_step):
                yield (slice(r0, r0 + config.pe_max_rows), slice(k0, k0 + config.tile_depth),
                       -(-min(col_step, n - c0) // config.pe_cols))


def _longest_first(mask):
    """A job's keep mask with its rows in the order :func:`_tiled_gemm` sends them."""
    return mask[golden_pe.longest_first(mask.sum(axis=1))]


def predict_step(config, spec, w, x, dy, density):
    """The cycles of each phase of :func:`run_step_on_rtl`, from the cycle model
    (:mod:`golden.perf_model`), for the same operands and the same jobs. The first threshold
    follows reset, so it also waits for the selector's histogram clear."""
    from golden import perf_model

    batch = x.shape[0]
    w_matrix = w.reshape(spec.cout, -1)
    # What the selector sends: the kept elements that are not zero.
    w_mask = topk.sent_mask(w_matrix, topk.apply_threshold(w_matrix,
                                                           topk.topk_threshold(w, density)))
    x_mask = topk.sent_mask(x, topk.apply_threshold(x, topk.topk_threshold(x, density)))
    positions = spec.positions(batch)
    # What the save streams, in its order: a linear layer's X feature-major, a conv layer's
    # planes in (channel, image) order, or its im2col matrix feature-major.
    if spec.kind == "linear":
        saved_sent = x_mask.T
    elif config.act_conv_read:
        saved_sent = x_mask.transpose(1, 0, 2, 3)
    else:
        cols_t = im2col(x, spec.kernel, spec.stride, spec.padding).T
        saved_sent = topk.sent_mask(cols_t, topk.apply_threshold(
            cols_t, topk.topk_threshold(x, density)))
    phases = {
        "weight threshold": perf_model.threshold_cycles(config, w.size, after_reset=True),
        "activation threshold": perf_model.threshold_cycles(config, x.size),
        "save activations": perf_model.save_act_cycles(config, saved_sent.size, saved_sent),
    }
    for phase, mask in (("forward", w_mask), ("input gradient", w_mask.T)):
        phases[phase] = perf_model.product_sequence(config, [
            ("gemm", _longest_first(mask[rows, red]), tiles, False)
            for rows, red, tiles in _job_tiles(config, *mask.shape, positions)])[-1]
    tiles = -(-spec.cout // config.pe_cols)
    if spec.kind == "linear":
        phases["weight gradient"] = perf_model.gemm_saved_cycles(config, x_mask.T, tiles)
    elif not config.act_conv_read:
        # The saved im2col matrix, read by rows (what the selector sent of it).
        cols_t = im2col(x, spec.kernel, spec.stride, spec.padding).T
        saved = topk.sent_mask(cols_t, topk.apply_threshold(cols_t,
                                                            topk.topk_threshold(x, density)))
        phases["weight gradient"] = perf_model.gemm_saved_cycles(config, saved, tiles)
    else:
        keep = im2col(x_mask.astype(np.int64), spec.kernel, spec.stride,
                      spec.padding).T.astype(bool)
        phases["weight gradient"] = perf_model.gemm_saved_cycles(
            config, keep, tiles, scan=perf_model.act_conv_read(
                config, x_mask, kernel=spec.kernel, stride=spec.stride, padding=spec.padding))
    return phases


def compare(golden, rtl):
    """Names of the outputs that differ, with the first differing position."""
    problems = []
    for name, want, got in zip(("output", "input gradient", "weight gradient"), golden, rtl):
        if want.shape != got.shape:
            problems.append(f"{name}: shape {got.shape}, not {want.shape}")
        elif not np.array_equal(want, got):
            where = tuple(int(i) for i in np.argwhere(want != got)[0])
            problems.append(f"{name}: {int((want != got).sum())} values differ, first at "
                            f"{where}: {int(got[where])}, not {int(want[where])}")
    return problems


def main(argv=None):
    parser = OneLineParser(prog="python -m sim.swat_step", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("--pe", default="4x4", help="PE array size RxC (default: 4x4)")
    parser.add_argument("--layer", required=True,
                        help="linear:OUTxIN or conv:CINxCOUTxKxSIZE")
    parser.add_argument("--stride", type=int, default=None,
                        help="a conv layer's stride, 1 to K (default: 1)")
    parser.add_argument("--padding", type=int, default=None,
                        help="a conv layer's padding, 0 to K-1 (default: K//2)")
    parser.add_argument("--batch", type=int, default=4, help="batch size (default: 4)")
    parser.add_argument("--density", type=float, default=0.2,
                        help="SWAT density of weights and activations (default: 0.2)")
    parser.add_argument("--width", type=int, default=8, help="operand width (default: 8)")
    parser.add_argument("--tile-depth", type=int, default=None,
                        help="the array's tile depth; smaller than a reduction, the driver "
                             "splits it into jobs (default: the longest reduction)")
    parser.add_argument("--act-conv-read", type=int, default=1,
                        help="1: a conv layer's input is saved as feature maps and its weight "
                             "gradient's rows built on read; 0: an accelerator without the conv "
                             "read, which saves the im2col matrix (default: 1)")
    parser.add_argument("--topk-lanes", type=int, default=0,
                        help="elements per cycle of the top-K selector (default: 0, derived "
                             "from the array)")
    parser.add_argument("--act-lanes", type=int, default=0,
                        help="values per word and kept elements per read beat of the "
                             "activation buffer (default: 0, the selector's lanes up to 4)")
    parser.add_argument("--act-conv-words", type=int, default=0,
                        help="bitmap words the activation buffer's conv read scans a cycle, 1 "
                             "or 2 (default: 0, derived from the array: 2 from 256 PEs on)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    parser.add_argument("--sim", choices=("verilator", "icarus"), default="verilator",
                        help="simulator (default: verilator)")
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="also write the phases' cycles and model, stored and dense bits, "
                             "and whether every output matched, to FILE")
    args = parser.parse_args(argv)
    try:
        rows, cols = parse_pe(args.pe)
        spec = parse_layer(args.layer, args.stride, args.padding)
        if not 1 <= args.batch <= 64:
            raise ValueError(f"--batch must be between 1 and 64, not {args.batch}")
        if not 0.0 <= args.density <= 1.0:
            raise ValueError(f"--density must be between 0 and 1, not {args.density}")
        config = step_config(rows, cols, args.width, spec, args.batch, args.tile_depth,
                             args.act_conv_read, args.topk_lanes, args.act_lanes,
                             args.act_conv_words)
        from hw.top import check_config

        check_config(config)
        if args.json is not None:
            check_output_file(args.json, "--json")
    except ConfigError as e:
        parser.error(e.naming_flag({"pe_rows": "--pe", "pe_cols": "--pe", "width": "--width",
                                    "tile_depth": "--tile-depth",
                                    "act_conv_read": "--act-conv-read",
                                    "topk_lanes": "--topk-lanes",
                                    "act_lanes": "--act-lanes",
                                    "act_conv_words": "--act-conv-words"}))
    except ValueError as e:
        parser.error(str(e))
    except OutputPathError as e:
        print(f"sim.swat_step: error: {e}", file=sys.stderr)
        return e.status
    from hw.top import SwatAccel
    from rtl_gen.progress import Progress
    from rtl_gen.verilog import to_verilog

    from rtl_gen.cache import cache_dir

    from .runner import SimulationFailed, run_cocotb, simulator_missing

    reason = simulator_missing(args.sim)
    if reason:
        print(f"sim.swat_step: error: {reason}", file=sys.stderr)
        return 2
    out = cache_dir("swat_step") / f"step_{os.getpid()}.json"
    if out.exists():
        out.unlink()
    params = {"config": config.to_dict(), "layer": spec.to_dict(), "batch": args.batch,
              "density": args.density, "seed": args.seed, "out": str(out)}
    try:
        with Progress("sim.swat_step", every=15.0) as progress:
            progress.step(f"generating the Verilog of the {config.pe} accelerator")
            verilog = to_verilog(SwatAccel(config), "swat_accel")
            # The build is cached by the Verilog text, so only a new configuration waits.
            progress.step(f"building the simulation with {args.sim} (minutes for a new "
                          "configuration) and running the step")
            run_cocotb(verilog, toplevel="swat_accel", test_module="sim.testbenches.swat_step",
                       simulator=args.sim, params=params, seed=args.seed)
    except SimulationFailed as e:
        if not out.exists():
            print(f"sim.swat_step: simulation failed:\n{e}", file=sys.stderr)
            return 1
    report = json.loads(out.read_text())
    if args.json is not None:
        phases = {name: {"cycles": cycles, "model": report["model"][name]}
                  for name, cycles in report["cycles"].items()}
        with open(args.json, "w") as f:
            json.dump({"layer": spec.to_dict(), "batch": args.batch, "density": args.density,
                       "config": config.to_dict(), "simulator": args.sim, "phases": phases,
                       "stored_bits": report["stored_bits"],
                       "dense_bits": report["dense_bits"],
                       "match": not report["problems"]}, f, indent=1, sort_keys=True)
            f.write("\n")
    print(f"SWAT step of {args.layer}, batch {args.batch}, density {args.density}, "
          f"{config.pe} array, {config.width}-bit, on {args.sim}")
    model = report["model"]
    print("| phase | cycles | cycle model |\n|---|---|---|")
    for phase, cycles in report["cycles"].items():
        print(f"| {phase} | {cycles} | {model[phase]} |")
    print(f"| total | {sum(report['cycles'].values())} | {sum(model.values())} |")
    print(f"activation buffer: {report['stored_bits']} bits stored, "
          f"{report['stored_bits'] / report['dense_bits']:.1%} of dense "
          f"({report['dense_bits']} bits)")
    if report["problems"]:
        print("MISMATCH against golden:\n  " + "\n  ".join(report["problems"]))
        return 1
    print("output, input gradient and weight gradient match golden bit for bit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
