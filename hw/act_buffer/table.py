"""The descriptor table and stack allocator of the compressed-activation buffer."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["TensorTable"]


class TensorTable(wiring.Component):
    """Descriptors of the stored tensors, and the stack their words are allocated from.

    Tensors are stacked in the order written, each on whole words of the bitmap, value and
    directory memories above the one before (a tensor without a directory takes none of it). A commit stores a written tensor's descriptor under ``slot`` and pushes it:
    its words start at the stack's top, which moves past them. ``free`` marks the tensor of
    ``slot`` freed; ``pop`` releases the top tensor if it is freed, so that a tensor's space
    returns once every tensor written after it is released too.

    The descriptor of ``slot`` is registered onto ``desc``, so the table's multiplexer stays
    out of its readers' paths: it is loaded in the cycle after ``slot`` names a slot, and
    follows the table a cycle behind.

    Parameters
    ----------
    geometry : :class:`hw.act_buffer.BufferGeometry`

    Attributes
    ----------
    slot : Signal(range(max_tensors)), in
        The slot looked up onto ``desc``, committed to or freed.
    desc : Signal(descriptor_layout), out
        The descriptor of the previous cycle's ``slot``.
    desc_n : Signal, out
        Its ``n`` (``rows * cols``), in a register of its own.
    commit : In(stream.Signature(entry_layout, always_ready=True))
        Store the tensor ``payload`` under ``slot`` and push it.
    free : Signal, in
        Mark the tensor of ``slot`` freed.
    pop : Signal, in
        Release the top tensor if ``top_freed``.
    top_freed : Signal, out
        The stack holds a tensor, and the top one is freed.
    full : Signal, out
        Every slot holds a tensor.
    bitmap_top, value_top, directory_top : Signal, out
        The stack's top: the first free bitmap word, value word and directory entry.
    """

    def __init__(self, geometry):
        self.geometry = geometry
        desc = geometry.descriptor_layout
        super().__init__({
            "slot": In(geometry.slot_shape),
            "desc": Out(desc),
            "desc_n": Out(desc["n"].shape),
            "commit": In(stream.Signature(geometry.entry_layout, always_ready=True)),
            "free": In(1),
            "pop": In(1),
            "top_freed": Out(1),
            "full": Out(1),
            "bitmap_top": Out(desc["bitmap_base"].shape),
            "value_top": Out(desc["value_base"].shape),
            "directory_top": Out(desc["directory_base"].shape),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geometry
        slot, entry = self.slot, self.commit.payload
        bitmap_top, value_top, directory_top = self.bitmap_top, self.value_top, self.directory_top
        table = [Signal(g.descriptor_layout, name=f"slot{s}") for s in range(g.max_tensors)]
        stack = [Signal(g.slot_shape, name=f"stack{s}") for s in range(g.max_tensors)]
        depth = Signal(range(g.max_tensors + 1))
        # The stack's top slot, stack[depth - 1], in a register (a pop's descriptor is then one
        # mux away, not two), and the slot below it, which a pop moves there.
        top_slot = Signal(g.slot_shape)
        below_slot = Signal(g.slot_shape)
        with m.Switch(depth):
            for s in range(2, g.max_tensors + 1):
                with m.Case(s):
                    m.d.comb += below_slot.eq(stack[s - 2])
        m.d.comb += self.full.eq(depth == g.max_tensors)

        with m.Switch(slot):
            for s in range(g.max_tensors):
                with m.Case(s):
                    m.d.sync += [self.desc.eq(table[s]), self.desc_n.eq(table[s].n)]
            with m.Default():
                # A code past the last slot names no tensor (not the last one addressed).
                m.d.sync += [self.desc.eq(0), self.desc_n.eq(0)]

        with m.If(self.commit.valid):
            for s in range(g.max_tensors):
                with m.If(slot == s):
                    m.d.sync += [
                        table[s].valid.eq(1),
                        table[s].freed.eq(0),
                        table[s].bitmap_base.eq(bitmap_top),
                        table[s].value_base.eq(value_top),
                        table[s].directory_base.eq(directory_top),
                        # Without conv reads no tensor has a directory (such a write is
                        # refused), so the bit is a constant.
                        table[s].directory.eq(entry.directory if g.conv_read else 0),
                        table[s].rows.eq(entry.rows),
                        table[s].cols.eq(entry.cols),
                        table[s].n.eq(entry.n),
                        table[s].kept.eq(entry.kept),
                    ]
            for s in range(g.max_tensors):
                with m.If(depth == s):
                    m.d.sync += stack[s].eq(slot)
            m.d.sync += [
                depth.eq(depth + 1),
                top_slot.eq(slot),
                bitmap_top.eq(bitmap_top + entry.bitmap_words),
                value_top.eq(value_top + entry.value_words),
                directory_top.eq(directory_top + entry.directory_words),
            ]

        with m.If(self.free):
            for s in range(g.max_tensors):
                with m.If(slot == s):
                    m.d.sync += table[s].freed.eq(1)

        top_desc = Signal(g.descriptor_layout)
        with m.Switch(top_slot):
            for s in range(g.max_tensors):
                with m.Case(s):
                    m.d.comb += top_desc.eq(table[s])
        m.d.comb += self.top_freed.eq((depth != 0) & top_desc.freed)
        with m.If(self.pop & self.top_freed):
            for s in range(g.max_tensors):
                with m.If(top_slot == s):
                    m.d.sync += [table[s].valid.eq(0), table[s].freed.eq(0)]
            m.d.sync += [
                depth.eq(depth - 1),
                top_slot.eq(below_slot),
                bitmap_top.eq(top_desc.bitmap_base),
                value_top.eq(top_desc.value_base),
                directory_top.eq(top_desc.directory_base),
            ]
        return m
