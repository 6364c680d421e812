"""How many block RAMs a memory takes on each FPGA family.

Each family's block RAM can be configured as one of a few ``(depth, width)`` shapes; a memory of
``depth`` words of ``width`` bits built from one shape takes ``ceil(depth / d) * ceil(width /
w)`` of them, and synthesis picks the cheapest shape (it may also build a small memory from
LUTs instead; these counts are for block RAM).
"""

__all__ = ["FAMILIES", "block_rams"]

#: family -> (primitive, its (depth, width) shapes)
FAMILIES = {
    "ecp5": ("DP16KD", ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))),
    "ice40": ("SB_RAM40_4K", ((2048, 2), (1024, 4), (512, 8), (256, 16))),
}


def block_rams(family, width, depth):
    """Block RAMs of ``family`` one ``width`` x ``depth`` memory takes."""
    _, shapes = FAMILIES[family]
    return min(-(-depth // d) * -(-width // w) for d, w in shapes)
