import pytest

from golden import budgets

RESNETISH = [(64, 3, 7, 7), (64, 64, 3, 3), (128, 64, 3, 3), (256, 128, 3, 3), (512, 256, 3, 3),
             (1000, 512)]


def test_uniform():
    assert budgets.uniform_densities(RESNETISH, 0.2) == [0.2] * 6
    d = budgets.uniform_densities(RESNETISH, 0.2, first_layer_dense=True)
    assert d == [1.0] + [0.2] * 5


@pytest.mark.parametrize("density", [0.05, 0.1, 0.2, 0.5])
def test_erk_hits_global_budget_and_caps_at_one(density):
    d = budgets.erk_densities(RESNETISH, density)
    assert all(0 < v <= 1 for v in d)
    assert budgets.global_density(RESNETISH, d) == pytest.approx(density, rel=1e-9)


def test_erk_ratios_follow_the_rule():
    d = budgets.erk_densities(RESNETISH, 0.1)
    free = [i for i, v in enumerate(d) if v < 1]
    raws = [sum(s) / __import__("math").prod(s) for s in RESNETISH]
    eps = [d[i] / raws[i] for i in free]
    assert max(eps) == pytest.approx(min(eps))


def test_erk_makes_small_layer_dense_and_rescales():
    shapes = [(4, 1, 3, 3), (256, 256, 3, 3)]
    d = budgets.erk_densities(shapes, 0.5)
    assert d[0] == 1.0
    assert budgets.global_density(shapes, d) == pytest.approx(0.5)


def test_erk_forced_dense_layers():
    d = budgets.erk_densities(RESNETISH, 0.2, dense_layers=[0])
    assert d[0] == 1.0
    assert budgets.global_density(RESNETISH, d) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="exceed the global density budget"):
        budgets.erk_densities([(100, 100), (1, 1)], 0.1, dense_layers=[0])
