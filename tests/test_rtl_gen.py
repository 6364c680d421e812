import json

import pytest

from cli_run import ROOT, run_module
from configs import ONE_PE, TINY, config_flags

from sim import runner


def run_gen(*args, cwd):
    return run_module("rtl_gen", *args, cwd=cwd)


def test_main_job_emits_the_top_and_manifest(tmp_path):
    result = run_gen("--pe", "16x16", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "rtl_out" / "swat_accel_16x16_w8"
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "swat_accel.core",
                                                     "swat_accel.v"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["pe_rows"] == 16 and manifest["derived"]["acc_width"] == 24
    memories = {m["name"]: m for m in manifest["memories"]}
    bitmap = memories["act_buffer_bitmap"]
    assert bitmap["bits"] == 1 << 20 == bitmap["width"] * bitmap["depth"]
    # 32768 words of 32 bits: 64 DP16KD (ECP5) or DP16K (Nexus) of 512x36, or 256 SB_RAM40_4K
    # of 256x16 in pairs
    assert bitmap["block_rams"] == {"ecp5": 64, "ice40": 256, "nexus": 64, "gowin": 64}
    tiles = memories["pe_array_dense_tiles"]
    assert tiles["copies"] == 16 and tiles["bits"] == 16 * tiles["width"] * tiles["depth"]
    text = (out / "swat_accel.v").read_text()
    assert "module swat_accel(" in text
    for port in manifest["top"]["ports"]:
        assert port["name"] in text
    for block in manifest["blocks"]:
        # each block is a module of its own, instantiated once under its instance name
        assert text.count(f"module {block['module']}(") == 1
        assert f"  {block['module']} {block['instance'].split('.')[-1]} (" in text
    assert "swat_accel.v: module swat_accel" in result.stdout
    assert "block RAMs if every memory maps to them: ecp5 " in result.stdout


def test_output_is_deterministic_and_has_no_paths(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b" / "deeper"
    b.mkdir(parents=True)
    a.mkdir()
    for cwd in (a, b):
        assert run_gen("--pe", "4x8", "--width", "16", "--out", "gen", cwd=cwd).returncode == 0
    files = sorted(p.name for p in (a / "gen").iterdir())
    assert files == sorted(p.name for p in (b / "gen").iterdir())
    for name in files:
        data = (a / "gen" / name).read_bytes()
        assert data == (b / "gen" / name).read_bytes()
        assert str(tmp_path).encode() not in data and ROOT.encode() not in data


@pytest.mark.parametrize("args, message", [
    (["--pe", "0x4"], "error: --pe rows must be between 1 and 64, not 0"),
    (["--pe", "16"], "error: --pe must be ROWSxCOLS with positive integers, like 16x16, not '16'"),
    (["--pe", "axb"], "error: --pe must be ROWSxCOLS with positive integers, like 16x16, not 'axb'"),
    (["--pe", "-2x2"], "error: --pe must be ROWSxCOLS with positive integers, like 16x16, not '-2x2'"),
    (["--pe", "1000x1000"], "error: --pe rows must be between 1 and 64, not 1000"),
    (["--width", "0"], "error: --width must be between 2 and 16, not 0"),
    (["--width", "99"], "error: --width must be between 2 and 16, not 99"),
    (["--top-name", "1bad"], "error: --top-name must be a Verilog identifier, not '1bad'"),
    (["--bogus"], "error: unrecognized arguments: --bogus"),
    (["--topk-lanes", "3"], "error: --topk-lanes must be a power of two, not 3"),
    (["--act-tensors", "0"], "error: --act-tensors must be between 1 and 64, not 0"),
    (["--act-conv-read", "2"], "error: --act-conv-read must be between 0 and 1, not 2"),
    (["--pe-sparse-lanes", "2"],
     "error: --pe-sparse-lanes (2) must be at least the selector's lanes (16): the PE array takes the "
     "selector's beats whole"),
    (["--pe-dense-lanes", "3"], "error: --pe-dense-lanes must divide pe_cols (16) or be pe_cols times 2, 4 "
     "or 8, not 3"),
    (["--pe", "4x4", "--pe-result-lanes", "5"],
     "error: --pe-result-lanes must be between 0 and 4, not 5"),
])
def test_bad_flags_give_one_line_and_exit_2(tmp_path, args, message):
    result = run_gen(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == message
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("out, status, message", [
    ("", 2, "error: --out must name a folder, not an empty string"),
    ("a_file/gen", 1, "error: --out: cannot create folder 'a_file/gen': Not a directory"),
])
def test_bad_out_is_refused_before_generation(tmp_path, out, status, message):
    (tmp_path / "a_file").write_text("")
    result = run_gen("--pe", "2x2", "--out", out, cwd=tmp_path)
    assert result.returncode == status and result.stderr.strip().startswith(message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_help_lists_every_option_with_default(tmp_path):
    text = run_gen("--help", cwd=tmp_path).stdout
    for flag in ("--pe", "--width", "--tile-depth", "--topk-lanes", "--max-tensor-len",
                 "--top-name", "--out"):
        assert flag in text
    assert text.count("default") >= 7


@pytest.mark.parametrize("flags", [["--pe", "2x2", "--topk-lanes", "1"],
                                   ["--pe", "1x1", "--topk-lanes", "1"],
                                   ["--pe", "2x2", "--topk-lanes", "1", "--act-conv-read", "0"],
                                   ["--pe", "2x2", "--topk-lanes", "2", "--act-conv-words", "2",
                                    "--pe-sparse-lanes", "4"],
                                   config_flags(TINY), config_flags(ONE_PE)],
                         ids=["2x2", "1x1", "no-conv-read", "two-conv-words", "tiny",
                              "self-test"])
def test_emitted_verilog_lints_clean_with_verilator(tmp_path, flags):
    if runner.simulator_missing("verilator"):
        pytest.skip(runner.simulator_missing("verilator"))
    from rtl_gen.lint import lint

    # 1x1 makes every index one bit wide and every lane group a single PE row; the tiny
    # configuration's small capacities make narrow counts.
    assert run_gen(*flags, "--out", "gen", cwd=tmp_path).returncode == 0
    files = list((tmp_path / "gen").glob("*.v"))
    assert files
    for v in files:
        assert lint(v) == []


def test_lint_reports_disallowed_warnings(tmp_path):
    if runner.simulator_missing("verilator"):
        pytest.skip(runner.simulator_missing("verilator"))
    from rtl_gen.lint import lint

    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input a, output b);\n  wire c;\n  assign b = a;\nendmodule\n"
                   "module bad2(input [3:0] a, output b); assign b = a[4]; endmodule\n")
    assert any("SELRANGE" in line or "MULTITOP" in line for line in lint(bad))


def test_memory_inventory_follows_the_dense_rows_a_beat():
    from golden.config import AccelConfig
    from hw.top import SwatAccel
    from rtl_gen.generate import memories

    for lanes, shape in ((16, (128, 512)), (32, (256, 256)), (128, (1024, 64))):
        config = AccelConfig(pe_rows=16, pe_cols=16, pe_dense_lanes=lanes)
        tiles = {m["name"]: m for m in memories(SwatAccel(config))}["pe_array_dense_tiles"]
        assert (tiles["width"], tiles["depth"], tiles["copies"]) == (*shape, 16)


def test_memory_inventory_lists_the_directory_only_when_built():
    from configs import tiny_config
    from hw.top import SwatAccel
    from rtl_gen.generate import memories

    for conv_read in (1, 0):
        accel = SwatAccel(tiny_config(act_conv_read=conv_read))
        names = [m["name"] for m in memories(accel)]
        assert ("act_buffer_directory" in names) == bool(conv_read), names
        if conv_read:
            directory = memories(accel)[names.index("act_buffer_directory")]
            geometry = accel.act_buffer.geometry
            assert directory["depth"] == geometry.directory_words == -(-geometry.bitmap_words // 2)
