"""Write the Verilog and the JSON manifest of one configuration."""

import json
import pathlib

from golden.config import AccelConfig
from sim.runner import to_verilog

from .blocks import available_blocks, port_table

__all__ = ["generate", "MANIFEST_NAME"]

MANIFEST_NAME = "manifest.json"


def generate(config: AccelConfig, out_dir):
    """Emit every available block of ``config`` into ``out_dir``; return the manifest dict.

    Output is deterministic: the same configuration gives byte-identical files wherever it
    runs, with no absolute paths, source locations or dates inside.
    """
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    blocks = []
    for block in available_blocks():
        component = block.build(config)
        module = f"{config.top_name}_{block.name}"
        filename = f"{module}.v"
        (out / filename).write_text(to_verilog(component, module))
        blocks.append({
            "name": block.name,
            "module": module,
            "file": filename,
            "description": block.description,
            "ports": [{"name": n, "direction": d, "width": w} for n, d, w in port_table(component)],
        })
    manifest = {
        "generator": "swat-accel rtl_gen",
        "config": config.to_dict(),
        "derived": config.derived(),
        "top_available": False,
        "blocks": blocks,
    }
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
