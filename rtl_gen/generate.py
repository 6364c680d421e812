"""Write the Verilog and the JSON manifest of one configuration."""

import json
import pathlib

from golden.config import AccelConfig

from amaranth.hdl import Signal

from .block_ram import block_rams
from .fusesoc import CORE_FILENAME, core_file
from .blocks import available_blocks, port_table
from hw import hierarchy
from hw.pe_dense_loader import dense_word_bits
from hw.pe_job import bank_depth

from .targets import FAMILIES
from .verilog import prefix_modules, to_verilog

__all__ = ["generate", "memories", "MANIFEST_NAME"]

MANIFEST_NAME = "manifest.json"


def memories(accel):
    """The accelerator's on-chip memories: ``[{name, width, depth, copies, bits, block_rams}]``,
    ``bits`` over all copies, ``block_rams`` per FPGA family (:data:`rtl_gen.targets.FAMILIES`)
    over all copies."""
    act, pe, sel = accel.act_buffer, accel.pe_array, accel.selector
    radix = sel.radix
    shapes = [
        ("act_buffer_bitmap", act.word_bits, act.bitmap_words, 1),
        ("act_buffer_values", act.lanes * act.width, act.value_words, 1),
        ("act_buffer_cursors", len(Signal(range(act.value_words * act.lanes + 1))), act.max_rows,
         1),
        # only with the conv read (``act_conv_read``)
        *([("act_buffer_directory", act.geometry.directory_entry_bits,
            act.geometry.directory_words, 1)] if act.conv_read else []),
        # two halves, one job each
        ("pe_array_banks", pe.word_layout.size, bank_depth(pe.bank_words), pe.rows),
        # one copy per PE row (each PE row reads its own dense row every cycle)
        # (a word holds ``dense_rows`` rows when the dense port carries several a beat)
        ("pe_array_dense_tiles", pe.cols * pe.dense_rows * pe.width,
         2 << dense_word_bits(pe.depth_bits, pe.dense_rows), pe.rows),
        ("topk_histograms", radix.count_width, radix.bins, sel.lanes),
    ]
    return [{"name": name, "width": width, "depth": depth, "copies": copies,
             "bits": width * depth * copies,
             "block_rams": {family: copies * block_rams(family, width, depth)
                            for family in FAMILIES}}
            for name, width, depth, copies in shapes]


def block_module(config, block):
    """The Verilog module of ``block`` (a :class:`rtl_gen.blocks.Block`) in the top of
    ``config``: each block is a module of its own (:func:`hw.hierarchy.instantiate`)."""
    name = hierarchy.module_name(block.cls, block.cls.params_from_config(config))
    return prefix_modules(name, config.top_name)


def generate(config: AccelConfig, out_dir, *, step=lambda text: None):
    """Emit the accelerator of ``config`` into ``out_dir``: ``<top_name>.v``, the manifest and
    the FuseSoC core (:mod:`rtl_gen.fusesoc`); return the manifest dict.

    Output is deterministic: the same configuration gives byte-identical files wherever it
    runs, with no absolute paths, source locations or dates inside.

    Raises
    ------
    golden.config.ConfigError
        If the configuration cannot work (:func:`hw.top.check_config`).
    """
    from hw.top import SwatAccel

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)  # before the work: a folder we cannot make fails now
    step("elaborating the design")
    accel = SwatAccel(config)
    step("converting it to Verilog (Amaranth's back end and Yosys)")
    text = to_verilog(accel, config.top_name)
    step("writing the Verilog and the manifest")
    filename = f"{config.top_name}.v"
    (out / filename).write_text(text)
    manifest = {
        "generator": "swat-accel rtl_gen",
        "config": config.to_dict(),
        "derived": config.derived(),
        "memories": memories(accel),
                "top": {
            "module": config.top_name,
            "file": filename,
            "ports": [{"name": n, "direction": d, "width": w} for n, d, w in port_table(accel)],
        },
        "blocks": [{"name": block.name, "instance": f"{config.top_name}.{block.instance}",
                    "module": block_module(config, block), "description": block.description}
                   for block in available_blocks()],
    }
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    (out / CORE_FILENAME).write_text(core_file(manifest))
    return manifest
