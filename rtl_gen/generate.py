"""Write the Verilog and the JSON manifest of one configuration."""

import json
import pathlib

from golden.config import AccelConfig
from sim.runner import to_verilog

from .blocks import available_blocks, port_table

__all__ = ["generate", "memory_sizes", "MANIFEST_NAME"]

MANIFEST_NAME = "manifest.json"


def memory_sizes(accel):
    """``{memory: bits}`` of an accelerator's on-chip memories."""
    cfg = accel.config
    act, pe, sel = accel.act_buffer, accel.pe_array, accel.selector
    word_bits = pe.word_layout.size
    return {
        "act_buffer_bitmap": act.bitmap_words * act.word_bits,
        "act_buffer_values": 2 * -(-act.value_words // 2) * act.lanes * act.width,
        "pe_array_banks": pe.rows * pe.bank_words * word_bits,
        # one copy per PE row (each PE row reads its own dense row every cycle)
        "pe_array_dense_tiles": pe.rows * (2 << pe.depth_bits) * pe.cols * pe.width,
        "topk_histograms": sel.lanes * (1 << 8) * (cfg.max_tensor_len.bit_length() + 1),
    }


def generate(config: AccelConfig, out_dir):
    """Emit the accelerator of ``config`` into ``out_dir``: ``<top_name>.v`` and the manifest;
    return the manifest dict.

    Output is deterministic: the same configuration gives byte-identical files wherever it
    runs, with no absolute paths, source locations or dates inside.

    Raises
    ------
    golden.config.ConfigError
        If the configuration cannot work (:func:`hw.top.check_config`).
    """
    from hw.top import SwatAccel

    accel = SwatAccel(config)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    filename = f"{config.top_name}.v"
    (out / filename).write_text(to_verilog(accel, config.top_name))
    manifest = {
        "generator": "swat-accel rtl_gen",
        "config": config.to_dict(),
        "derived": config.derived(),
        "memories_bits": memory_sizes(accel),
        "top": {
            "module": config.top_name,
            "file": filename,
            "ports": [{"name": n, "direction": d, "width": w} for n, d, w in port_table(accel)],
        },
        "blocks": [{"name": block.name, "module": f"{config.top_name}.{block.instance}",
                    "description": block.description} for block in available_blocks()],
    }
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
