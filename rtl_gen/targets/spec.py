"""What describes an FPGA family, a part of it the synthesis flow targets, and a board.

Each family module (:mod:`rtl_gen.targets.ecp5`, ...) fills these in; the flows
(:mod:`rtl_gen.yosys`, :mod:`rtl_gen.synth`, :mod:`rtl_gen.board`, :mod:`rtl_gen.block_ram`)
read them and hold no per-family knowledge of their own.
"""

from dataclasses import dataclass, field
from typing import Mapping, Optional

__all__ = ["RESOURCES", "CELL_KINDS", "Family", "Target", "Board", "Preset"]

#: The resources a synthesis report counts (used and available) for every target.
RESOURCES = ("luts", "ffs", "dsps", "brams")
#: The cell kinds counted after Yosys synthesis: the resources and the carry cells.
CELL_KINDS = (*RESOURCES, "carry")


@dataclass(frozen=True)
class Family:
    """An FPGA family: its Yosys synthesis, its nextpnr, its block RAM and what amaranth-boards
    runs to build its bitstreams.

    Parameters
    ----------
    name : str
        Yosys's name for it: the synthesis command is ``synth_<name>``.
    title : str
        The vendor's name, for help texts.
    synth_options : tuple of str
        Options after ``synth_<name>`` (in the flow and in board builds).
    cells : mapping
        Each of :data:`CELL_KINDS` -> the Yosys cell types that count as it.
    cell_weights : mapping
        Cell type -> how many of its kind one cell counts for (1 if not listed).
    logic_cells : mapping
        Cell kind -> how many of the part's logic cells (its ``luts``) one cell of the kind
        takes: where a carry cell takes LUT sites of its own, the design needs its LUTs plus
        that many per carry cell.
    fallback_map_luts : str
        Yosys commands that map LUTs with ``abc`` in place of the script's ``map_luts`` step.
    lut_flows : tuple of str
        The LUT-mapping flows to try, in order: ``"abc9"`` (the synthesis script's own) and
        ``"abc"`` (with :attr:`fallback_map_luts`); see :func:`rtl_gen.yosys.run_synthesis`.
    nextpnr : str
        The nextpnr program.
    pnr_resources : mapping
        Each of :data:`RESOURCES` -> nextpnr's utilization name for it, or a tuple of names
        whose counts add up to it (each weighted as in :attr:`cell_weights`; the available
        count is the first name's).
    pnr_options : tuple of str
        Further nextpnr options: those that let the harness's I/O go without a site, where
        nextpnr has them.
    block_ram : str
        The block RAM primitive.
    block_ram_shapes : tuple of (int, int)
        Its ``(depth, width)`` configurations.
    board_tools : mapping
        Environment variable -> YoWASP program, for amaranth-boards (besides ``YOSYS``); empty
        if there is no board of this family.
    programmer : str or None
        The environment variable naming the programmer amaranth-boards looks for.
    bitstream_suffix : str or None
        The suffix of the bitstream amaranth-boards writes.
    pin_constraint : str or None
        Where the harness's I/O get sites (nextpnr needs one for every I/O, or the clock needs
        a dedicated clock input): one line of its constraints file, placing the harness's port
        ``{port}`` on the package pin ``{site}`` (each :attr:`Target.pins`); None where
        nextpnr places I/O itself.
    constraints_file : str or None
        The name of that file, written next to the netlist.
    constraints_args : tuple of str
        The nextpnr arguments that read it.
    """

    name: str
    title: str
    synth_options: tuple
    cells: Mapping[str, tuple]
    fallback_map_luts: str
    nextpnr: str
    pnr_resources: Mapping[str, str]
    pnr_options: tuple
    block_ram: str
    block_ram_shapes: tuple
    cell_weights: Mapping[str, int] = field(default_factory=dict)
    logic_cells: Mapping[str, int] = field(default_factory=lambda: {"luts": 1})
    lut_flows: tuple = ("abc9", "abc")
    board_tools: Mapping[str, str] = field(default_factory=dict)
    programmer: Optional[str] = None
    bitstream_suffix: Optional[str] = None
    pin_constraint: Optional[str] = None
    constraints_file: Optional[str] = None
    constraints_args: tuple = ()

    @property
    def synth_command(self):
        """The Yosys synthesis command, with its options: ``synth_ice40 -dsp``."""
        return " ".join((f"synth_{self.name}", *self.synth_options))


@dataclass(frozen=True)
class Target:
    """A part that ``python -m rtl_gen --synth NAME`` places and routes for.

    Parameters
    ----------
    name : str
        The ``--synth`` name.
    family : Family
    device_args : tuple of str
        nextpnr's arguments selecting the part, its package and speed grade.
    resources : mapping
        Each of :data:`RESOURCES` -> how many the part has (in Yosys's cell counts, checked
        before place and route).
    default_mhz : float
        The timing target when ``--freq`` is not given.
    pins : mapping
        Harness port (``clk``, ``rst``, ``si``, ``so``) -> package pin, for a family whose
        harness I/O get sites (:attr:`Family.pin_constraint`); empty otherwise.
    """

    name: str
    family: Family
    device_args: tuple
    resources: Mapping[str, int]
    default_mhz: float
    pins: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Board:
    """A board that ``python -m rtl_gen --board NAME`` builds the self-test's bitstream for.

    Parameters
    ----------
    name : str
        The ``--board`` name.
    platform : str
        Its amaranth-boards platform, ``module:Class``.
    family : Family
    """

    name: str
    platform: str
    family: Family


@dataclass(frozen=True)
class Preset:
    """A named configuration for one part: ``python -m rtl_gen --preset NAME``.

    Parameters
    ----------
    name : str
        The ``--preset`` name.
    target : str
        The ``--synth`` part it is made for.
    summary : str
        One line for the help text.
    options : mapping
        Command-line option (its ``argparse`` destination: ``pe``, a configuration field such
        as ``pe_lut_products``, ``router1_seconds``) -> value. Flags given on the command line
        override these.
    """

    name: str
    target: str
    summary: str
    options: Mapping[str, object]
