"""Progress of a long step on stderr: silent for quick runs, a line a step for slow ones."""

import sys
import threading
import time

__all__ = ["Progress"]


class Progress:
    """Say on ``stream`` which step is under way, with the time so far, once the job has run
    ``after`` seconds; then at each new step, and every ``every`` seconds within a step.

    Use as a context manager; :meth:`step` names the step under way.
    """

    def __init__(self, prog, *, stream=None, after=1.5, every=5.0):
        self.prog, self.stream, self.after, self.every = prog, stream or sys.stderr, after, every
        self._step, self._said, self._said_at = None, None, 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def step(self, text):
        with self._lock:
            self._step = text
        self._maybe_say()

    def _maybe_say(self):
        now = time.monotonic()
        with self._lock:
            elapsed = now - self._start
            if self._step is None or elapsed < self.after:
                return
            if self._step == self._said and now - self._said_at < self.every:
                return
            self._said, self._said_at = self._step, now
            print(f"{self.prog}: {self._step} ({elapsed:.1f} s)", file=self.stream, flush=True)

    def _watch(self):
        while not self._stop.wait(0.25):
            self._maybe_say()
