"""``python -m rtl_gen``: emit the accelerator's Verilog for one configuration."""

import os
import sys
import time

from golden.cli import OneLineParser
from golden.outputs import OutputPathError, check_output_folder
from golden.config import AccelConfig, ConfigError, parse_pe

from .generate import MANIFEST_NAME, generate
from .fusesoc import CORE_FILENAME, CORE_NAME
from .progress import Progress
from .targets import BOARDS, PRESETS, TARGETS, default_freq_help

__all__ = ["main", "build_parser", "parse_args", "config_from_args"]

DEFAULTS = AccelConfig()


def build_parser(*, synth=True):
    """The generator's command line; ``synth=False`` leaves out ``--synth`` (the sweep has its
    own target option)."""
    p = OneLineParser(
        prog="python -m rtl_gen",
        description="Generate the Verilog of a SWAT training accelerator from one configuration.")
    if synth:
        p.add_argument("--preset", default=None, metavar="NAME",
                       help="start from a named configuration made for a part, one of "
                            + "; ".join(f"{name}: {preset.summary} (--synth {preset.target})"
                                        for name, preset in PRESETS.items())
                            + "; flags given as well override its values (default: none)")
    p.add_argument("--pe", default=DEFAULTS.pe, metavar="RxC",
                   help="PE array size, rows x columns (default: %(default)s)")
    # Every other parameter of the configuration object is a flag of the same name.
    for name, (default, text) in AccelConfig.field_help().items():
        if name in ("pe_rows", "pe_cols"):
            continue
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=type(default),
                       default=default, help=f"{text} (default: %(default)s)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: rtl_out/<top-name>_<R>x<C>_w<width>)")
    from .synth import SYNTH_BLOCKS

    if synth:
        p.add_argument("--synth", default=None, metavar="TARGET",
                       help="also synthesise, place and route for TARGET, one of "
                            f"{', '.join(TARGETS)}, and write synth_<TARGET>.json "
                            "(default: none)")
        p.add_argument("--synth-block", default=None, metavar="BLOCK",
                       help="with --synth: place and route only BLOCK, one of "
                            f"{', '.join(SYNTH_BLOCKS)}, in the harness, for its own Fmax; "
                            "writes synth_<TARGET>_<BLOCK>.json (default: the whole top)")
        p.add_argument("--board", default=None, metavar="BOARD",
                       help="also build a bitstream of the built-in self-test for BOARD, one "
                            f"of {', '.join(BOARDS)} (default: none)")
    p.add_argument("--freq", type=float, default=None, metavar="MHZ",
                   help="timing target of the synthesis in MHz (default: the target's: "
                        f"{default_freq_help()})")
    p.add_argument("--router1-seconds", type=float, default=None, metavar="S",
                   help="seconds nextpnr may route with router1 (better Fmax) before it starts "
                        "again with router2 (faster on congested designs); 0 routes with "
                        "router2 only (default: 1200)")
    return p


def parse_args(parser, argv):
    """Parse ``argv`` with ``parser``; a ``--preset`` sets the defaults of the options it names,
    so that flags given as well override it."""
    argv = _join_negative_values(argv)
    known, _ = parser.parse_known_args(argv)
    name = getattr(known, "preset", None)
    if name is not None:
        if name not in PRESETS:
            parser.error(f"--preset must be one of {', '.join(PRESETS)}, not {name!r}")
        parser.set_defaults(**PRESETS[name].options)
    return parser.parse_args(argv)


def _preset_flags(args):
    """Field -> flag for an error message: a value the preset set (not a flag given) is named
    with the preset, so the user sees where it came from."""
    if args.preset is None:
        return None
    options = PRESETS[args.preset].options
    return {name: "--" + name.replace("_", "-") + (
        f" (from --preset {args.preset})"
        if name in options and getattr(args, name) == options[name] else "")
        for name in AccelConfig.field_help()}


def check_synth_args(parser, args):
    """Refuse a ``--freq`` or ``--router1-seconds`` out of range (a one-line usage error)."""
    if args.freq is not None and not 1 <= args.freq <= 1000:
        parser.error(f"--freq must be between 1 and 1000 MHz, not {args.freq:g}")
    if args.router1_seconds is not None and not 0 <= args.router1_seconds <= 86400:
        parser.error(f"--router1-seconds must be between 0 and 86400, not "
                     f"{args.router1_seconds:g}")


def freq_mhz(args, target):
    """The timing target: ``--freq``, else ``target``'s default."""
    return args.freq or TARGETS[target].default_mhz


def router1_seconds(args):
    from .synth import ROUTER1_SECONDS

    return ROUTER1_SECONDS if args.router1_seconds is None else args.router1_seconds


def config_from_args(args):
    """The :class:`AccelConfig` the parsed arguments describe (raises :class:`ConfigError`)."""
    rows, cols = parse_pe(args.pe)
    fields = {name: getattr(args, name) for name in AccelConfig.field_help()
              if name not in ("pe_rows", "pe_cols")}
    return AccelConfig(pe_rows=rows, pe_cols=cols, **fields)


def _summary(config, manifest, out, seconds, preset=None):
    lines = [
        f"swat-accel rtl_gen: {config.pe} PE array, {config.width}-bit operands"
        + (f" (preset {preset}, made for {PRESETS[preset].target})" if preset else ""),
        f"  tile depth {config.tile_depth} -> accumulator {config.acc_width} bits; "
        f"top-K lanes {config.selector_lanes}, activation buffer lanes {config.buffer_lanes}",
        f"  PE array ports: sparse {config.sparse_port_lanes} entries, dense "
        f"{config.dense_port_lanes} values, results {config.result_port_lanes} rows a beat; "
        f"banks of {config.pe_bank_entries} entries",
        f"  output folder: {out}",
    ]
    top = manifest["top"]
    lines.append(f"  {top['file']}: module {top['module']} ({len(top['ports'])} ports), with:")
    for block in manifest["blocks"]:
        lines.append(f"    {block['instance']}: {block['description']}")
    memories = manifest["memories"]
    lines.append(f"  on-chip memory {sum(m['bits'] for m in memories) / 8192:.1f} KiB: "
                 + ", ".join(f"{m['name']} {m['bits'] / 8192:.1f}" for m in memories))
    rams = {family: sum(m["block_rams"][family] for m in manifest["memories"])
            for family in manifest["memories"][0]["block_rams"]}
    lines.append("  block RAMs if every memory maps to them: " + ", ".join(
        f"{family} {count}" for family, count in rams.items()))
    lines.append(f"  {MANIFEST_NAME}: parameters, derived widths, memory sizes and ports")
    lines.append(f"  {CORE_FILENAME}: FuseSoC core {CORE_NAME} (targets default and lint)")
    lines.append(f"  done in {seconds:.1f} s")
    return "\n".join(lines)


def _join_negative_values(argv):
    # argparse takes "--pe -2x2" for two options; join it so the value gets a proper message.
    out, i = [], 0
    while i < len(argv):
        if argv[i].startswith("--") and "=" not in argv[i] and i + 1 < len(argv) \
                and argv[i + 1].startswith("-") and argv[i + 1][1:2].isdigit():
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv=None):
    parser = build_parser()
    args = parse_args(parser, sys.argv[1:] if argv is None else argv)
    try:
        config = config_from_args(args)
        from hw.top import check_config

        check_config(config)  # combinations the blocks cannot work with
    except ConfigError as e:
        parser.error(e.naming_flag(_preset_flags(args)))
    from .synth import SYNTH_BLOCKS, SynthFlowFailed, format_report, synthesize

    if args.synth is not None and args.synth not in TARGETS:
        parser.error(f"--synth must be one of {', '.join(TARGETS)}, not {args.synth!r}")
    if args.synth_block is not None:
        if args.synth_block not in SYNTH_BLOCKS:
            parser.error(f"--synth-block must be one of {', '.join(SYNTH_BLOCKS)}, "
                         f"not {args.synth_block!r}")
        if args.synth is None:
            parser.error("--synth-block needs --synth TARGET")
    from .board import BoardBuildFailed, build_board

    if args.board is not None and args.board not in BOARDS:
        parser.error(f"--board must be one of {', '.join(BOARDS)}, not {args.board!r}")
    check_synth_args(parser, args)
    out = args.out if args.out is not None else os.path.join(
        "rtl_out", f"{config.top_name}_{config.pe}_w{config.width}")
    try:
        check_output_folder(out, "--out")  # before the work: a bad path costs seconds
    except OutputPathError as e:
        parser.exit(e.status, f"error: {e}\n")
    start = time.perf_counter()
    try:
        with Progress("rtl_gen") as progress:
            manifest = generate(config, out, step=progress.step)
    except OSError as e:
        parser.exit(1, f"error: cannot write to {out}: {e.strerror}\n")
    except (ValueError, TypeError) as e:
        # A block refused a combination the configuration allows: say which, in one line.
        parser.exit(2, f"error: {str(e).splitlines()[0]}\n")
    print(_summary(config, manifest, out, time.perf_counter() - start, args.preset))
    if args.synth:
        freq = freq_mhz(args, args.synth)
        print(f"synthesis for {args.synth} at {freq:g} MHz (YoWASP tools; minutes):", flush=True)
        try:
            report = synthesize(config, args.synth, freq, out, block=args.synth_block,
                                progress=lambda text: print(text, flush=True),
                                router1_seconds=router1_seconds(args))
        except SynthFlowFailed as e:
            parser.exit(1, f"error: {str(e).splitlines()[0]}\n")
        print(format_report(report))
        name = f"synth_{args.synth}" + (f"_{args.synth_block}" if args.synth_block else "")
        print(f"  report: {os.path.join(out, name + '.json')}")
    if args.board:
        print(f"built-in self-test bitstream for {args.board}:", flush=True)
        try:
            report = build_board(config, args.board, out,
                                 progress=lambda text: print(text, flush=True))
        except BoardBuildFailed as e:
            parser.exit(1, f"error: {str(e).splitlines()[0]}\n")
        used = ", ".join(f"{k} {v['used']}/{v['available']}"
                         for k, v in sorted(report["utilization"].items()) if v["used"])
        print(f"  {report['bitstream']} ({report['bitstream_bytes']} bytes) in "
              f"{report['seconds']:.0f} s; Fmax {report['fmax_mhz']:.1f} MHz (board clock "
              f"{report['clock_mhz']:g} MHz)\n  used: {used}\n"
              f"  report: {os.path.join(out, f'board_{args.board}.json')}")
        if not report["meets_clock"]:
            print("  warning: Fmax is below the board's clock: the self-test may fail on the "
                  "board")
    return 0


if __name__ == "__main__":
    sys.exit(main())
