"""The results page, generated from the benchmark files: ``python -m sim.results``.

Reads the JSON files the benchmark commands write under ``benchmarks/`` and writes
``docs/results.md``: one section per file, each table with the command, the configuration and
the processor-core count behind it. Nothing on the page is typed by hand, so it cannot drift from
the measurements; ``--check`` exits with status 1 when the page differs from what the files give
(a test runs it).

=============================================  =============================================
file                                           written by
=============================================  =============================================
``benchmarks/generate/generate.json``          ``python -m sim.bench_generate --json FILE``
                                               (optional: its section is left out without it)
``benchmarks/pe_array.json``                   ``python -m sim.bench --json FILE``
``benchmarks/network/network.json``            ``python -m sim.network --out DIR``
``benchmarks/network_lanes4/network.json``     ``python -m sim.network --topk-lanes 4 ...``
``benchmarks/sweep_ecp5-85f/sweep.json``       ``python -m rtl_gen.sweep``
``benchmarks/train/train.json``                ``python -m golden.train --json FILE``
                                               (optional: its section is left out without it)
``benchmarks/synth_blocks/*.json``              ``python -m rtl_gen --synth TARGET
                                               --synth-block BLOCK``'s report (optional)
=============================================  =============================================

Where a file does not record its command or core count, the page takes them from
:data:`PROVENANCE` (the command from the matching ``benchmarks/*/*.md`` or from the writer's
code) or says they are not recorded.
"""

import json
import os
import sys

from golden.cli import OneLineParser
from golden.config import AccelConfig

__all__ = ["PROVENANCE", "render", "main"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "docs", "results.md")
DEFAULT_BENCHMARKS = os.path.join(ROOT, "benchmarks")

GENERATE = "generate/generate.json"
PE_ARRAY = "pe_array.json"
NETWORKS = ("network/network.json", "network_lanes4/network.json")
SWEEP = "sweep_ecp5-85f/sweep.json"
TRAIN = "train/train.json"
SYNTH_BLOCKS = "synth_blocks"

#: What a file does not record about itself: the command that wrote it and the core count.
#: ``cores`` is ``None`` where it was not recorded; cycle counts do not depend on it.
PROVENANCE = {
    PE_ARRAY: {
        "command": "python -m sim.bench --json benchmarks/pe_array.json",
        "note": "Verilator, seed 1 (the default); every row with its balance and utilization is "
                "in [`benchmarks/pe_array.md`](../benchmarks/pe_array.md)",
        "cores": None,
    },
    NETWORKS[0]: {
        "command": "python -m sim.network --out benchmarks/network",
        "note": "cycle model (`golden.perf_model`), seed 1 (the default)",
        "cores": None,
    },
    NETWORKS[1]: {
        "command": "python -m sim.network --topk-lanes 4 --out benchmarks/network_lanes4",
        "note": "cycle model (`golden.perf_model`), seed 1 (the default)",
        "cores": None,
    },
    SWEEP: {
        "command": "python -m rtl_gen.sweep --target ecp5-85f --pes 2x2,4x4,8x8 --widths 8 "
                   "--router1-seconds 0` and `python -m rtl_gen.sweep --target ecp5-85f "
                   "--pes 2x2,4x4 --widths 16 --router1-seconds 0",
        "note": "two runs side by side, their points written together with "
                "`rtl_gen.sweep.write_results`",
        "cores": 2,
    },
    TRAIN: {
        "command": "python -m golden.train --numerics float int16 int8 --grad-rounding nearest "
                   "stochastic --budget uniform erk --seed 0 1 2 3 4 5 6 7 8 9 "
                   "--json benchmarks/train/train.json",
        "note": "NumPy, one process; accuracy does not depend on the core count",
        "cores": 1,
    },
    SYNTH_BLOCKS: {"cores": 2},
}

#: The accuracy goals of the integer numerics: points below float's at most.
NUMERICS_GOALS = {"int16": 0.5, "int8": 1.5}


class ResultsError(Exception):
    """A benchmark file that is missing or cannot be read; the message names the flag."""


def _load(benchmarks, name, required=True):
    path = os.path.join(benchmarks, name)
    if not os.path.exists(path):
        if required:
            raise ResultsError(f"--benchmarks {benchmarks!r}: no {name}")
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ResultsError(f"--benchmarks {benchmarks!r}: cannot read {name}: "
                           f"{str(e).splitlines()[0]}") from None


def _cores(cores):
    if cores is None:
        return "cores: not recorded (cycle counts do not depend on it)"
    return f"cores: {cores}"


def _lanes(config):
    """The selector's lanes a recorded configuration built (``topk_lanes`` 0 derives them)."""
    return config["topk_lanes"] or AccelConfig(pe_rows=config["pe_rows"],
                                               pe_cols=config["pe_cols"]).selector_lanes


def _config_line(config, head=None):
    """The configuration as ``head`` (default ``RxC PE array, W-bit, L top-K lanes``) plus every
    other parameter that differs from today's :class:`golden.config.AccelConfig` defaults."""
    defaults = AccelConfig().to_dict()
    if head is None:
        head = (f"{config['pe_rows']}x{config['pe_cols']} PE array, {config['width']}-bit, "
                f"{_lanes(config)} top-K lanes")
    skip = {"pe_rows", "pe_cols", "width", "topk_lanes"}
    diff = [f"`{k}` {config[k]} (now {defaults[k]})" for k in sorted(config)
            if k not in skip and k in defaults and config[k] != defaults[k]]
    if diff:
        return (head + "; recorded parameters that differ from today's defaults: "
                + ", ".join(diff) + " (the command now runs with today's defaults)")
    return head + "; every other parameter at today's default"


def _source(lines, command, cores, note=None, config=None):
    lines.append(f"- command: `{command}`")
    if config is not None:
        lines.append(f"- configuration: {config}")
    if note:
        lines.append(f"- {note}")
    lines.append(f"- {_cores(cores)}")
    lines.append("")


def _generate_section(data, lines):
    lines += ["## Generation time", "",
              "Wall-clock time of a cold `python -m rtl_gen --pe RxC` (a fresh process and a new "
              "output folder each run), the peak memory of the generator process and the size "
              "of the Verilog it writes.", ""]
    _source(lines, data.get("command", "python -m sim.bench_generate"), data.get("cores"),
            note=f"{data.get('runs', 'not recorded')} runs per size; default configuration")
    lines += ["| array | PEs | median s | runs s | peak MiB | Verilog MiB |",
              "|---|---|---|---|---|---|"]
    for r in data["rows"]:
        runs = ", ".join(f"{s:.1f}" for s in r["seconds"])
        lines.append(f"| {r['pe']} | {r['pes']} | {r['median_seconds']:.1f} | {runs} | "
                     f"{r['peak_mib']} | {r['verilog_mib']:.1f} |")
    lines.append("")


def _pe_array_section(rows, lines):
    src = PROVENANCE[PE_ARRAY]
    lines += ["## Sparse PE array", "",
              "Cycles of one job, from its command to its last result (sparse load, every "
              "dense tile through the dense port, result drain), in sparse mode against the same "
              "array in dense mode, on ResNet-18 (CIFAR-10) layers with synthetic 8-bit operands "
              "and SWAT's exact per-tensor top-K. Speedup over dense mode, the tile's ideal "
              "(dense work over sparse work) in brackets; `bound` is `load` where port beats "
              "outnumber the busiest PE row's cycles.", ""]
    _source(lines, src["command"], src["cores"], note=src["note"])
    sparsities = sorted({r["sparsity"] for r in rows})
    top = sparsities[-1]
    for pe in sorted({r["pe"] for r in rows}, key=lambda p: [-int(x) for x in p.split("x")]):
        lines += [f"### {pe}", "",
                  "| layer | gemm | " + " | ".join(f"{s}: speedup (ideal)" for s in sparsities)
                  + f" | bound at {top} |",
                  "|---|---|" + "---|" * (len(sparsities) + 1)]
        keys = []
        for r in rows:
            if r["pe"] == pe and (r["layer"], r["gemm"]) not in keys:
                keys.append((r["layer"], r["gemm"]))
        for layer, gemm in keys:
            by_s = {r["sparsity"]: r for r in rows
                    if r["pe"] == pe and r["layer"] == layer and r["gemm"] == gemm}
            cells = [f"{by_s[s]['speedup']:.2f}x ({by_s[s]['ideal_speedup']:.2f}x)"
                     if s in by_s else "-" for s in sparsities]
            bound = by_s[top]["bound"] if top in by_s else "-"
            lines.append(f"| {layer} | {gemm} | " + " | ".join(cells) + f" | {bound} |")
        lines.append("")


def _network_section(name, data, lines, first):
    from .network import format_tables

    src = PROVENANCE[name]
    config = data["config"]
    if first:
        lines += ["## Network-level training", "",
                  "One training iteration predicted by the cycle model (which stays within 2 % "
                  "of the RTL), against the same hardware in dense mode. Forward = threshold "
                  "refreshes (every `period` iterations) + saving the sparsified activations + "
                  "the forward products; backward = input-gradient + weight-gradient products. "
                  "Each phase's products are sent back to back, so a job's rows load while the "
                  "job before computes (in both modes). "
                  "Synthetic operands (`golden.synthetic`), SWAT's exact top-K; ResNet-18 on "
                  "CIFAR-10 shapes, ResNet-50 on ImageNet shapes. \"Saved activations vs dense\" "
                  "is SWAT's saved tensor in the bitmap format against dense.", ""]
    lines += [f"### {config['pe_rows']}x{config['pe_cols']}, {_lanes(config)} top-K lanes",
              ""]
    _source(lines, src["command"], src["cores"], note=f"{src['note']}; top-K period "
            f"{data['period']}", config=_config_line(config))
    lines += [format_tables(data["results"], data["array_size_sweep"], data["period_sweep"],
                            data["topk_lanes_sweep"]), "",
              f"![network results](../benchmarks/{os.path.dirname(name)}/network.png)", ""]


def _sweep_section(points, lines):
    src = PROVENANCE[SWEEP]
    reports = [p["report"] for p in points]
    target = reports[0]["target"] if reports else "-"
    tools = sorted({f"{r['tools']['yosys']}, {r['tools']['nextpnr']}" for r in reports})
    mapping = sorted({r.get("lut_mapping", "-") for r in reports})
    # Sweeps record no wall time (it depends on where each point ran); older files do.
    timed = bool(reports) and all("seconds" in r for r in reports)
    lines += [f"## Synthesis sweep ({target})", "",
              "Each point generated, synthesised, placed and routed in the synthesis harness; "
              "LUTs, FFs, DSPs and block RAMs after place and route, nextpnr's Fmax."
              + (" `seconds` is the whole flow's wall-clock time." if timed else ""), ""]
    _source(lines, src["command"], src["cores"], note=f"{src['note']}; tools: "
            f"{'; '.join(tools)}; LUT mapping {', '.join(mapping)}",
            config=_config_line(reports[0]["config"], head=f"array and width as in the table, "
                               f"{_lanes(reports[0]['config'])} top-K lanes")
            if reports else None)
    lines += ["| pe | width | PEs | LUTs | FFs | DSPs | BRAMs | Fmax MHz | target MHz | router "
              + ("| seconds " if timed else "") + "| critical path from |",
              "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if timed else "") + "---|"]
    for p in points:
        r = p["report"]
        start = r.get("critical_path", {}).get("from", "-")
        lines.append(f"| {p['pe']} | {p['width']} | {p['pes']} | {r['luts']['used']} | "
                     f"{r['ffs']['used']} | {r['dsps']['used']} | {r['brams']['used']} | "
                     f"{r['fmax_mhz']:.1f} | {r['freq_target_mhz']:g} | {r['router']} | "
                     + (f"{r['seconds']} | " if timed else "") + f"`{start}` |")
    lines += ["", f"![sweep](../benchmarks/{os.path.dirname(SWEEP)}/sweep.png)", ""]


def _synth_blocks_section(reports, lines):
    lines += ["## Synthesis of each block alone", "",
              "Each block of the top placed and routed alone in the synthesis harness (its "
              "ports through shift registers, so that the pins do not bound it), built from "
              "the configuration the way the top builds it: its own area and Fmax.", ""]
    for (target, config), group in _grouped_reports(reports).items():
        first = group[0]
        command = (f"python -m rtl_gen --pe {first['config']['pe_rows']}x"
                   f"{first['config']['pe_cols']} --synth {target} --synth-block BLOCK "
                   f"--router1-seconds 0")
        _source(lines, command, PROVENANCE[SYNTH_BLOCKS]["cores"],
                note=f"tools: {first['tools']['yosys']}, {first['tools']['nextpnr']}; the "
                f"report `synth_{target}_BLOCK.json` copied to `benchmarks/{SYNTH_BLOCKS}/`",
                config=_config_line(first["config"]))
        lines += ["| block | LUTs | FFs | DSPs | BRAMs | Fmax MHz | router | critical path "
                  "from |", "|---|---|---|---|---|---|---|---|"]
        for r in group:
            lines.append(f"| {r['block']} | {r['luts']['used']} | {r['ffs']['used']} | "
                         f"{r['dsps']['used']} | {r['brams']['used']} | {r['fmax_mhz']:.1f} | "
                         f"{r['router']} | `{r['critical_path']['from']}` |")
        lines.append("")


def _grouped_reports(reports):
    """Reports by (target, configuration), blocks in name order. A parameter a report does not
    name (written before the parameter existed) counts at its default."""
    groups, defaults = {}, AccelConfig().to_dict()
    for r in sorted(reports, key=lambda r: (r["target"], r["block"])):
        config = json.dumps({**defaults, **r["config"]}, sort_keys=True)
        groups.setdefault((r["target"], config), []).append(r)
    return groups


def _train_section(rows, lines):
    src = PROVENANCE[TRAIN]
    seeds = sorted({r.get("seed", 0) for r in rows})
    variants = []  # (numerics, grad_rounding) in the order first seen
    for r in rows:
        key = (r["numerics"], r["grad_rounding"])
        if key not in variants:
            variants.append(key)
    groups = {}
    for r in rows:
        groups.setdefault((r["budget"], r["sparsity"], r["numerics"], r["grad_rounding"]),
                          []).append(r)

    def mean(key, budget, sparsity, variant):
        runs = groups.get((budget, sparsity, *variant), [])
        return sum(r[key] for r in runs) / len(runs) if runs else None

    n_test = round(1797 * 0.2)
    lines += ["## SWAT training in the accelerator's numerics", "",
              "The digits CNN of `python -m golden.train` (conv 3x3, strided conv 3x3, linear) "
              "trained with SWAT for 20 epochs. In the integer numerics every product of the "
              "three GEMMs of every layer is the accelerator's exact integer product "
              "(`golden.numerics.gemm`, what the RTL is checked against) of operands the host "
              "scaled per tensor by a power of two and rounded half up (gradients half up or "
              "stochastically), with top-K selected on the rounded values; master weights and "
              "the optimizer stay in floating point. Test accuracy in %, the mean over "
              f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''} ({', '.join(map(str, seeds))}; "
              "each seed its own data split, initial weights and batches), with the difference "
              f"from float in points. The test set has {n_test} images: one image is "
              f"{100 / n_test:.2f} points.", ""]
    _source(lines, src["command"], src["cores"], note=src["note"])
    float_variant = ("float", None)
    names = {v: v[0] + (", stochastic gradients" if v[1] == "stochastic" else "")
             for v in variants}
    lines += ["| budget | sparsity | " + " | ".join(names[v] for v in variants)
              + " | training MACs vs dense (float / int8) | saved activations, bits per "
              "element (int16 / int8) |",
              "|---|---|" + "---|" * len(variants) + "---|---|"]
    shortfall, spread = {}, 0.0
    for budget in dict.fromkeys(r["budget"] for r in rows):
        for sparsity in sorted({r["sparsity"] for r in rows if r["budget"] == budget}):
            ref = mean("test_accuracy", budget, sparsity, float_variant)
            cells = []
            for v in variants:
                acc = mean("test_accuracy", budget, sparsity, v)
                if acc is None:
                    cells.append("-")
                    continue
                cell = f"{100 * acc:.1f}"
                runs = groups[(budget, sparsity, *v)]
                if v == float_variant and len(runs) > 1:
                    accs = [100 * r["test_accuracy"] for r in runs]
                    spread = max(spread, max(accs) - min(accs))
                    cell += f" ({min(accs):.1f} to {max(accs):.1f})"
                if v != float_variant and ref is not None:
                    delta = 100 * (acc - ref)
                    cell += f" ({delta:+.1f})"
                    shortfall[v] = max(shortfall.get(v, 0.0), -delta)
                cells.append(cell)
            macs = [mean("train_macs_vs_dense", budget, sparsity, v)
                    for v in (float_variant, ("int8", "nearest"))]
            bits = [mean("saved_activations_vs_dense", budget, sparsity, (n, "nearest"))
                    for n in ("int16", "int8")]
            lines.append(f"| {budget} | {sparsity:.1f} | " + " | ".join(cells) + " | "
                         + " / ".join("-" if m is None else f"{100 * m:.1f} %" for m in macs)
                         + " | " + " / ".join(
                             "-" if b is None else f"{b * w:.2f}" for b, w in zip(bits, (16, 8)))
                         + " |")
    lines.append("")
    if len(seeds) > 1:
        lines.append(f"- float's own accuracy varies by up to {spread:.1f} points from seed to "
                     "seed (its cells give the range): differences from float smaller than that "
                     "are within the runs' noise.")
    for v in variants:
        goal = NUMERICS_GOALS.get(v[0])
        if goal is not None and v in shortfall:
            met = "met" if shortfall[v] <= goal + 1e-9 else "not met"
            lines.append(f"- {names[v]}: at most {max(shortfall[v], 0.0):.1f} points below float "
                         f"over the table (goal: within {goal:g}; {met}).")
    lines += ["- Training MACs count the kept elements of each product's sparse operand: top-K "
              "on rounded values keeps every element tied with the threshold, so the integer "
              "numerics keep slightly more than float at the same density.",
              "- Saved activations: the inputs of every SWAT layer in the smallest of the "
              "dense, bitmap and index-value encodings at the numerics' width (dense: 16 or 8 "
              "bits per element).", ""]


def render(benchmarks=DEFAULT_BENCHMARKS):
    """The results page for the JSON files under ``benchmarks``.

    Parameters
    ----------
    benchmarks : str
        The folder holding the benchmark files (see the module's table).

    Returns
    -------
    str
        The page's Markdown text, ending with a newline.

    Raises
    ------
    ResultsError
        A required file is missing or is not valid JSON; the message names ``--benchmarks``.
    """
    if not os.path.isdir(benchmarks):
        raise ResultsError(f"--benchmarks {benchmarks!r}: no such folder")
    generate = _load(benchmarks, GENERATE, required=False)
    pe_array = _load(benchmarks, PE_ARRAY)
    networks = [(name, _load(benchmarks, name)) for name in NETWORKS]
    sweep = _load(benchmarks, SWEEP)
    trained = _load(benchmarks, TRAIN, required=False)
    folder = os.path.join(benchmarks, SYNTH_BLOCKS)
    blocks = [_load(benchmarks, os.path.join(SYNTH_BLOCKS, name))
              for name in sorted(os.listdir(folder)) if name.endswith(".json")] \
        if os.path.isdir(folder) else []
    lines = ["# Results", "",
             "<!-- Generated by `python -m sim.results` from the JSON files under benchmarks/. "
             "Do not edit: re-run the benchmark, then the command. -->", "",
             "Every table below is generated from a benchmark file in "
             "[`benchmarks/`](../benchmarks) by `python -m sim.results`, and names the command, "
             "configuration and processor-core count that produced it. `python -m sim.results "
             "--check` fails when this page is not what the files give. The files record no code "
             "version: to measure the current code, re-run a table's command, then "
             "`python -m sim.results`.", ""]
    try:
        if generate is not None:
            _generate_section(generate, lines)
        _pe_array_section(pe_array, lines)
        for i, (name, data) in enumerate(networks):
            _network_section(name, data, lines, first=i == 0)
        _sweep_section(sweep, lines)
        if blocks:
            _synth_blocks_section(blocks, lines)
        if trained is not None:
            _train_section(trained, lines)
    except (KeyError, TypeError, IndexError, AttributeError) as e:
        raise ResultsError(f"--benchmarks {benchmarks!r}: a file lacks an expected field "
                           f"({type(e).__name__}: {e})") from None
    return "\n".join(lines).rstrip("\n") + "\n"


def _unwritable(path):
    """Why ``path`` cannot be written, or ``None``."""
    if not path:
        return "an empty path"
    if os.path.isdir(path):
        return "is a folder"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"no folder {folder}"
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        return "cannot be written"
    return None


def main(argv=None):
    """``python -m sim.results [--benchmarks DIR] [--out FILE] [--check]``.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 when the page was written, or with ``--check`` when it is current; 1 when ``--check``
        finds it out of date. Bad flags exit with status 2 and a one-line error.
    """
    parser = OneLineParser(prog="python -m sim.results", description=__doc__.split("\n")[0])
    parser.add_argument("--benchmarks", default=DEFAULT_BENCHMARKS, metavar="DIR",
                        help="folder of the benchmark JSON files (default: the checkout's "
                             "benchmarks/)")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="FILE",
                        help="the page to write or check (default: the checkout's "
                             "docs/results.md)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if FILE differs from what the files give")
    args = parser.parse_args(argv)
    if args.check:
        if not os.path.isfile(args.out):
            parser.error(f"--out {args.out!r}: no such file to check")
    else:
        problem = _unwritable(args.out)
        if problem:
            parser.error(f"--out {args.out!r}: {problem}")
    try:
        text = render(args.benchmarks)
    except ResultsError as e:
        parser.error(str(e))
    if args.check:
        with open(args.out, encoding="utf-8", newline="") as f:
            current = f.read()
        if current != text:
            print(f"error: {args.out} is out of date: run python -m sim.results",
                  file=sys.stderr)
            return 1
        print(f"{args.out} is current")
        return 0
    with open(args.out, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
