"""The compressed-activation buffer: SWAT's saved sparse activations, stored compressed on chip.

:class:`ActivationBuffer` joins its parts, one module each: :class:`TensorTable` (descriptors
and stack allocation), :class:`TensorWriter` (the write path), :class:`RowScan` (row reads and
a column read's first pass, with :class:`LanePick` and :class:`BeatStage`),
:class:`ElementWalk` (column and dense reads), :class:`DirectoryBuilder` (directories of feature
maps) and :class:`SegmentWalk` and :class:`SegmentScan` (conv reads, the im2col rows built on
read), all sized by one :class:`BufferGeometry`.
"""

from .beat_stage import BeatStage
from .buffer import ActivationBuffer, ActOp
from .conv_scan import SegmentScan
from .conv_segments import SegmentWalk
from .directory import DirectoryBuilder
from .geometry import BufferGeometry, MemoryWriteSignature
from .lane_pick import LanePick
from .row_scan import RowScan
from .table import TensorTable
from .walk import ElementWalk
from .writer import TensorWriter

__all__ = ["ActOp", "ActivationBuffer", "BeatStage", "BufferGeometry", "DirectoryBuilder",
           "ElementWalk", "LanePick", "MemoryWriteSignature", "RowScan", "SegmentScan",
           "SegmentWalk", "TensorTable", "TensorWriter"]
