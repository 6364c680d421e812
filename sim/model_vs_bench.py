"""``python -m sim.model_vs_bench``: the PE array's cycle model against the measured benchmark.

Rebuilds every job of ``benchmarks/pe_array.json`` (``sim.bench.make_jobs`` is deterministic;
seed 1, longest-first order, automatic tiles), predicts its cycles with
:func:`golden.perf_model.pe_array_job_cycles` and prints the largest errors and how many jobs
are within 2 %. No simulation runs.
"""

import json
import sys

from golden.cli import OneLineParser
from golden.perf_model import pe_array_job_cycles

from .bench import DEFAULT_LAYERS, SPARSITIES, _entries, bench_config, make_jobs


def _read_measured(parser, path):
    try:
        with open(path) as f:
            rows = json.load(f)
        return {(r["pe"], r["layer"], r["gemm"], r["sparsity"]): r for r in rows}
    except OSError as e:
        parser.exit(1, f"error: cannot read {path!r}: {e.strerror or e}\n")
    except (ValueError, KeyError, TypeError) as e:
        parser.exit(1, f"error: {path!r} is not a table written by python -m sim.bench --json "
                       f"({type(e).__name__}: {e})\n")


def main(argv=None):
    parser = OneLineParser(
        prog="python -m sim.model_vs_bench",
        description="The PE array's cycle model against the measured benchmark: rebuilds every "
                    "job of the benchmark table, predicts its cycles with the cycle model and "
                    "prints the largest errors and how many jobs are within 2 %. No "
                    "simulation runs.")
    parser.add_argument("table", nargs="?", default="benchmarks/pe_array.json",
                        help="the JSON table of python -m sim.bench (default: "
                             "benchmarks/pe_array.json)")
    args = parser.parse_args(argv)
    measured = _read_measured(parser, args.table)
    errors = []
    for size in sorted({int(pe.split("x")[0]) for pe, *_ in measured}):
        jobs = make_jobs(size, size, list(DEFAULT_LAYERS), list(SPARSITIES), "auto", 1)
        config = bench_config(size, size, jobs)
        for job in jobs:
            depth, tiles = job["s"].shape[1], -(-job["d"].shape[1] // size)
            if job["sparsity"] is None:
                predicted = pe_array_job_cycles(config, [depth] * job["s"].shape[0], depth,
                                                tiles, dense=True)
                actual = measured[(config.pe, job["layer"], job["gemm"],
                                   SPARSITIES[0])]["dense_cycles"]
            else:
                nnz = _entries(job["s"], job["mask"])[job["order"]]
                predicted = pe_array_job_cycles(config, nnz, depth, tiles)
                actual = measured[(config.pe, job["layer"], job["gemm"],
                                   job["sparsity"])]["sparse_cycles"]
            errors.append((abs(predicted - actual) / actual, config.pe, job["layer"],
                           job["gemm"], job["sparsity"], predicted, actual))
    errors.sort(key=lambda e: e[0], reverse=True)
    print("| error | pe | layer | gemm | sparsity | predicted | measured |")
    print("|---|---|---|---|---|---|---|")
    for e in errors[:8]:
        print(f"| {e[0]:.2%} | " + " | ".join(str(v) for v in e[1:]) + " |")
    print(f"within 2 %: {sum(e[0] <= 0.02 for e in errors)} of {len(errors)} jobs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
