import pytest

from hw.topk_selector import TopKSelector

from configs import by_default_on


def test_passes_follow_width():
    assert TopKSelector(width=8, lanes=1, max_len=100).passes == 1
    assert TopKSelector(width=16, lanes=4, max_len=1 << 24).passes == 2
    assert TopKSelector(width=12, lanes=2, max_len=100).passes == 2


@pytest.mark.parametrize("width", range(2, 17))
def test_passes_are_goldens_rule(width):
    """The cycle model counts threshold passes with golden's rule, not the hardware's."""
    from golden.topk import threshold_passes

    assert TopKSelector(width=width, lanes=2, max_len=100).passes == threshold_passes(width)


def test_from_config():
    from golden.config import AccelConfig

    sel = TopKSelector.from_config(AccelConfig(width=16, topk_lanes=2, max_tensor_len=1000))
    assert (sel.width, sel.lanes, sel.max_len) == (16, 2, 1000)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"width": 1, "lanes": 1, "max_len": 8}, ValueError, "width must be at least 2, not 1"),
    ({"width": 8, "lanes": 0, "max_len": 8}, ValueError, "lanes must be at least 1, not 0"),
    ({"width": 8, "lanes": 1, "max_len": "x"}, TypeError, "max_len must be an integer, not 'x'"),
])
def test_parameters_are_validated(kwargs, error, message):
    with pytest.raises(error) as info:
        TopKSelector(**kwargs)
    assert str(info.value) == message


# The 16-bit selectors take two threshold passes: the longest simulations, so slow (and long on
# Icarus, which runs them several times slower).
@pytest.mark.parametrize("width, lanes", [
    (8, 1), (8, 4),
    # wider than the group window: N:M and kernel slices through the beat splitter
    pytest.param(8, 16, marks=by_default_on("verilator")),
    pytest.param(16, 1, marks=[pytest.mark.slow, by_default_on("verilator")]),
    pytest.param(16, 4, marks=[pytest.mark.slow, by_default_on("verilator")])])
def test_cocotb_against_golden(run_cocotb, width, lanes):
    params = {"width": width, "lanes": lanes, "max_len": 1 << 20}
    run_cocotb(TopKSelector(**params), toplevel="topk_selector",
               test_module="sim.testbenches.topk_selector",
               params={"selector": params, "random_cases": 12, "large_n": 0})


@pytest.mark.slow
def test_cocotb_long_tensor_at_full_rate(run_cocotb):
    """A few hundred thousand elements with no stalls: passes run at ``lanes`` per cycle."""
    params = {"width": 8, "lanes": 4, "max_len": 1 << 20}
    run_cocotb(TopKSelector(**params), toplevel="topk_selector",
               test_module="sim.testbenches.topk_selector", testcase="long_tensor_full_rate",
               params={"selector": params, "random_cases": 0, "large_n": 300_000})


def test_formal_selector_stream_rules(prove):
    from sim.formal.topk_selector import TopKSelectorSpec

    prove(TopKSelectorSpec(width=4, lanes=2, max_len=15), name="topk_selector_w4l2", depth=6)
