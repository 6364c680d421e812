"""The FPGA families, parts and boards the flows know: one table, one module per family.

A family module (:mod:`.ecp5`, :mod:`.ice40`, :mod:`.nexus`, :mod:`.gowin`) defines
``FAMILY`` (a :class:`~.spec.Family`), ``TARGETS`` (its :class:`~.spec.Target` parts for
``--synth``), ``BOARDS`` (its :class:`~.spec.Board` boards for ``--board``) and ``PRESETS``
(its :class:`~.spec.Preset` configurations for ``--preset``). A new part, board or preset is
one entry in its family's module; a new family is one module, listed in
``_FAMILY_MODULES``. A family may have no part yet: its block RAM still counts in the manifest,
and :mod:`rtl_gen.yosys` synthesises for it.
"""

from . import ecp5, gowin, ice40, nexus
from .spec import CELL_KINDS, RESOURCES, Board, Family, Preset, Target

__all__ = ["FAMILIES", "TARGETS", "BOARDS", "PRESETS", "RESOURCES", "CELL_KINDS", "Family",
           "Target", "Board", "Preset", "default_freq_help"]

_FAMILY_MODULES = (ecp5, ice40, nexus, gowin)

#: family name -> :class:`Family`
FAMILIES = {module.FAMILY.name: module.FAMILY for module in _FAMILY_MODULES}
#: ``--synth`` name -> :class:`Target`, in the order help texts list them
TARGETS = {target.name: target for module in _FAMILY_MODULES for target in module.TARGETS}
#: ``--board`` name -> :class:`Board`
BOARDS = {board.name: board for module in _FAMILY_MODULES for board in module.BOARDS}
#: ``--preset`` name -> :class:`Preset`
PRESETS = {preset.name: preset for module in _FAMILY_MODULES for preset in module.PRESETS}


def default_freq_help():
    """The default timing targets for a help text: ``125 on ECP5, 30 on iCE40, ...``."""
    by_family = {}
    for target in TARGETS.values():
        by_family.setdefault(target.family.title, []).append(f"{target.default_mhz:g}")
    return ", ".join(f"{'/'.join(dict.fromkeys(mhz))} on {title}"
                     for title, mhz in by_family.items())
