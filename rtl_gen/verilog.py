"""Verilog out of the Amaranth design: deterministic text that every simulator and synthesis
flow reads the same way.

:func:`to_verilog` is the one conversion: Amaranth's Verilog back end, then the rewrites the
simulators need (:func:`compact_zero_init`, :func:`trigger_comb_blocks`), then the Verilog of the
memories the design instantiates (:mod:`hw.memory`), so the file stands alone.
"""

import gc
import re

from hw import hierarchy, memory

__all__ = ["to_verilog", "convert_with_modules", "with_memory_modules", "prefix_modules", "compact_zero_init", "trigger_comb_blocks",
           "COMB_TRIGGER"]


def to_verilog(component, name, *, ports=None):
    """Deterministic Verilog of an Amaranth component, in one self-contained text: no source
    locations, no absolute paths, zero-initialised memories written as one loop each
    (:func:`compact_zero_init`), and the modules it instantiates: the components emitted once
    (:mod:`hw.hierarchy`) and the memories (:mod:`hw.memory`). ``ports`` as Amaranth's
    ``verilog.convert`` takes them (for a design that is not a ``lib.wiring`` component)."""
    return prefix_modules(with_memory_modules(convert_with_modules(component, name, ports=ports)),
                          name)


_SHARED_MODULE = re.compile(rf"\b(?:{memory.MODULE}|swat_[a-z]+_[0-9a-f]{{10}})\b")


def prefix_modules(text, name):
    """Every shared module (the memories, the components emitted once) renamed to start with
    ``name``, the top's: two designs generated with different top names can be read together."""
    return _SHARED_MODULE.sub(lambda match: f"{name}_{match.group(0)[len('swat_'):]}", text)


def convert_with_modules(component, name, *, ports=None):
    """Verilog of ``component`` (the top, named ``name``) and of every module it instantiates
    through :func:`hw.hierarchy.instantiate` (those may place more), each converted once;
    the memory modules are not included. ``ports`` as Amaranth's ``verilog.convert`` takes
    them (for a design that is not a ``lib.wiring`` component)."""
    from amaranth.back import rtlil

    kwargs = {} if ports is None else {"ports": ports}
    # The netlists are large and acyclic in what matters: Python's cycle collector, run
    # on every few thousand allocations, would scan them again and again.
    collecting = gc.isenabled()
    gc.disable()
    try:
        with hierarchy.collect() as placed:
            texts = [rtlil.convert(component, name=name, emit_src=False, **kwargs)]
            converted = set()
            while len(converted) < len(placed):
                for module, sub in sorted(placed.items()):
                    if module not in converted:
                        converted.add(module)
                        texts.append(rtlil.convert(sub, name=module, emit_src=False))
    finally:
        if collecting:
            gc.enable()
    # one Yosys run for all of them: each run costs a second of start-up
    text = _rtlil_to_verilog("\n".join(texts))
    return trigger_comb_blocks(compact_zero_init(_only_top_attribute(text, name)))


def _rtlil_to_verilog(text):
    # Amaranth's own RTLIL-to-Verilog step (the script its ``verilog.convert`` runs), on
    # several designs' RTLIL at once; the amaranth version is pinned to 0.5 in pyproject.
    from amaranth.back.verilog import _convert_rtlil_text

    return _convert_rtlil_text(text)


_TOP_ATTRIBUTE = re.compile(r"^\(\* top = +1 +\*\)\n((?:\(\*.*\*\)\n)*)module (\S+?)\(", re.M)


def _only_top_attribute(text, name):
    """``text`` with the ``top`` attribute kept on module ``name`` only."""
    return _TOP_ATTRIBUTE.sub(
        lambda match: match.group(0) if match.group(2) == name
        else f"{match.group(1)}module {match.group(2)}(", text)


def with_memory_modules(text):
    """``text`` followed by the memory modules (:mod:`hw.memory`) it instantiates."""
    if not re.search(rf"^\s*{memory.MODULE}\b", text, re.M):
        return text
    return text.rstrip("\n") + "\n\n" + "".join(memory.verilog_sources().values())


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
