"""pytest options for the simulation tests.

* ``--sim icarus,verilator`` (or ``SWAT_SIM``): simulators the cocotb tests run on; both by
  default. A simulator that is not installed is skipped with the reason, except under CI
  (``CI`` set), where it is an error: CI must run both.
* ``--waves`` (or ``SWAT_WAVES=1``): dump waveforms; the run folder is printed on failure.
* ``--seed N`` (or ``SWAT_SEED``): cocotb's random seed (default 1, so runs repeat).

Tests marked ``slow`` (synthesis, place and route, long proofs and simulations) are left out by
``python -m pytest -n auto -m "not slow"``, the fast loop.

* ``--long`` (or ``SWAT_LONG=1``): also run the tests marked ``long``, left out otherwise: the
  rest of the end-to-end matrix (more layers and both simulators for whole training steps, the
  bitstreams of every board). ``@pytest.mark.long(simulator="icarus")`` marks only that
  simulator's instance of a test; ``configs.by_default_on("verilator")`` is that mark, read
  the other way round.
"""

import os

import pytest

from sim import runner


def pytest_addoption(parser):
    group = parser.getgroup("swat-accel simulation")
    group.addoption("--sim", default=os.environ.get("SWAT_SIM", ",".join(runner.SIMULATORS)),
                    help="comma-separated simulators for cocotb tests (icarus, verilator)")
    group.addoption("--waves", action="store_true",
                    default=os.environ.get("SWAT_WAVES", "") not in ("", "0"),
                    help="dump waveforms (FST with Icarus, VCD with Verilator)")
    group.addoption("--seed", type=int, default=int(os.environ.get("SWAT_SEED", "1")),
                    help="random seed for cocotb testbenches (default 1)")
    group.addoption("--long", action="store_true",
                    default=os.environ.get("SWAT_LONG", "") not in ("", "0"),
                    help="also run the tests marked long (the whole end-to-end matrix)")


def _simulators(config):
    names = [s.strip() for s in config.getoption("--sim").split(",") if s.strip()]
    for name in names:
        if name not in runner.SIMULATORS:
            raise pytest.UsageError(
                f"--sim: unknown simulator {name!r}; choose from {', '.join(runner.SIMULATORS)}")
    return names


def pytest_generate_tests(metafunc):
    if "simulator" in metafunc.fixturenames:
        metafunc.parametrize("simulator", _simulators(metafunc.config))


def _is_long(item):
    marker = item.get_closest_marker("long")
    if marker is None:
        return False
    only = marker.kwargs.get("simulator")
    params = getattr(item, "callspec", None)
    return only is None or (params is not None and params.params.get("simulator") == only)


def pytest_collection_modifyitems(config, items):
    if config.getoption("--long"):
        return
    long_items = [item for item in items if _is_long(item)]
    if long_items:
        config.hook.pytest_deselected(items=long_items)
        items[:] = [item for item in items if not _is_long(item)]


@pytest.fixture
def simulator(request):
    name = request.param
    reason = runner.simulator_missing(name)
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run {name}: {reason}")
        pytest.skip(reason)
    return name


@pytest.fixture
def run_cocotb(request, simulator):
    """``run_cocotb(component, toplevel=..., test_module=..., params=...)`` on this simulator."""
    config = request.config

    def run(component, **kwargs):
        kwargs.setdefault("waves", config.getoption("--waves"))
        kwargs.setdefault("seed", config.getoption("--seed"))
        run_dir = runner.run_cocotb(component, simulator=simulator, **kwargs)
        if kwargs["waves"]:
            print(f"waveforms in {run_dir}")
        return run_dir

    return run


@pytest.fixture
def prove():
    """``prove(spec, name=..., depth=...)``: a SymbiYosys proof, skipped if tools are missing."""
    from sim import formal

    reason = formal.formal_tools_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run formal proofs: {reason}")
        pytest.skip(reason)
    return formal.prove
