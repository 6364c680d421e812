"""The compressed-activation buffer: SWAT's saved sparse activations, stored compressed on chip.

:class:`ActivationBuffer` joins its parts, one module each: :class:`TensorTable` (descriptors
and stack allocation), :class:`TensorWriter` (the write path), :class:`RowScan` (row reads and
a column read's first pass, with :class:`LanePick` and :class:`BeatStage`) and
:class:`ElementWalk` (column and dense reads), all sized by one :class:`BufferGeometry`.
"""

from .beat_stage import BeatStage
from .buffer import ActivationBuffer, ActOp
from .geometry import BufferGeometry, MemoryWriteSignature
from .lane_pick import LanePick
from .row_scan import RowScan
from .table import TensorTable
from .walk import ElementWalk
from .writer import TensorWriter

__all__ = ["ActOp", "ActivationBuffer", "BeatStage", "BufferGeometry", "ElementWalk", "LanePick",
           "MemoryWriteSignature", "RowScan", "TensorTable", "TensorWriter"]
