"""Per-layer density budgets: SWAT-U (uniform) and SWAT-ERK (RigL's Erdos-Renyi-Kernel rule).

Layers are given by their weight shapes: ``(out, in)`` for linear layers and
``(out, in, kh, kw)`` for convolutions.
"""

import numpy as np

from .topk import density_fraction

__all__ = ["uniform_densities", "erk_densities", "global_density"]


def _check_shapes(shapes):
    shapes = [tuple(int(d) for d in s) for s in shapes]
    if not shapes:
        raise ValueError("a budget needs at least one layer")
    for s in shapes:
        if len(s) < 1 or any(d < 1 for d in s):
            raise ValueError(f"layer shape must have positive dimensions, not {s}")
    return shapes


def uniform_densities(shapes, density, *, first_layer_dense=False):
    """SWAT-U: the same density in every layer.

    With ``first_layer_dense`` the first layer keeps density 1 (SWAT's shipped configurations
    keep the first conv dense) and the others keep ``density``; the global density is then
    slightly above ``density``, as in SWAT.
    """
    shapes = _check_shapes(shapes)
    density = float(density_fraction(density))
    out = [density] * len(shapes)
    if first_layer_dense:
        out[0] = 1.0
    return out


def erk_densities(shapes, density, *, dense_layers=()):
    """SWAT-ERK: RigL's Erdos-Renyi-Kernel densities for a global ``density``.

    Layer ``i`` gets ``eps * sum(shape_i) / prod(shape_i)``, with ``eps`` chosen so that the
    kept weights add up to ``density`` of all weights. A layer whose density would exceed 1 is
    made dense (the one with the largest ratio first) and ``eps`` is solved again for the rest,
    so the global budget still holds. Layers listed in ``dense_layers`` are dense from the start.

    Raises
    ------
    ValueError
        If the layers forced dense already exceed the global budget.
    """
    shapes = _check_shapes(shapes)
    target = float(density_fraction(density))
    sizes = np.array([np.prod(s, dtype=np.float64) for s in shapes])
    raw = np.array([sum(s) for s in shapes], dtype=np.float64) / sizes
    dense = set(int(i) for i in dense_layers)
    budget = target * sizes.sum()
    while True:
        free = [i for i in range(len(shapes)) if i not in dense]
        remaining = budget - sum(sizes[i] for i in dense)
        if remaining < -1e-9 * budget:
            raise ValueError("the layers kept dense exceed the global density budget")
        if not free:
            break
        eps = remaining / sum(raw[i] * sizes[i] for i in free)
        over = [i for i in free if eps * raw[i] > 1.0]
        if not over:
            break
        dense.add(max(over, key=lambda i: raw[i]))
    return [1.0 if i in dense else float(eps * raw[i]) for i in range(len(shapes))]


def global_density(shapes, densities):
    """Fraction of all weights kept, given each layer's density."""
    shapes = _check_shapes(shapes)
    sizes = np.array([np.prod(s, dtype=np.float64) for s in shapes])
    return float((sizes * np.asarray(densities, dtype=np.float64)).sum() / sizes.sum())
