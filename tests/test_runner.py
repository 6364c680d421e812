"""sim.runner's cache pruning: folders unused for the given days go, recent and locked ones
stay."""

import fcntl
import os

from sim.runner import prune_cache


def test_prune_cache_removes_only_old_unlocked_folders(tmp_path):
    now = 1_000_000_000.0
    day = 86400

    def folder(name, used_days_ago, stamp=True, locked=False):
        path = tmp_path / name
        path.mkdir()
        (path / "build.log").write_text("x")
        target = path / "built.stamp" if stamp else path
        if stamp:
            target.write_text("key")
        (path / ".lock").write_text("")
        os.utime(target, (now - used_days_ago * day, now - used_days_ago * day))
        return path

    old = folder("old", 3)
    recent = folder("recent", 1)
    old_no_stamp = folder("old_no_stamp", 5, stamp=False)
    held = folder("held", 4)
    # A build whose folder is old but whose stamp was touched recently (reused) stays.
    reused = folder("reused", 0.5)
    os.utime(reused, (now - 9 * day, now - 9 * day))
    with open(held / ".lock") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        prune_cache(tmp_path, 2, now=now)
    assert not old.exists() and not old_no_stamp.exists()
    assert recent.exists() and held.exists() and reused.exists()
