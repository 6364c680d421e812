"""How many block RAMs a memory takes on each FPGA family.

Each family's block RAM can be configured as one of a few ``(depth, width)`` shapes
(:attr:`rtl_gen.targets.Family.block_ram_shapes`); a memory of ``depth`` words of ``width``
bits built from one shape takes ``ceil(depth / d) * ceil(width / w)`` of them, and synthesis
picks the cheapest shape (it may also build a small memory from LUTs instead; these counts are
for block RAM).
"""

from .targets import FAMILIES

__all__ = ["block_rams"]


def block_rams(family, width, depth):
    """Block RAMs of ``family`` one ``width`` x ``depth`` memory takes."""
    shapes = FAMILIES[family].block_ram_shapes
    return min(-(-depth // d) * -(-width // w) for d, w in shapes)
