"""``python -m rtl_gen.sweep``: a design-space sweep of array sizes and operand widths on one
synthesis target.

Every point is generated and put through ``--synth`` (without the per-block syntheses), as one
Dask task (:mod:`rtl_gen.points`): ``--workers N`` runs them on a local cluster of N processes,
``--scheduler ADDRESS`` on the workers of an existing scheduler. Each finished point's folder
(Verilog, manifest, report and logs) is written to ``--out`` as it finishes, with
``sweep.json`` (every point's report), ``sweep.md`` (a table) and ``sweep.png`` (LUTs, DSPs,
BRAMs and Fmax against the PE count). Points already finished with the same configuration,
target, tools and code come from the cache without running. Every other configuration flag of
``python -m rtl_gen`` applies to every point.
"""

import dataclasses
import json
import os
import sys

from golden.config import AccelConfig, ConfigError, parse_pe
from golden.outputs import OutputPathError, check_output_folder

from .cli import (build_parser, check_synth_args, config_from_args, freq_mhz,
                  router1_seconds)
from .points import SchedulerError, cache_point, cached_point, point_key, run_points
from .targets import TARGETS

__all__ = ["main", "format_table", "plot"]

# Configuration fields -> the flag that sets them here: each point's size and width come from
# --pes and --widths.
_SWEEP_FLAGS = {**{field.name: "--" + field.name.replace("_", "-")
                   for field in dataclasses.fields(AccelConfig)},
                "pe_rows": "--pes", "pe_cols": "--pes", "width": "--widths"}


def format_table(points):
    lines = ["| pe | width | PEs | LUTs | FFs | DSPs | BRAMs | Fmax MHz | target MHz | router |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for p in points:
        r = p["report"]
        lines.append(f"| {p['pe']} | {p['width']} | {p['pes']} | {r['luts']['used']} | "
                     f"{r['ffs']['used']} | {r['dsps']['used']} | {r['brams']['used']} | "
                     f"{r['fmax_mhz']:.1f} | {r['freq_target_mhz']:g} | "
                     f"{r['router']} |")
    return "\n".join(lines)


def plot(points, path, target):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
    for ax, (key, label) in zip(axes, (("luts", "LUTs"), ("dsps", "DSPs"), ("brams", "BRAMs"),
                                       ("fmax_mhz", "Fmax (MHz)"))):
        for width in sorted({p["width"] for p in points}):
            sel = sorted((p for p in points if p["width"] == width), key=lambda p: p["pes"])
            ys = [p["report"][key] if key == "fmax_mhz" else p["report"][key]["used"]
                  for p in sel]
            ax.plot([p["pes"] for p in sel], ys, marker="o", label=f"{width}-bit")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("PEs")
        ax.set_title(label)
        ax.grid(True, alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"swat-accel on {target}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_results(points, out, target, freq):
    """Write ``sweep.json``, ``sweep.md`` and (with points) ``sweep.png`` in ``out``; return
    the Markdown table."""
    with open(os.path.join(out, "sweep.json"), "w") as f:
        json.dump(points, f, indent=1, sort_keys=True)
        f.write("\n")
    table = format_table(points)
    with open(os.path.join(out, "sweep.md"), "w") as f:
        f.write(f"Sweep on {target} at {freq:g} MHz\n\n{table}\n")
    if points:
        plot(points, os.path.join(out, "sweep.png"), target)
    return table


def main(argv=None):
    parser = build_parser(synth=False)
    parser.prog = "python -m rtl_gen.sweep"
    parser.description = (
        "A design-space sweep of array sizes and operand widths on one synthesis target: every "
        "point of --pes x --widths is generated and placed and routed. --pes and --widths "
        "replace --pe and --width; every other configuration flag applies to every point.")
    parser.add_argument("--target", default="ecp5-85f",
                        help=f"synthesis target, one of {', '.join(TARGETS)} (default: ecp5-85f)")
    parser.add_argument("--pes", default="4x4,8x8,16x16",
                        help="array sizes, comma-separated (default: 4x4,8x8,16x16)")
    parser.add_argument("--widths", default="8,16",
                        help="operand widths, comma-separated (default: 8,16)")
    parser.add_argument("--workers", type=int, default=None,
                        help="points run at once on a local Dask cluster of this many worker "
                             "processes (default: 1)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run the points on the workers of this Dask scheduler (for example "
                             "tcp://HOST:8786) instead of a local cluster")
    args = parser.parse_args(argv)
    if args.target not in TARGETS:
        parser.error(f"--target must be one of {', '.join(TARGETS)}, not {args.target!r}")
    try:
        pes = [parse_pe(p, "--pes") for p in args.pes.split(",") if p.strip()]
        widths = [int(w) for w in args.widths.split(",") if w.strip()]
        configs = []
        for rows, cols in pes:
            for width in widths:
                args.pe, args.width = f"{rows}x{cols}", width
                config = config_from_args(args)
                from hw.top import check_config

                check_config(config)
                configs.append(config)
    except ConfigError as e:
        parser.error(e.naming_flag(_SWEEP_FLAGS))
    except ValueError:
        parser.error(f"--widths must be comma-separated integers, not {args.widths!r}")
    check_synth_args(parser, args)
    if args.workers is not None and args.scheduler is not None:
        parser.error("--workers starts a local cluster; with --scheduler, the scheduler's "
                     "workers run the points")
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers must be at least 1, not {args.workers}")
    freq = freq_mhz(args, args.target)
    out = args.out if args.out is not None else os.path.join("rtl_out", f"sweep_{args.target}")
    try:
        check_output_folder(out, "--out")
    except OutputPathError as e:
        parser.exit(e.status, f"error: {e}\n")
    configs_by_name = {_point_name(config): config for config in configs}
    finished, tasks, keys = {}, [], {}  # finished points by name

    def results():
        """The finished points in --pes x --widths order."""
        return [finished[name] for name in configs_by_name if name in finished]

    for name, config in configs_by_name.items():
        keys[name] = point_key(config, args.target, freq, router1_seconds(args))
        result = cached_point(keys[name])
        if result is None:
            tasks.append((name, (config.to_dict(), args.target, freq, router1_seconds(args))))
        else:
            _write_point(out, name, result)
            finished[name] = _point(config, result["report"])
            print(f"  {name}: cached ({_figures(result['report'])})", flush=True)

    def on_done(name, result):
        if "error" in result:
            print(f"  {name}: {result['error']}", flush=True)
            return
        cache_point(keys[name], result)
        _write_point(out, name, result)
        finished[name] = _point(configs_by_name[name], result["report"])
        print(f"  {name}: {_figures(result['report'])}, {result['report']['seconds']:.0f} s",
              flush=True)
        # Written after every point, so that a long sweep cut short keeps what it measured.
        write_results(results(), out, args.target, freq)

    if tasks:
        where = args.scheduler or f"a local cluster of {args.workers or 1} worker process" + \
            ("es" if (args.workers or 1) > 1 else "")
        print(f"{len(tasks)} of {len(configs)} points to run on {args.target}, on {where}",
              flush=True)
        try:
            run_points(tasks, workers=args.workers or 1, scheduler=args.scheduler,
                       on_done=on_done, status=lambda text: print(text, flush=True))
        except SchedulerError as e:
            parser.exit(2, f"error: {e}\n")
    points = results()
    table = write_results(points, out, args.target, freq)
    print(table)
    print(f"written: {out}/sweep.json, sweep.md" + (", sweep.png" if points else ""))
    return 0 if len(points) == len(configs) else 1


def _point_name(config):
    return f"{config.pe}_w{config.width}"


def _point(config, report):
    """A point of ``sweep.json``: the report without its wall time, which depends on where the
    point ran."""
    return {"pe": config.pe, "width": config.width, "pes": config.pe_rows * config.pe_cols,
            "report": {k: v for k, v in report.items() if k != "seconds"}}


def _figures(report):
    return (f"{report['luts']['used']} LUTs, {report['dsps']['used']} DSPs, "
            f"{report['brams']['used']} BRAMs, Fmax {report['fmax_mhz']:.1f} MHz")


def _write_point(out, name, result):
    for relative, text in result["files"].items():
        path = os.path.join(out, name, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

if __name__ == "__main__":
    sys.exit(main())
