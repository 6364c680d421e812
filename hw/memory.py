"""On-chip memories, emitted as instances of small Verilog modules written for block-RAM
inference, not as Amaranth memories.

Amaranth writes a memory's initial contents into its netlist bit by bit, so converting a design
with megabits of buffers takes seconds per megabit; an instance of a Verilog module costs the
same whatever its size. :data:`VERILOG` is the module (:data:`MODULE`): one write port, one
synchronous read port that returns the word as it was before a write to the same address in
the same cycle, contents zero at start. :data:`VERILOG_2R` (:data:`MODULE_2R`) has a second
read port, and neither reads in a cycle that writes: the second read port then shares the
block RAM's port with the write port (one block RAM, true dual port), where two reads
beside a write would take a copy of the memory per read port. Every flow that reads the
generated Verilog gets the modules it uses in the same file
(:func:`rtl_gen.verilog.to_verilog`); a flow that reads Amaranth's own output adds them
(:func:`hw.memory.verilog_sources`).
"""

from amaranth.hdl import ClockSignal, Instance, Module, Shape, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .validate import check_int

__all__ = ["MODULE", "MODULE_2R", "MODULES", "VERILOG", "VERILOG_2R", "SimpleDualPortMemory",
           "TwoReadMemory", "address_width", "verilog_sources"]

MODULE = "swat_sdp_ram"
MODULE_2R = "swat_2r_ram"

def _ram_module(name, comment, read_ports, body):
    """A memory module's Verilog: parameters, the write port, ``read_ports`` (their name
    prefixes), zero-initialised words and ``body`` (its always blocks)."""
    ports = ["input wire clk", "input wire w_en", "input wire [ABITS-1:0] w_addr",
             "input wire [WIDTH-1:0] w_data"]
    for p in read_ports:
        ports += [f"input wire {p}_en", f"input wire [ABITS-1:0] {p}_addr",
                  f"output reg [WIDTH-1:0] {p}_data"]
    port_text = ",\n".join(f"  {port}" for port in ports)
    return (f"{comment}module {name} #(\n  parameter WIDTH = 8,\n  parameter DEPTH = 16,\n"
            f"  parameter ABITS = 4\n) (\n{port_text}\n);\n"
            "  reg [WIDTH-1:0] mem [0:DEPTH-1];\n  integer i;\n"
            "  initial for (i = 0; i < DEPTH; i = i + 1) mem[i] = {WIDTH{1'b0}};\n"
            f"{body}endmodule\n")


VERILOG = _ram_module(
    MODULE,
    "// One write port, one synchronous read port (read before write), zero at start: the pattern\n"
    "// Yosys maps to block RAM (or to LUT RAM and registers when it is small).\n",
    ["r"],
    "  always @(posedge clk) begin\n"
    "    if (w_en) mem[w_addr] <= w_data;\n"
    "    if (r_en) r_data <= mem[r_addr];\n"
    "  end\n")

VERILOG_2R = _ram_module(
    MODULE_2R,
    "// One write port, two synchronous read ports, zero at start; neither read port reads in a\n"
    "// cycle that writes (its data holds), so the second read port and the write port share one\n"
    "// port of a true dual-port block RAM.\n",
    ["r", "s"],
    "  wire [ABITS-1:0] a_addr = w_en ? w_addr : s_addr;\n"
    "  always @(posedge clk) begin\n"
    "    if (w_en) mem[a_addr] <= w_data;\n"
    "    else if (s_en) s_data <= mem[a_addr];\n"
    "  end\n"
    "  always @(posedge clk) begin\n"
    "    if (r_en & ~w_en) r_data <= mem[r_addr];\n"
    "  end\n")

#: The memory modules, by name.
MODULES = {MODULE: VERILOG, MODULE_2R: VERILOG_2R}


def address_width(depth):
    """Address bits of a memory of ``depth`` words (at least one: Verilog has no empty vector)."""
    return max(1, (depth - 1).bit_length())


def verilog_sources(text=None):
    """``{file name: Verilog text}`` a design with these memories needs beside its own: the
    modules ``text`` (Verilog) places, or, without it, the one every design with a memory
    places."""
    import re

    names = [MODULE] if text is None else [
        name for name in MODULES if re.search(rf"^\s*{name}\b", text, re.M)]
    return {f"{name}.v": MODULES[name] for name in names}


class _Port:
    """A memory port's signals: ``addr``, ``data`` and ``en`` (as ``lib.memory``'s ports)."""

    def __init__(self, addr, data, en):
        self.addr, self.data, self.en = addr, data, en


class SimpleDualPortMemory(wiring.Component):
    """A memory of ``depth`` words of ``shape``, one write port and one read port.

    The read port is synchronous: ``r_data`` holds, from the cycle after ``r_en``, the word at
    ``r_addr`` as it was before any write of that cycle. It has the ports of
    ``lib.memory.Memory``'s ``write_port()`` and non-transparent ``read_port()``, as
    :meth:`write_port` and :meth:`read_port` (each may be taken once).

    Parameters
    ----------
    shape : shape-like
        Shape of a word (an ``int`` width or a ``lib.data`` layout).
    depth : int
        Words, at least 1.

    Attributes
    ----------
    w_en, w_addr, w_data : In
        Write port: ``w_data`` goes to ``w_addr`` at the clock edge when ``w_en``.
    r_en, r_addr, r_data : In, In, Out
        Read port: ``r_en`` (1 unless driven) loads ``r_data`` from ``r_addr``.
    """

    _module = MODULE
    _read_ports = ("r",)

    def __init__(self, *, shape, depth):
        check_int("depth", depth, 1)
        self.shape, self.depth = shape, depth
        self.width = Shape.cast(shape).width
        abits = address_width(depth)
        members = {"w_en": In(1), "w_addr": In(abits), "w_data": In(shape)}
        for p in self._read_ports:
            members.update({f"{p}_en": In(1, init=1), f"{p}_addr": In(abits),
                            f"{p}_data": Out(shape)})
        super().__init__(members)

    def write_port(self):
        return _Port(self.w_addr, self.w_data, self.w_en)

    def read_port(self):
        return _Port(self.r_addr, self.r_data, self.r_en)

    def elaborate(self, platform):
        m = Module()
        ports = {}
        for p in self._read_ports:
            ports.update({f"i_{p}_en": getattr(self, f"{p}_en"),
                          f"i_{p}_addr": getattr(self, f"{p}_addr"),
                          f"o_{p}_data": Value.cast(getattr(self, f"{p}_data"))})
        m.submodules.ram = Instance(
            self._module, p_WIDTH=self.width, p_DEPTH=self.depth, p_ABITS=len(self.w_addr),
            i_clk=ClockSignal(), i_w_en=self.w_en, i_w_addr=self.w_addr,
            i_w_data=Value.cast(self.w_data), **ports)
        return m


class TwoReadMemory(SimpleDualPortMemory):
    """A memory of ``depth`` words of ``shape`` with one write port and two read ports, for
    memories that are never read and written in the same cycle.

    Both read ports are synchronous: ``r_data`` (``s_data``) holds, from the cycle after
    ``r_en`` (``s_en``), the word at ``r_addr`` (``s_addr``). Neither reads in a cycle with
    ``w_en``: its data holds. The ``s`` port and the write port share one port of a
    true dual-port block RAM, so the memory takes the block RAMs of one with a single read
    port.

    Parameters
    ----------
    shape : shape-like
        Shape of a word.
    depth : int
        Words, at least 1.

    Attributes
    ----------
    w_en, w_addr, w_data : In
        Write port.
    r_en, r_addr, r_data : In, In, Out
        First read port (``r_en`` 1 unless driven).
    s_en, s_addr, s_data : In, In, Out
        Second read port (``s_en`` 1 unless driven).
    """

    _module = MODULE_2R
    _read_ports = ("r", "s")
