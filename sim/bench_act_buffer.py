"""Benchmark of the compressed-activation buffer: ``python -m sim.bench_act_buffer``.

Writes a post-ReLU-like activation matrix, top-K sparsified at 0.5, 0.8 and 0.9, into the RTL
buffer (Verilator by default), reads it back in each order, and prints the stored bits the
buffer reports against dense storage, the bitmap-format bound and the entropy bound, and the
write and read throughput in elements per cycle.
"""

import json
import sys
import tempfile

from golden.cli import OneLineParser
from golden.config import MAX_TOPK_LANES, AccelConfig, ConfigError
from golden.outputs import OutputPathError, check_output_file

from .drivers.act_buffer import buffer_params, build
from .runner import run_cocotb, simulator_missing


def measure(simulator, width, lanes, word_bits, shape, sparsities):
    rows, cols = shape
    config = AccelConfig(width=width, topk_lanes=lanes, act_scan_bits=word_bits)
    params = buffer_params(width=width, lanes=lanes, word_bits=config.act_scan_bits,
                           bitmap_capacity=rows * cols + word_bits,
                           value_capacity=rows * cols + lanes, max_tensors=config.act_tensors,
                           max_rows=rows, max_cols=cols, max_len=config.max_tensor_len)
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        run_cocotb(build(params), toplevel="act_buffer", test_module="sim.testbenches.bench_act_buffer",
                   simulator=simulator, seed=1,
                   params={"buffer": params, "shape": shape, "sparsities": sparsities,
                           "out": out.name})
        return json.load(open(out.name))


def main(argv=None):
    parser = OneLineParser(
        prog="python -m sim.bench_act_buffer",
        description="Benchmark of the compressed-activation buffer: writes a post-ReLU-like "
                    "activation matrix, top-K sparsified at 0.5, 0.8 and 0.9, into the RTL "
                    "buffer, reads it back in each order, and prints the stored bits against "
                    "dense storage, the bitmap-format bound and the entropy bound, and the "
                    "write and read throughput in elements per cycle.")
    parser.add_argument("--rows", type=int, default=64, help="matrix rows (default 64)")
    parser.add_argument("--cols", type=int, default=256, help="matrix columns (default 256)")
    parser.add_argument("--lanes", type=int, default=4,
                        help="write lanes (default 4)")
    parser.add_argument("--scan-bits", type=int, default=AccelConfig().act_scan_bits,
                        help="bitmap word bits (default: the configuration's act_scan_bits)")
    parser.add_argument("--sim", default="verilator", choices=["verilator", "icarus"])
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    for name in ("rows", "cols", "lanes", "scan_bits"):
        if getattr(args, name) < 1:
            parser.exit(2, f"error: --{name.replace('_', '-')} must be at least 1\n")
    if args.lanes > MAX_TOPK_LANES:
        parser.exit(2, f"error: --lanes must be at most {MAX_TOPK_LANES}, not {args.lanes}\n")
    if args.scan_bits < args.lanes:
        parser.exit(2, f"error: --scan-bits must be at least --lanes ({args.lanes}), not "
                       f"{args.scan_bits}\n")
    try:
        AccelConfig(topk_lanes=args.lanes, act_scan_bits=args.scan_bits)
    except ConfigError as e:
        parser.exit(2, "error: " + e.naming_flag({"topk_lanes": "--lanes",
                                                  "act_scan_bits": "--scan-bits"}) + "\n")
    if args.json is not None:
        try:
            check_output_file(args.json, "--json")
        except OutputPathError as e:
            parser.exit(e.status, f"error: {e}\n")
    reason = simulator_missing(args.sim)
    if reason:
        parser.exit(2, f"error: {reason}\n")
    rows = []
    for width in (8, 16):
        rows += measure(args.sim, width, args.lanes, args.scan_bits, (args.rows, args.cols),
                        [0.5, 0.8, 0.9])
    print(f"Activation buffer, {args.rows}x{args.cols} matrix, {args.lanes} lanes, "
          f"{args.scan_bits}-bit bitmap words ({args.sim})")
    print("| width | sparsity | kept | stored bits | vs dense | vs bitmap bound | "
          "vs entropy bound | index-value would be | write el/cycle | row read el/cycle "
          "| column read el/cycle | dense read el/cycle |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        n = r["n"]
        print(f"| {r['width']} | {r['sparsity']} | {r['kept']} | {r['stored_bits']} "
              f"| {100 * r['stored_bits'] / r['format_dense']:.1f} % "
              f"| {r['stored_bits'] / r['format_bitmap']:.3f} x "
              f"| {r['stored_bits'] / r['format_entropy']:.2f} x "
              f"| {100 * r['format_index_value'] / r['format_dense']:.1f} % "
              f"| {n / r['write_cycles']:.2f} | {r['kept'] / r['read_rows_cycles']:.3f} "
              f"| {r['kept'] / r['read_cols_cycles']:.3f} | {n / r['read_dense_cycles']:.3f} |")
    if args.json is not None:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
