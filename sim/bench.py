"""Benchmark of the sparse PE array: SWAT's three products of ResNet-18 layers on the RTL.

``python -m sim.bench`` runs each product's tile under Verilator, in the array's dense mode (the
baseline) and in its sparse mode at each sparsity, and prints a table; ``--json FILE`` writes
the same rows as JSON, with the keys ``pe``, ``layer``, ``gemm``, ``sparsity``,
``dense_cycles``, ``sparse_cycles``, ``speedup``, ``ideal_speedup`` and ``bound``.

* Operands: golden's synthetic tensors (:mod:`golden.synthetic`), sparsified by golden's exact
  per-tensor top-K at density ``1 - sparsity``.
* A tile keeps all of the layer's sparse rows, ``tile_depth`` (256) evenly spaced positions of
  the reduction (all of it if shorter) and a number of dense column tiles (``pe_cols`` each):
  ``--tiles N``, or by default (``auto``) enough that the job's fixed costs (the first dense
  tile's load, up to ``depth`` beats, and the sparse load, about one beat a row) are at most 1/16 of
  its compute at sparsity 0.9, within 4 to 64 tiles. The layer's real column count is far
  larger (batch x positions, or output channels), so more tiles only amortise more.
* Cycles count everything, from the job's command to its last result: the sparse load, the
  dense tiles' load through the dense port (``pe_dense_lanes`` values a beat: two whole rows
  from 16 PE rows at the defaults), the compute and the
  result drain. Loading overlaps compute.
* Rows are sent longest first (``--order stream`` keeps the layer's order); the array deals
  each to its least-loaded PE row.
* ``ideal_speedup`` is dense work over sparse work (entries, an empty row counting one).
  ``bound`` is ``load`` where the ports' beats (sparse, dense or results) outnumber the busiest
  PE row's cycles, else ``compute``.
"""

import argparse
import json
import math
import sys
import time

import numpy as np

from golden import networks, pe_array as golden_pe, synthetic
from golden.cli import OneLineParser
from golden.config import AccelConfig, ConfigError, parse_pe
from golden.outputs import OutputPathError, check_output_file

__all__ = ["make_jobs", "bench_config", "main"]

DEFAULT_LAYERS = ("conv1", "layer1.0.conv1", "layer2.0.conv2", "layer3.0.shortcut",
                  "layer3.0.conv2", "layer4.0.conv2", "fc")
SPARSITIES = (0.5, 0.8, 0.9)
TILE_DEPTH = 256
WIDTH = 8


def _layers(names):
    table = {layer.name: layer for layer in networks.resnet18_cifar()}
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(f"unknown ResNet-18 layer {unknown[0]!r}; choose from "
                         f"{', '.join(table)}")
    return [table[n] for n in names]


def _entries(s, mask):
    """Entries per row the driver sends in sparse mode (kept non-zeros)."""
    return (np.asarray(mask, bool) & (np.asarray(s) != 0)).sum(axis=1)


def auto_tiles(rows, depth, pe_rows):
    """Dense column tiles that make a job's fixed costs at most 1/16 of its compute at
    sparsity 0.9 (4 to 64)."""
    fixed = depth + rows
    compute_per_tile = rows * depth / (10 * pe_rows)
    return max(4, min(64, math.ceil(16 * fixed / compute_per_tile)))


def make_jobs(pe_rows, pe_cols, layer_names, sparsities, tiles, seed, order="longest-first"):
    """Every job of the benchmark, deterministically: per (layer, gemm) one dense-mode job
    and one sparse job per sparsity, as dicts. ``tiles`` is a count or ``"auto"``."""
    jobs = []
    for li, layer in enumerate(_layers(layer_names)):
        for gi, gemm in enumerate(networks.GEMMS):
            rows, reduction, _ = layer.gemm(gemm, TILE_DEPTH)  # a batch long enough
            job_tiles = auto_tiles(rows, min(reduction, TILE_DEPTH), pe_rows) \
                if tiles == "auto" else tiles
            for sparsity in (None, *sparsities):
                density = 1.0 if sparsity is None else round(1.0 - sparsity, 6)
                rng = np.random.default_rng([seed, li, gi])  # same tensors at every density
                s, mask, d = synthetic.gemm_tile(rng, layer, gemm, density, depth=TILE_DEPTH,
                                                 columns=job_tiles * pe_cols, width=WIDTH)
                rows = list(range(s.shape[0]))
                if sparsity is not None and order == "longest-first":
                    rows = golden_pe.longest_first(_entries(s, mask))
                jobs.append({"layer": layer.name, "gemm": gemm, "sparsity": sparsity,
                             "s": s, "mask": mask, "d": d, "order": rows})
    return jobs


def _words(nnz, lanes):
    return max(1, -(-int(nnz) // lanes))


def bench_config(pe_rows, pe_cols, jobs):
    """The configuration: default parameters, with banks and limits just large enough for
    every job."""
    lanes = AccelConfig(pe_rows=pe_rows, pe_cols=pe_cols).sparse_port_lanes
    most_words = 1
    for job in jobs:
        if job["sparsity"] is None:
            nnz = [job["s"].shape[1]] * job["s"].shape[0]
        else:
            nnz = list(_entries(job["s"], job["mask"])[job["order"]])
        banks, _ = golden_pe.assign_rows([golden_pe.row_cost(n) for n in nnz], pe_rows)
        words = [0] * pe_rows
        for bank, n in zip(banks, nnz):
            words[bank] += _words(n, lanes)
        most_words = max(most_words, max(words))
    return AccelConfig(pe_rows=pe_rows, pe_cols=pe_cols, width=WIDTH, tile_depth=TILE_DEPTH,
                       pe_bank_entries=most_words * lanes,
                       pe_max_rows=max(job["s"].shape[0] for job in jobs),
                       pe_max_tiles=max(-(-job["d"].shape[1] // pe_cols) for job in jobs))


def _analyse(config, jobs, measured):
    """Table rows from the jobs and the testbench's measurements."""
    R, C, L = config.pe_rows, config.pe_cols, config.sparse_port_lanes
    by_key = {}
    for job, m in zip(jobs, measured):
        by_key[(job["layer"], job["gemm"], job["sparsity"])] = (job, m)
    rows = []
    for (layer, gemm, sparsity), (job, m) in by_key.items():
        if sparsity is None:
            continue
        dense_job, dense_m = by_key[(layer, gemm, None)]
        m_rows, depth = job["s"].shape
        tiles = -(-job["d"].shape[1] // C)
        nnz = _entries(job["s"], job["mask"])[job["order"]]
        costs = [golden_pe.row_cost(n) for n in nnz]
        _, loads = golden_pe.assign_rows(costs, R)
        sparse_beats = sum(_words(n, L) for n in nnz)
        port_beats = max(sparse_beats, config.dense_tile_beats(depth) * tiles,
                         -(-m_rows * tiles // config.result_port_lanes))
        compute = max(loads) * tiles
        rows.append({
            "pe": config.pe, "layer": layer, "gemm": gemm, "sparsity": sparsity,
            "rows": m_rows, "depth": depth, "columns": int(job["d"].shape[1]),
            "dense_cycles": dense_m["cycles"], "sparse_cycles": m["cycles"],
            "speedup": round(dense_m["cycles"] / m["cycles"], 3),
            "ideal_speedup": round(m_rows * depth / sum(costs), 3),
            "bound": "load" if port_beats > compute else "compute",
            "dense_utilization": round(dense_m["macs"] / (R * C * dense_m["cycles"]), 3),
            "balance": round(sum(costs) / (R * max(loads)), 3),
        })
    return rows


JSON_KEYS = ("pe", "layer", "gemm", "sparsity", "dense_cycles", "sparse_cycles", "speedup",
             "ideal_speedup", "bound")


def format_table(rows):
    head = ("pe", "layer", "gemm", "rows x depth x cols", "sparsity", "dense cyc", "sparse cyc",
            "speedup", "ideal", "balance", "dense util", "bound")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join(str(v) for v in (
            r["pe"], r["layer"], r["gemm"], f"{r['rows']}x{r['depth']}x{r['columns']}",
            r["sparsity"], r["dense_cycles"], r["sparse_cycles"], f"{r['speedup']:.2f}x",
            f"{r['ideal_speedup']:.2f}x", f"{r['balance']:.1%}",
            f"{r['dense_utilization']:.1%}", r["bound"])) + " |")
    return "\n".join(lines)


def run_pe(pe_rows, pe_cols, args, simulator="verilator"):
    """Build and run one array size; return its table rows."""
    from hw.pe_array import SparsePEArray

    from rtl_gen.cache import cache_dir

    from .runner import run_cocotb

    jobs = make_jobs(pe_rows, pe_cols, args.layers, args.sparsity, args.tiles, args.seed,
                     args.order)
    config = bench_config(pe_rows, pe_cols, jobs)
    out = cache_dir("bench") / f"pe_array_{config.pe}_{args.seed}.json"
    params = {"config": config.to_dict(), "layers": list(args.layers),
              "sparsities": list(args.sparsity), "tiles": args.tiles, "seed": args.seed,
              "order": args.order, "out": str(out)}
    run_cocotb(SparsePEArray.from_config(config), toplevel="pe_array",
               test_module="sim.testbenches.bench_pe_array", simulator=simulator, params=params,
               seed=args.seed)
    measured = json.loads(out.read_text())
    return _analyse(config, jobs, measured)


def _floats(text):
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, not {text!r}")
    for v in values:
        if not 0.0 <= v < 1.0:
            raise argparse.ArgumentTypeError(f"a sparsity must be in [0, 1), not {v}")
    return values


def main(argv=None):
    parser = OneLineParser(prog="python -m sim.bench", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pe", default="8x8,16x16",
                        help="array sizes, comma-separated (default: 8x8,16x16)")
    parser.add_argument("--layers", type=lambda t: [n for n in t.split(",") if n],
                        default=list(DEFAULT_LAYERS),
                        help="ResNet-18 layers, comma-separated (default: %(default)s)")
    parser.add_argument("--sparsity", type=_floats, default=list(SPARSITIES),
                        help="sparsities, comma-separated (default: 0.5,0.8,0.9)")
    parser.add_argument("--tiles", default="auto",
                        help="dense column tiles per job, 1 to 64, or auto (default: auto)")
    parser.add_argument("--order", choices=("longest-first", "stream"), default="longest-first",
                        help="order the sparse rows are sent in (default: longest-first)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    parser.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    args = parser.parse_args(argv)
    try:
        args.pe = [parse_pe(p) for p in args.pe.split(",") if p.strip()]
    except ConfigError as e:
        parser.error(str(e))
    if not args.pe:
        parser.error("--pe must name at least one array size")
    if args.tiles != "auto":
        if not args.tiles.isdigit() or not 1 <= int(args.tiles) <= 64:
            parser.error(f"--tiles must be auto or between 1 and 64, not {args.tiles}")
        args.tiles = int(args.tiles)
    try:
        _layers(args.layers)
    except ValueError as e:
        parser.error(str(e))
    if args.json is not None:
        try:
            check_output_file(args.json, "--json")
        except OutputPathError as e:
            parser.exit(e.status, f"error: {e}\n")
    from .runner import simulator_missing

    reason = simulator_missing("verilator")
    if reason:
        print(f"sim.bench: error: {reason}", file=sys.stderr)
        return 2
    rows = []
    for pe_rows, pe_cols in args.pe:
        start = time.monotonic()
        print(f"running {pe_rows}x{pe_cols} ...", file=sys.stderr, flush=True)
        rows += run_pe(pe_rows, pe_cols, args)
        print(f"  {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)
    print(format_table(rows))
    if args.json is not None:
        with open(args.json, "w") as f:
            json.dump([{k: r[k] for k in JSON_KEYS} for r in rows], f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
