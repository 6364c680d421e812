"""``python -m rtl_gen --synth TARGET``: synthesis, place and route of a configuration with the
YoWASP Yosys and nextpnr, and a report of its area and timing.

The accelerator top is wrapped in :class:`hw.harness.SynthHarness` (registered, one-pin serial
I/O), synthesised with the target family's ``synth_<family>`` and placed and routed by its
nextpnr at the target frequency (:mod:`rtl_gen.targets` holds what each target needs). Each
block (top-K selector, activation buffer, PE array) is also synthesised alone for its area; the
controller's is what the top in its harness has beyond them and the harness's flip-flops. The
report goes to ``synth_<target>.json`` next to the Verilog.
"""

import json
import os
import re
import subprocess
import time

from .blocks import available_blocks
from .targets import RESOURCES, TARGETS
from .tools import ToolMissing, find_tool
from .verilog import to_verilog
from .yosys import SynthesisFailed, cell_counts, find_yosys, run_synthesis, synth_stats

__all__ = ["SYNTH_BLOCKS", "ROUTER1_SECONDS", "SynthFlowFailed", "synthesize", "fit_failure",
           "format_report"]

#: ``--synth-block`` name -> the block's instance (attribute) in :class:`hw.top.SwatAccel`
SYNTH_BLOCKS = {block.name: block.instance for block in available_blocks()}
_BUILD = {block.name: block.build for block in available_blocks()}

_CELL_NAMES = {"dsps": "DSP multipliers", "brams": "block RAMs", "luts": "LUTs"}


class SynthFlowFailed(RuntimeError):
    """A tool is missing, failed, or the design does not fit (the message says which)."""


def _version(path, flag):
    """``Yosys 0.70`` or ``nextpnr-0.11.1``: the version a tool prints, without build details."""
    result = subprocess.run([path, flag], capture_output=True, text=True)
    text = (result.stdout or result.stderr).strip()
    match = re.search(r"\(Version (\S+?)\)", text) or re.match(r"(Yosys \S+)", text)
    return match.group(1) if match else (text.splitlines() or ["unknown"])[0]


#: Seconds nextpnr may take with router1 before the run is repeated with router2.
ROUTER1_SECONDS = 1200


def synthesize(config, target, freq_mhz, out_dir, *, progress=print, blocks=True, block=None,
               router1_seconds=ROUTER1_SECONDS):
    """Synthesise, place and route ``config`` for ``target``; write and return the report.
    ``blocks=False`` skips the per-block syntheses (the report's ``blocks`` is then empty).
    ``block`` (one of :data:`SYNTH_BLOCKS`) places and routes that block alone in the harness
    instead of the top, for its own Fmax and area; its report is
    ``synth_<target>_<block>.json``. nextpnr routes with router1 unless it is still running
    after ``router1_seconds``; then with router2 (the report's ``router`` says which)."""
    from hw.harness import SynthHarness
    from hw.top import SwatAccel

    if target not in TARGETS:
        raise SynthFlowFailed(f"--synth must be one of {', '.join(TARGETS)}, not {target!r}")
    if block is not None and block not in SYNTH_BLOCKS:
        raise SynthFlowFailed(f"--synth-block must be one of {', '.join(SYNTH_BLOCKS)}, "
                              f"not {block!r}")
    part = TARGETS[target]
    family, available = part.family, part.resources
    try:
        yosys, nextpnr = find_yosys(), find_tool(family.nextpnr)
    except (SynthesisFailed, ToolMissing) as e:
        raise SynthFlowFailed(str(e)) from None
    start = time.monotonic()
    report_name = f"synth_{target}" + (f"_{block}" if block else "")
    work = os.path.join(out_dir, report_name)
    os.makedirs(work, exist_ok=True)

    # A block alone is built from the configuration the way the top builds it.
    accel = SwatAccel(config) if block is None else None
    harness = SynthHarness(_BUILD[block](config) if block else accel)
    text = to_verilog(harness, "harness", ports=[harness.si, harness.so])
    with open(os.path.join(work, "harness.v"), "w") as f:
        f.write(text)

    progress(f"  yosys: synth_{family.name} of {block or 'the top'} in its harness ...")
    result, flow = run_synthesis(yosys, work, "harness.v", family.name, "harness",
                                 json_out="harness.json")
    if result.returncode != 0 or not os.path.exists(os.path.join(work, "harness.json")):
        raise SynthFlowFailed(f"yosys failed (log: {os.path.join(work, 'yosys.log')}): "
                              f"{(result.stderr or result.stdout).strip()[-300:]}")

    # What cannot fit is said before place and route (which would take long to fail).
    cells = cell_counts(json.load(open(os.path.join(work, "stat.json"))), family.name)
    message = fit_failure(cells, target, config, block)
    if message is not None:
        raise SynthFlowFailed(message)

    progress(f"  nextpnr: place and route on {target} at {freq_mhz} MHz ...")
    command = [nextpnr, *part.device_args, "--json", "harness.json", "--freq", str(freq_mhz),
               "--report", "report.json", "--timing-allow-fail", "-q", "-l", "nextpnr.log",
               *family.pnr_options]
    if family.pin_constraint is not None:
        # This nextpnr needs a site for every I/O: the harness's ports on the target's pins.
        with open(os.path.join(work, family.constraints_file), "w") as f:
            f.writelines(family.pin_constraint.format(port=port, site=site) + "\n"
                         for port, site in part.pins.items())
        command += family.constraints_args
    # router1 (timing-driven) gives the better Fmax (the 4x4 PE array alone, same placement:
    # 85.9 MHz against router2's 67.9) but can fight congestion for an hour (the whole 4x4 top:
    # stopped after 35 min; router2 routed it in 2 min). So router1 gets ``router1_seconds``
    # for place and route, then the run starts again with router2 (at once with 0). Each run
    # names its router: the families' nextpnr builds differ in their default.
    router = "router1" if router1_seconds > 0 else "router2"
    if router == "router1":
        try:
            result = run_nextpnr([*command, "--router", "router1"], work, progress,
                                 timeout=router1_seconds, part=target)
        except subprocess.TimeoutExpired:
            router = "router2"
            progress(f"  nextpnr: router1 not done after {router1_seconds:g} s; place and "
                     "route again with router2 ...")
    if router == "router2":
        result = run_nextpnr([*command, "--router", "router2"], work, progress, part=target)
    report_path = os.path.join(work, "report.json")
    if result.returncode != 0 or not os.path.exists(report_path):
        log = open(os.path.join(work, "nextpnr.log")).read() if os.path.exists(
            os.path.join(work, "nextpnr.log")) else result.stderr
        if "Unable to place" in log or "not enough" in log or "exceeds" in log \
                or "too many" in log.lower():
            raise SynthFlowFailed(f"the design does not fit {target}: "
                                  + next((line for line in log.splitlines()
                                          if "ERROR" in line), "see nextpnr.log").strip())
        raise SynthFlowFailed(f"nextpnr failed (log: {os.path.join(work, 'nextpnr.log')}): "
                              + next((line for line in log.splitlines() if "ERROR" in line),
                                     log.strip()[-300:]))
    pnr = json.load(open(report_path))
    util = pnr.get("utilization", {})
    resources = {}
    for key, names in family.pnr_resources.items():
        names = (names,) if isinstance(names, str) else names
        entries = [util.get(name, {"used": 0, "available": available[key]}) for name in names]
        used = sum(int(entry["used"]) * family.cell_weights.get(name, 1)
                   for name, entry in zip(names, entries))
        resources[key] = {"used": used, "available": int(entries[0]["available"])}
    clocks = pnr.get("fmax", {})
    fmax = min((c["achieved"] for c in clocks.values()), default=0.0)
    path = (pnr.get("critical_paths") or [{}])[0].get("path", [])
    critical = {"from": path[0]["from"]["cell"] if path else None,
                "to": path[-1]["to"]["cell"] if path else None}

    areas = {}
    if blocks and block is None:
        progress("  yosys: each block alone, for its area ...")
        try:
            for block_name, instance in SYNTH_BLOCKS.items():
                component = getattr(accel, instance)
                stats = synth_stats(component, f"{config.top_name}_{block_name}", family.name)
                areas[block_name] = {k: stats[k] for k in RESOURCES}
        except SynthesisFailed as e:
            raise SynthFlowFailed(str(e)) from None
        # The controller: the top (synthesised in its harness above) beyond the blocks and the
        # harness's flip-flops. Synthesising the bare top instead trips an assertion in YoWASP
        # Yosys 0.70's ABC9 reintegration on some configurations.
        top = dict(cells)
        top["ffs"] -= harness.input_bits + 1
        areas["controller"] = {k: top[k] - sum(b[k] for b in areas.values())
                               for k in RESOURCES}

    report = {
        "target": target,
        "block": block or "top",
        "config": config.to_dict(),
        "freq_target_mhz": freq_mhz,
        "fmax_mhz": round(fmax, 2),
        "meets_target": fmax >= freq_mhz,
        **resources,
        "critical_path": critical,
        "blocks": areas,
        "harness": {"input_bits": harness.input_bits, "output_bits": harness.output_bits},
        "tools": {"yosys": _version(yosys, "-V"), "nextpnr": _version(nextpnr, "--version")},
        # "abc" where the family maps LUTs with abc, or when Yosys's ABC9 asserted on this
        # netlist and abc mapped them instead.
        "lut_mapping": flow,
        # "router2" when router1 did not finish in router1_seconds, or that was 0.
        "router": router,
        "seconds": round(time.monotonic() - start, 1),
    }
    path = os.path.join(out_dir, f"{report_name}.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
        f.write("\n")
    return report


def fit_failure(cells, target, config, block=None):
    """Why the synthesised ``cells`` (:func:`rtl_gen.yosys.cell_counts`) cannot fit ``target``,
    or None: its DSPs, block RAMs, or logic cells (LUTs and, where a carry cell takes LUT sites
    of its own, those). Too many DSPs in the PE array come with the ``--pe-lut-products`` that
    fits."""
    part = TARGETS[target]
    available, family = part.resources, part.family
    needed = dict(cells, luts=sum(cells[kind] * n for kind, n in family.logic_cells.items()))
    over = [key for key in ("dsps", "brams", "luts") if needed[key] > available[key]]
    if not over:
        return None
    key = over[0]
    what = _CELL_NAMES[key] if needed[key] == cells[key] else (
        f"logic cells ({cells['luts']} LUTs, {cells['carry']} carry cells)")
    message = (f"the design does not fit {target}: {needed[key]} {what} after synthesis, "
               f"the part has {available[key]}")
    if key == "dsps" and block in (None, "pe_array"):
        products = config.pe_rows * config.pe_cols
        spare = available["dsps"] - (cells["dsps"] - products + config.pe_lut_products)
        message += (f" (--pe-lut-products {products - spare} builds that many PE products "
                    "from LUTs)" if spare > 0 else "")
    return message


#: nextpnr's log lines that start each phase, and the phase's name.
NEXTPNR_PHASES = (("Info: Packing", "packing"), ("Info: Running main analytical placer", "placing"),
                  ("Info: Running simulated annealing placer", "refining the placement"),
                  ("Info: Routing", "routing"))


def nextpnr_phase(line):
    """The phase a line of nextpnr's log starts, or None."""
    return next((phase for start, phase in NEXTPNR_PHASES if line.startswith(start)), None)


#: A line of nextpnr's utilisation table: ``Info:   TRELLIS_COMB:  87443/ 83640   104%``.
_UTILISATION = re.compile(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%")


def overused(line):
    """``(cell, used, available)`` if the line is one of nextpnr's utilisation table with more
    cells used than the part has, else None."""
    match = _UTILISATION.match(line)
    if match is None or int(match[2]) <= int(match[3]):
        return None
    return match[1], int(match[2]), int(match[3])


def run_nextpnr(command, work, progress, *, timeout=None, poll_seconds=1.0, part="the part"):
    """Run nextpnr (logging to ``nextpnr.log`` in ``work``), reporting each phase it enters
    with the elapsed time; ``subprocess.CompletedProcess`` with its output. Raises
    ``subprocess.TimeoutExpired`` (the process killed) after ``timeout`` seconds, and
    :class:`SynthFlowFailed` (the process killed) as soon as the packed design uses more of a
    cell than ``part`` has: nextpnr would go on placing it for hours."""
    log_path = os.path.join(work, "nextpnr.log")
    if os.path.exists(log_path):
        os.remove(log_path)  # a previous run's phases are not this run's
    start, seen, offset = time.monotonic(), set(), 0
    with subprocess.Popen(command, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as process:
        while True:
            try:
                stdout, stderr = process.communicate(timeout=poll_seconds)
                break
            except subprocess.TimeoutExpired:
                pass
            elapsed = time.monotonic() - start
            if timeout is not None and elapsed > timeout:
                process.kill()
                process.communicate()
                raise subprocess.TimeoutExpired(command, timeout)
            try:
                with open(log_path, "rb") as f:
                    f.seek(offset)
                    data = f.read()
            except OSError:
                continue
            # Only whole lines: the rest is read again on the next poll.
            data = data[:data.rfind(b"\n") + 1]
            offset += len(data)
            for line in data.decode(errors="replace").splitlines():
                over = overused(line)
                if over is not None:
                    process.kill()
                    process.communicate()
                    cell, used, available = over
                    raise SynthFlowFailed(f"the design does not fit {part}: nextpnr packs it "
                                          f"into {used} {cell} of {available}")
                phase = nextpnr_phase(line)
                if phase is not None and phase not in seen:
                    seen.add(phase)
                    progress(f"  nextpnr: {phase} ({elapsed:.0f} s)")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def format_report(report):
    lines = [f"  {report['target']}, {report['block']}: Fmax {report['fmax_mhz']:.1f} MHz (target "
             f"{report['freq_target_mhz']} MHz{', met' if report['meets_target'] else ', not met'})",
             "  | resource | used | available |", "  |---|---|---|"]
    for key in RESOURCES:
        lines.append(f"  | {key} | {report[key]['used']} | {report[key]['available']} |")
    lines.append(f"  critical path: {report['critical_path']['from']} -> "
                 f"{report['critical_path']['to']}")
    if report["blocks"]:
        lines.append("  per block (synthesised alone): " + "; ".join(
            f"{name} {b['luts']} LUTs, {b['ffs']} FFs, {b['dsps']} DSPs, {b['brams']} BRAMs"
            for name, b in report["blocks"].items()))
    mapping = "" if report["lut_mapping"] == TARGETS[report["target"]].family.lut_flows[0] \
        else " (LUTs mapped by abc: ABC9 asserted on this netlist)"
    routing = "" if report["router"] == "router1" else f" (routed by {report['router']})"
    lines.append(f"  tools: {report['tools']['yosys']}, {report['tools']['nextpnr']}{mapping}"
                 f"{routing}; {report['seconds']} s")
    return "\n".join(lines)
