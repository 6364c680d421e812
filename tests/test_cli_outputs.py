"""Command lines a user can trust: an output path that cannot be written is refused in one line
before any work starts, errors name the flag the user typed, and help texts are plain text."""

import os
import re
import time

import pytest

from cli_run import run_module

from golden.outputs import OutputPathError, check_output_file, check_output_folder

#: (command, its output flag, "file" or "folder"). Flags that make a run short are not
#: needed: the check comes before any work, which the time limit below enforces.
OUTPUT_OPTIONS = [
    ("golden.train", "--json", "file"),
    ("sim.network", "--out", "folder"),
    ("sim.bench", "--json", "file"),
    ("sim.bench_topk", "--json", "file"),
    ("sim.bench_act_buffer", "--json", "file"),
]
#: Seconds a refusal may take: starting Python and importing the command, no more.
QUICK = 30


def _bad_paths(tmp_path, kind):
    """(path, exit status) pairs the command must refuse."""
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder\n")
    name = "out.json" if kind == "file" else "results"
    paths = [
        ("", 2),                                   # empty: a usage error
        (str(a_file / name), 1),                   # under a regular file
        (f"/proc/swat-accel-{os.getpid()}/{name}", 1),  # a folder that cannot be created
    ]
    if kind == "folder":
        paths.append((str(a_file), 1))             # a file where a folder is needed
    else:
        paths.append((str(tmp_path), 1))           # a folder where a file is needed
    return paths


@pytest.mark.parametrize("module, flag, kind", OUTPUT_OPTIONS)
def test_unwritable_outputs_are_refused_at_once(tmp_path, module, flag, kind):
    for path, status in _bad_paths(tmp_path, kind):
        start = time.monotonic()
        result = run_module(module, f"{flag}={path}", cwd=tmp_path)
        seconds = time.monotonic() - start
        lines = result.stderr.strip().splitlines()
        assert result.returncode == status, (path, result.stderr)
        assert len(lines) == 1 and lines[0].startswith(f"error: {flag}"), (path, lines)
        assert "Traceback" not in result.stderr
        assert result.stdout == "", (path, result.stdout)
        assert seconds < QUICK, (path, seconds)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
@pytest.mark.parametrize("module, flag, kind", OUTPUT_OPTIONS)
def test_read_only_folders_are_refused(tmp_path, module, flag, kind):
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        target = folder / ("out.json" if kind == "file" else "results")
        result = run_module(module, f"{flag}={target}", cwd=tmp_path)
    finally:
        folder.chmod(0o755)
    assert result.returncode == 1
    assert result.stderr.strip().startswith(f"error: {flag}: cannot ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_folders_are_created_and_existing_files_kept(tmp_path):
    check_output_file(str(tmp_path / "new" / "deeper" / "out.json"), "--json")
    assert (tmp_path / "new" / "deeper").is_dir()
    assert not (tmp_path / "new" / "deeper" / "out.json").exists()
    existing = tmp_path / "old.json"
    existing.write_text("kept")
    check_output_file(str(existing), "--json")
    assert existing.read_text() == "kept"
    check_output_folder(str(tmp_path / "results"), "--out")
    assert (tmp_path / "results").is_dir()
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == []


@pytest.mark.parametrize("check, path, message", [
    (check_output_file, "", "--json must name a file, not an empty string"),
    (check_output_folder, "", "--out must name a folder, not an empty string"),
    (check_output_folder, "/proc/self/status/x",
     "--out: cannot create folder '/proc/self/status/x': Not a directory"),
])
def test_messages_name_the_flag(check, path, message):
    flag = message.split()[0].rstrip(":")
    with pytest.raises(OutputPathError, match=re.escape(message)):
        check(path, flag)


@pytest.mark.parametrize("module, args, message", [
    ("sim.network", ["--width", "1"], "--width must be between 2 and 16, not 1"),
    ("sim.network", ["--topk-lanes", "3"], "--topk-lanes must be a power of two, not 3"),
    ("sim.network", ["--topk-lanes", "32"], "--topk-lanes must be between 0 and 16, not 32"),
    ("sim.network", ["--sweep-pes", "4x4,abc"],
     "--sweep-pes must be ROWSxCOLS with positive integers, like 16x16, not 'abc'"),
    ("sim.network", ["--sweep-pes", "0x4"], "--sweep-pes rows must be between 1 and 64, not 0"),
    ("sim.swat_step", ["--layer", "linear:2x2", "--width", "17"],
     "--width must be between 2 and 16, not 17"),
    ("sim.bench", ["--pe", "8x8,abc"],
     "--pe must be ROWSxCOLS with positive integers, like 16x16, not 'abc'"),
    ("sim.bench_act_buffer", ["--lanes", "3"], "--lanes must be a power of two, not 3"),
    ("sim.bench_act_buffer", ["--scan-bits", "3"], "--scan-bits must be at least --lanes (4), not 3"),
    ("sim.bench_act_buffer", ["--scan-bits", "12"],
     "--scan-bits must be a power of two no smaller than the selector's lanes (4), not 12"),
    ("sim.bench_act_buffer", ["--lanes", "32"], "--lanes must be at most 16, not 32"),
    ("golden.train", ["--width", "1"], "--width must be between 2 and 16, not 1"),
    ("sim.model_vs_bench", ["missing.json"],
     "cannot read 'missing.json': No such file or directory"),
])
def test_errors_name_the_flag_the_user_typed(tmp_path, module, args, message):
    result = run_module(module, *args, cwd=tmp_path)
    assert result.returncode in (1, 2)
    assert result.stderr.strip() == f"error: {message}"


COMMANDS = ["golden.train", "sim.network", "sim.swat_step", "sim.bench", "sim.bench_topk",
            "sim.bench_act_buffer", "sim.bench_generate", "sim.bench_logic_product",
            "sim.model_vs_bench"]
#: reStructuredText a terminal would show literally: ``literals`` and :role:`targets`.
MARKUP = re.compile(r"``|:(?:func|mod|class|meth|attr|data|ref|doc):`")


@pytest.mark.parametrize("module", COMMANDS)
def test_help_is_plain_text(tmp_path, module):
    result = run_module(module, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: python -m {module}")
    assert not MARKUP.search(result.stdout), MARKUP.search(result.stdout).group()
