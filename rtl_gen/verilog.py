"""Verilog out of the Amaranth design: deterministic text that every simulator and synthesis
flow reads the same way.

:func:`to_verilog` is the one conversion: Amaranth's Verilog back end, then the rewrites the
simulators need (:func:`compact_zero_init`, :func:`trigger_comb_blocks`), then the Verilog of the
memories the design instantiates (:mod:`hw.memory`), so the file stands alone.
"""

import concurrent.futures
import contextlib
import gc
import multiprocessing
import os
import re
import subprocess
import sys

from amaranth.hdl import Elaboratable

from hw import hierarchy, memory

__all__ = ["to_verilog", "convert_with_modules", "module_sources", "elaborate_with_sources",
           "with_memory_modules", "prefix_modules", "compact_zero_init", "trigger_comb_blocks",
           "COMB_TRIGGER"]


def to_verilog(component, name, *, ports=None):
    """Deterministic Verilog of an Amaranth component, in one self-contained text: no source
    locations, no absolute paths, zero-initialised memories written as one loop each
    (:func:`compact_zero_init`), and the modules it instantiates: the components emitted once
    (:mod:`hw.hierarchy`) and the memories (:mod:`hw.memory`). ``ports`` as Amaranth's
    ``verilog.convert`` takes them (for a design that is not a ``lib.wiring`` component)."""
    return prefix_modules(with_memory_modules(convert_with_modules(component, name, ports=ports)),
                          name)


_SHARED_MODULE = re.compile(rf"\b(?:{'|'.join(memory.MODULES)}|swat_[a-z]+_[0-9a-f]{{10}})\b")


def prefix_modules(text, name):
    """Every shared module (the memories, the components emitted once) renamed to start with
    ``name``, the top's: two designs generated with different top names can be read together."""
    return _SHARED_MODULE.sub(lambda match: f"{name}_{match.group(0)[len('swat_'):]}", text)


def convert_with_modules(component, name, *, ports=None, jobs=None):
    """Verilog of ``component`` (the top, named ``name``) and of every module it instantiates
    through :func:`hw.hierarchy.instantiate` (those may place more), each converted once,
    the top first and the others by name; the memory modules are not included. ``ports`` as
    Amaranth's ``verilog.convert`` takes them (for a design that is not a ``lib.wiring``
    component). The modules the top places are converted in up to ``jobs`` processes at once
    (default: the processor cores this process may use)."""
    from amaranth.back import rtlil
    from amaranth.hdl import Fragment

    kwargs = {} if ports is None else {"ports": ports}
    with _no_cycle_collection():
        # Elaborating the top names the modules it places; its netlist is built while
        # workers convert those.
        with hierarchy.collect() as placed:
            top = _Elaborated(component, Fragment.get(component, None))
        names = sorted(placed)
        jobs = min(jobs or _cores(), len(names))
        if jobs > 1 and "fork" in multiprocessing.get_all_start_methods():
            # The workers inherit the elaborated design (fork); each sends back the Verilog of
            # one module and those it places, from a Yosys run of its own (Yosys numbers some
            # names per run, so the same runs are made whatever ``jobs`` is). The top's Yosys
            # starts after the workers, so that none holds its input open.
            _forked.update(placed)
            try:
                with concurrent.futures.ProcessPoolExecutor(
                        jobs, mp_context=multiprocessing.get_context("fork")) as pool:
                    futures = [pool.submit(_convert_forked, module) for module in names]
                    top_rtlil = rtlil.convert(top, name=name, emit_src=False, **kwargs)
                    modules = {name: _Yosys().to_verilog(top_rtlil)}
                    for future in futures:
                        modules.update(_split_modules(future.result()))
            finally:
                _forked.clear()
        else:
            yosys = _Yosys()
            top_rtlil = rtlil.convert(top, name=name, emit_src=False, **kwargs)
            modules = {name: yosys.to_verilog(top_rtlil)}
            modules.update(_convert_each(placed))  # the runs the workers would make
    top_text = modules.pop(name)
    header, top_module = top_text.split("\n", 1) if top_text.startswith("/*") else ("", top_text)
    text = "\n".join([header, top_module.strip("\n") + "\n",
                      *(modules[module] for module in sorted(modules, key=_sort_key))])
    return trigger_comb_blocks(compact_zero_init(_only_top_attribute(text, name)))


def module_sources(component):
    """``{file name: Verilog}`` of every module ``component`` instantiates (the components
    placed with :func:`hw.hierarchy.instantiate`, the memories), under their own names: what a
    flow that converts ``component`` with Amaranth itself (a board build) reads beside it.
    ``component`` is elaborated here, without a platform."""
    return elaborate_with_sources(component)[1]


def elaborate_with_sources(component):
    """Elaborate ``component`` once, without a platform: its fragment, for Amaranth's own
    converters, and :func:`module_sources`'s ``{file name: Verilog}`` of the modules it
    instantiates (a formal proof converts the fragment to RTLIL and reads the modules beside)."""
    from amaranth.hdl import Fragment

    with _no_cycle_collection():
        with hierarchy.collect() as placed:
            fragment = Fragment.get(component, None)
        modules = _convert_each(placed)
    sources = {}
    if modules:
        text = "".join(modules[module] for module in sorted(modules, key=_sort_key))
        text = trigger_comb_blocks(compact_zero_init(_only_top_attribute(text, None)))
        sources["swat_modules.v"] = text
    return fragment, {**sources, **{f"{name}.v": text for name, text in memory.MODULES.items()}}


_forked = {}  # the components a forked worker converts, by module name


class _Elaborated(Elaboratable):
    """``component`` as Amaranth's converters take it, its elaboration already done."""

    def __init__(self, component, fragment):
        self._component, self._fragment = component, fragment
        self._MustUse__used = True  # (converted only in the processes that need it)

    def __getattr__(self, name):  # ``signature`` and the members it names
        return getattr(self._component, name)

    def elaborate(self, platform):
        return self._fragment


def _convert_each(placed):
    """``{module name: Verilog}`` of the components in ``placed`` and of the modules they
    place, one Yosys run per component of ``placed`` (as the forked workers make them)."""
    modules = {}
    for module in sorted(placed):
        modules.update(_split_modules(_convert_modules({module: placed[module]})))
    return modules


def _convert_forked(module):
    return _convert_modules({module: _forked[module]})


def _convert_modules(components):
    """Verilog of ``components`` (``{module name: component}``) and of the modules they place,
    in one Yosys run."""
    from amaranth.back import rtlil

    yosys = _Yosys()
    texts = []
    with hierarchy.collect() as placed:
        placed.update(components)
        converted = set()
        while len(converted) < len(placed):
            for module, sub in sorted(placed.items()):
                if module not in converted:
                    converted.add(module)
                    texts.append(rtlil.convert(sub, name=module, emit_src=False))
    return yosys.to_verilog("\n".join(texts)) if texts else ""


def _cores():
    """Cores this process may use for conversion workers: one inside a daemonic process (a
    Dask worker, a process pool's worker), which may not start processes of its own."""
    if multiprocessing.current_process().daemon:
        return 1
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def _no_cycle_collection():
    # The netlists are large, and what they hold is freed by reference counting: Python's
    # cycle collector, run every few thousand allocations, would scan them again and again.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Yosys:
    """A Yosys process started at once and given its work later (it takes a third of a
    second to start): Amaranth's RTLIL-to-Verilog script, on any number of modules."""

    def __init__(self):
        # Amaranth picks the Yosys to use (AMARANTH_USE_YOSYS); its runners take the script
        # only when they start, so the process is started here as they would start it.
        from amaranth._toolchain.yosys import _BuiltinYosys, find_yosys

        found = find_yosys(lambda version: version >= (0, 40))
        command = [sys.executable, "-m", _BuiltinYosys.YOSYS_PACKAGE] \
            if found is _BuiltinYosys else None
        if command is None:
            self._found, self._popen = found, None
            return
        self._popen = subprocess.Popen(
            [*command, "-q", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, encoding="utf-8")

    def to_verilog(self, rtlil_text):
        script = "\n".join([f"read_rtlil <<rtlil\n{rtlil_text}\nrtlil", "proc -nomux -norom",
                            "memory_collect", "write_verilog -norename"])
        if self._popen is None:
            return self._found.run(["-q", "-"], script, ignore_warnings=True)
        stdout, stderr = self._popen.communicate(script)
        if self._popen.returncode:
            from amaranth._toolchain.yosys import YosysError
            raise YosysError(stderr.strip())
        return stdout


_MODULE_START = re.compile(r"^(?:\(\*[^\n]*\*\)\n)*module (\S+?) ?\(", re.M)


def _split_modules(text):
    """``{module name: its text}`` of Yosys's Verilog ``text`` (the header dropped)."""
    starts = list(_MODULE_START.finditer(text))
    return {match.group(1): text[match.start():nxt.start() if nxt else len(text)].strip("\n")
            + "\n" for match, nxt in zip(starts, starts[1:] + [None])}


def _sort_key(module):
    return module.lstrip("\\")


_TOP_ATTRIBUTE = re.compile(r"^\(\* top = +1 +\*\)\n((?:\(\*.*\*\)\n)*)module (\S+?)\(", re.M)


def _only_top_attribute(text, name):
    """``text`` with the ``top`` attribute kept on module ``name`` only."""
    return _TOP_ATTRIBUTE.sub(
        lambda match: match.group(0) if match.group(2) == name
        else f"{match.group(1)}module {match.group(2)}(", text)


def with_memory_modules(text):
    """``text`` followed by the memory modules (:mod:`hw.memory`) it instantiates."""
    used = memory.verilog_sources(text)
    if not used:
        return text
    return text.rstrip("\n") + "\n\n" + "".join(used.values())


COMB_TRIGGER = "swat_comb_trigger"


def trigger_comb_blocks(text):
    """Make every one-statement ``always @*`` block also run at time zero.

    Yosys writes most combinational processes with a dummy read of a register initialised in
    its declaration, which (under ``-g2005``) Icarus changes at time zero, so the block runs
    once. A one-statement block, like ``always @* x[3:0] = 4'h0;``, gets no such read: Icarus
    then never runs it if its inputs never change, and the bits stay ``x`` (Verilator runs it).
    This adds the same dummy read, of a register ``swat_comb_trigger`` in each module.
    """
    lines = text.split("\n")
    out, in_header = [], False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("module "):
            in_header = True
        out.append(line)
        if in_header and line.rstrip().endswith(");"):
            out.append(f"  reg {COMB_TRIGGER} = 0;")
            in_header = False
        elif line == "  always @*" and i + 1 < len(lines) and lines[i + 1].startswith("    ") \
                and lines[i + 1].rstrip().endswith(";"):
            out[-1] = "  always @* begin"
            out += [f"    if ({COMB_TRIGGER}) begin end", lines[i + 1], "  end"]
            i += 1
        i += 1
    return "\n".join(out)


_INIT_LINE = re.compile(r"^    (\\\S+ |[A-Za-z_][\w$]*)\[(\d+)\] = (\d+)'h0+;$")


def compact_zero_init(text):
    """Rewrite every ``initial`` block that sets a whole memory to zero, word by word, as a loop.

    Amaranth's Verilog backend writes one line per memory word, so a large buffer makes a
    file of megabytes that simulators parse slowly. The loop sets the same words to the same
    value; any other ``initial`` block is left as it is.
    """
    lines = text.split("\n")
    out, i, blocks = [], 0, 0
    while i < len(lines):
        if lines[i] == "  initial begin":
            j, name, width = i + 1, None, None
            while j < len(lines):
                match = _INIT_LINE.match(lines[j])
                if not match or int(match.group(2)) != j - i - 1 \
                        or (name is not None and (match.group(1), match.group(3)) != (name, width)):
                    break
                name, width = match.group(1), match.group(3)
                j += 1
            if name is not None and j < len(lines) and lines[j] == "  end" and j - i - 1 > 1:
                var = f"swat_init_{blocks}"
                blocks += 1
                out += [f"  initial begin : {var}_block",
                        f"    integer {var};",
                        f"    for ({var} = 0; {var} < {j - i - 1}; {var} = {var} + 1)",
                        f"      {name}[{var}] = {width}'h0;",
                        "  end"]
                i = j + 1
                continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)
