"""Components emitted once as a Verilog module and instantiated wherever they repeat.

Amaranth flattens a design into one netlist, so an array of ``R`` identical PE rows costs ``R``
times one row to convert. A component placed with :func:`instantiate` becomes an ``Instance`` of
a module named after its class and parameters; the Verilog of each such module is converted
once, from the component itself, by whoever converts the design (:func:`collect` tells them
which). The hardware is the same; only the Verilog keeps the hierarchy.
"""

import contextlib
import hashlib

from amaranth.hdl import ClockSignal, Elaboratable, Instance, ResetSignal, Shape, Value
from amaranth.lib import wiring

__all__ = ["module_name", "instantiate", "collect"]

_collecting = []  # the registries of the conversions under way, innermost last


def module_name(component, params):
    """The module name of ``component`` (or of its class) built with ``params`` (a dict of
    plain values): the class name and a digest of the parameters, so equal components share
    one module."""
    cls = component if isinstance(component, type) else type(component)
    text = repr(sorted(params.items()))
    digest = hashlib.sha256(f"{cls.__qualname__}\0{text}".encode()).hexdigest()
    return f"swat_{cls.__name__.strip('_').lower()}_{digest[:10]}"


def instantiate(component, params, *, inputs=None, domain="sync"):
    """An ``Instance`` standing for ``component`` (a ``lib.wiring.Component`` whose ``params``
    say everything it is built from), its ports joined to the component's own, and clocked by
    ``domain``. The component is registered for conversion as its own module.

    ``inputs`` maps names of input members to the values that drive them directly, in place
    of the component's own signals (which stay undriven): one value shared by many instances
    then makes no copy per instance in the netlist."""
    inputs = dict(inputs or {})
    for member_name, value in inputs.items():
        member = component.signature.members.get(member_name)
        if member is None or not member.is_port or member.flow != wiring.In:
            raise ValueError(f"{member_name!r} is not an input port of {component!r}")
        if len(Value.cast(value)) != Shape.cast(member.shape).width:
            raise ValueError(f"{member_name!r} takes {Shape.cast(member.shape).width} bits, "
                             f"not {len(Value.cast(value))}")
    name = module_name(component, params)
    # Its netlist is built once, from whichever equal component is registered first; the
    # others stand behind their instances and are never elaborated themselves.
    _mark_used(component)
    if _collecting:
        _collecting[-1].setdefault(name, component)
    ports = {"i_clk": ClockSignal(domain), "i_rst": ResetSignal(domain, allow_reset_less=True)}
    for path, member, value in component.signature.flatten(component):
        direction = "i" if member.flow == wiring.In else "o"
        if len(path) == 1 and path[0] in inputs:
            value = inputs[path[0]]
        ports[f"{direction}_{'__'.join(str(p) for p in path)}"] = Value.cast(value)
    return Instance(name, **ports)


@contextlib.contextmanager
def collect():
    """Within it, components placed with :func:`instantiate` are gathered in the dict it
    yields, ``{module name: component}`` (one component per module)."""
    registry = {}
    _collecting.append(registry)
    try:
        yield registry
    finally:
        _collecting.pop()


def _mark_used(component):
    # The component and the parts it built in its constructor are elaborated by whoever
    # converts its module, which may be another process: here they are used as they are.
    stack = [component]
    while stack:
        obj = stack.pop()
        if getattr(obj, "_MustUse__used", True):
            continue
        obj._MustUse__used = True
        for value in vars(obj).values():
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(item, Elaboratable):
                    stack.append(item)
