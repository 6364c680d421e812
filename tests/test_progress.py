"""Progress on stderr (:class:`rtl_gen.progress.Progress`)."""

import io
import time

from rtl_gen.progress import Progress


def test_quick_jobs_say_nothing():
    stream = io.StringIO()
    with Progress("gen", stream=stream, after=5.0) as progress:
        progress.step("converting")
    assert stream.getvalue() == ""


def test_slow_jobs_name_each_step_with_the_time_so_far():
    stream = io.StringIO()
    with Progress("gen", stream=stream, after=0.0, every=60.0) as progress:
        progress.step("elaborating")
        progress.step("converting")
        time.sleep(0.6)  # the watcher does not repeat a step within ``every``
    lines = stream.getvalue().splitlines()
    assert [line.split(" (")[0] for line in lines] == ["gen: elaborating", "gen: converting"]
    assert all(line.endswith(" s)") for line in lines)


def test_a_long_step_is_repeated():
    stream = io.StringIO()
    with Progress("gen", stream=stream, after=0.0, every=0.3) as progress:
        progress.step("place and route")
        time.sleep(1.0)
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 2 and all(line.startswith("gen: place and route (") for line in lines)
