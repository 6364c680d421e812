"""Benchmark of generation time: ``python -m sim.bench_generate``.

Runs ``python -m rtl_gen --pe RxC`` as a user would (a fresh process, a new output folder each
time, nothing cached) a few times per array size and prints the median wall-clock time, the
peak memory of the generator process and the size of the Verilog, with the processor cores
this machine gives the process.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from golden.cli import OneLineParser
from golden.outputs import OutputPathError, check_output_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_once(pe, workdir):
    """``(seconds, peak KiB, Verilog bytes)`` of one cold ``python -m rtl_gen --pe pe``."""
    out = tempfile.mkdtemp(dir=workdir)
    env = dict(os.environ, PYTHONPATH=ROOT)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "rtl_gen", "--pe", pe, "--out", out],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"error: rtl_gen --pe {pe} failed: {proc.stderr.read().decode()}")
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out) if f.endswith(".v"))
    return seconds, usage.ru_maxrss, size


def main(argv=None):
    parser = OneLineParser(
        prog="python -m sim.bench_generate",
        description="Benchmark of generation time: runs python -m rtl_gen --pe RxC as a user "
                    "would (a fresh process, a new output folder each time) a few times per "
                    "array size and prints the median wall-clock time, the peak memory and "
                    "the size of the Verilog.")
    parser.add_argument("--pes", default="16x16,32x32,64x64",
                        help="comma-separated array sizes (default 16x16,32x32,64x64)")
    parser.add_argument("--runs", type=int, default=3, help="runs per size (default 3)")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the figures to FILE (with the command and core count)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, not {args.runs}")
    if args.json is not None:
        try:
            check_output_file(args.json, "--json")
        except OutputPathError as e:
            parser.exit(e.status, f"error: {e}\n")
    pes = [p.strip() for p in args.pes.split(",") if p.strip()]
    for pe in pes:
        rows, _, cols = pe.partition("x")
        if not (rows.isdigit() and cols.isdigit() and int(rows) > 0 and int(cols) > 0):
            parser.error(f"--pes must be sizes like 16x16, not {pe!r}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"python -m rtl_gen, cold runs ({args.runs} per size, {cores} cores)")
    print("| array | PEs | median s | runs s | peak MiB | Verilog MiB |")
    print("|---|---|---|---|---|---|")
    table = []
    with tempfile.TemporaryDirectory() as workdir:
        for pe in pes:
            runs = [run_once(pe, workdir) for _ in range(args.runs)]
            seconds = [r[0] for r in runs]
            rows, cols = map(int, pe.split("x"))
            table.append({"pe": pe, "pes": rows * cols,
                          "median_seconds": round(statistics.median(seconds), 2),
                          "seconds": [round(s, 2) for s in seconds],
                          "peak_mib": round(max(r[1] for r in runs) / 1024),
                          "verilog_mib": round(runs[0][2] / 2**20, 2)})
            row = table[-1]
            print(f"| {pe} | {row['pes']} | {row['median_seconds']:.1f} | "
                  f"{', '.join(f'{s:.1f}' for s in seconds)} | {row['peak_mib']} | "
                  f"{row['verilog_mib']:.1f} |", flush=True)
    if args.json is not None:
        command = "python -m sim.bench_generate " + " ".join(argv if argv is not None
                                                              else sys.argv[1:])
        with open(args.json, "w") as f:
            json.dump({"command": command.strip(), "cores": cores, "runs": args.runs,
                       "rows": table}, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
