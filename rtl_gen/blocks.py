"""The blocks inside the generated accelerator top, each built from the one configuration
object (the manifest lists them; ``rtl_gen.synth`` reports area per block)."""

import dataclasses

from hw.act_buffer import ActivationBuffer
from hw.pe_array import SparsePEArray
from hw.topk_selector import TopKSelector

__all__ = ["Block", "available_blocks", "port_table"]


@dataclasses.dataclass(frozen=True)
class Block:
    name: str
    instance: str      # its instance name in the top
    description: str
    cls: type          # its component class, built with ``cls.from_config(config)``

    def build(self, config):
        return self.cls.from_config(config)


def available_blocks():
    return [
        Block("topk_selector", "selector",
              "streaming top-K selector: exact threshold, sparsify-and-compress, N:M, "
              "structured",
              TopKSelector),
        Block("act_buffer", "act_buffer",
              "compressed-activation buffer: bitmap plus packed values, row/column/dense reads",
              ActivationBuffer),
        Block("pe_array", "pe_array",
              "sparse PE array: compressed sparse rows x dense tiles, load-balanced, "
              "dense / sparse / N:M modes, counters",
              SparsePEArray),
    ]


def port_table(component):
    """``[(verilog_name, direction, width)]`` of a component's ports, clock and reset first."""
    from amaranth.hdl import Value
    from amaranth.lib.wiring import Flow

    ports = [("clk", "input", 1), ("rst", "input", 1)]
    for path, member, value in component.signature.flatten(component):
        direction = "input" if member.flow == Flow.In else "output"
        ports.append(("__".join(str(p) for p in path), direction, len(Value.cast(value))))
    return ports
