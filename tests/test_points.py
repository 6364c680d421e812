"""rtl_gen.points: sweep points on Dask, with tasks that stand in for the flow (seconds)."""

import os
import time

import pytest

from configs import tiny_config as tiny

from rtl_gen.points import (SchedulerError, cache_point, cached_point, point_key, run_points)


def _square(x):
    return {"value": x * x}


def _dies_once(marker, x):
    """The first call kills its worker process mid-task, as a crash or a lost node would."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return {"value": x}


def _fails(x):
    raise RuntimeError(f"point {x} broke\nsecond line")


def _run(tasks, **kwargs):
    results, lines = [], []
    run_points(tasks, on_done=lambda name, result: results.append((name, result)),
               status=lines.append, **kwargs)
    return results, lines


def test_points_run_on_a_local_cluster_of_two_workers():
    results, lines = _run([(f"p{i}", (i,)) for i in range(5)], workers=2, function=_square)
    assert sorted(results) == [(f"p{i}", {"value": i * i}) for i in range(5)]
    assert lines[-1].startswith("[5 done, 0 running, 0 left]")


def test_a_worker_that_dies_mid_point_loses_nothing(tmp_path):
    marker = str(tmp_path / "died")
    results, _ = _run([("a", (marker, 1))], workers=2, function=_dies_once)
    assert os.path.exists(marker)  # the first attempt did die
    assert results == [("a", {"value": 1})]  # run again elsewhere, reported once


def test_a_failing_point_is_reported_in_one_line():
    results, _ = _run([("a", (3,))], workers=1, function=_fails)
    assert results == [("a", {"error": "RuntimeError: point 3 broke"})]


@pytest.mark.parametrize("address", ["not an address", "tcp://host-without-port", "tcp://:99"])
def test_a_malformed_scheduler_address_is_refused(address):
    with pytest.raises(SchedulerError, match="--scheduler must be an address such as "
                                             "tcp://HOST:8786"):
        _run([("a", (1,))], scheduler=address, function=_square)


def test_a_scheduler_that_does_not_answer_fails_in_seconds():
    start = time.monotonic()
    with pytest.raises(SchedulerError, match=r"--scheduler tcp://127.0.0.1:9: no Dask scheduler "
                                             r"answered within 10 s"):
        _run([("a", (1,))], scheduler="tcp://127.0.0.1:9", function=_square)
    assert time.monotonic() - start < 20


def test_the_key_follows_what_determines_a_point(monkeypatch, tmp_path):
    base = point_key(tiny(), "ecp5-25f", 50, 300)
    assert point_key(tiny(), "ecp5-25f", 50, 300) == base
    assert point_key(tiny(width=16), "ecp5-25f", 50, 300) != base
    assert point_key(tiny(), "ecp5-45f", 50, 300) != base
    assert point_key(tiny(), "ecp5-25f", 60, 300) != base
    assert point_key(tiny(), "ecp5-25f", 50, 0) != base


def test_cached_points_come_back_whole(monkeypatch, tmp_path):
    monkeypatch.setenv("SWAT_ACCEL_CACHE", str(tmp_path))
    assert cached_point("k") is None
    cache_point("k", {"report": {"fmax_mhz": 1.5}, "files": {"a.v": "x"}})
    assert cached_point("k") == {"report": {"fmax_mhz": 1.5}, "files": {"a.v": "x"}}
    assert [p.name for p in (tmp_path / "sweep_points").iterdir()] == ["k.json"]


def _generate_tiny(folder):
    from rtl_gen.generate import generate

    generate(tiny(), folder)
    return {"verilog": open(os.path.join(folder, "swat_accel.v")).read()}


def test_generation_works_inside_a_dask_worker(tmp_path):
    """A worker process is daemonic and may not start the conversion's worker processes:
    generation there converts in the worker itself, to the same text."""
    from rtl_gen.generate import generate

    generate(tiny(), tmp_path / "here")
    results, _ = _run([("a", (str(tmp_path / "there"),))], workers=1, function=_generate_tiny)
    assert results[0][1] == {"verilog": (tmp_path / "here" / "swat_accel.v").read_text()}


def test_the_local_cluster_stops_with_the_run():
    """The local cluster's worker processes end with the run (in a long-lived process such as
    a test session, a cluster left behind would keep its workers running)."""
    import time

    import psutil

    def workers():
        return [p for p in psutil.Process().children(recursive=True)
                if "resource_tracker" not in " ".join(p.cmdline())
                and p.status() != psutil.STATUS_ZOMBIE]

    before = {p.pid for p in workers()}
    results, _ = _run([("a", (2,))], workers=2, function=_square)
    assert results == [("a", {"value": 4})]
    deadline = time.monotonic() + 20
    while [p for p in workers() if p.pid not in before] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [p.pid for p in workers() if p.pid not in before] == []
