"""StreamRouter: its parameters' validation, and in Amaranth's simulator, every route moving
exactly its links' valid, ready and payload."""

import random

import pytest
from amaranth.hdl import unsigned
from amaranth.lib import data, enum
from amaranth.sim import Simulator

from hw.stream_router import StreamRouter


class Way(enum.Enum, shape=2):
    NONE = 0
    A_TO_X = 1
    B_TO_X_A_TO_Y = 2
    WIDE_TO_Y = 3


WIDE = data.StructLayout({"low": unsigned(8), "high": unsigned(8)})


def low_byte(wide, narrow):
    return [narrow.eq(wide.low)]


ROUTES = {
    Way.NONE: {},
    Way.A_TO_X: {"x": "a"},
    Way.B_TO_X_A_TO_Y: {"x": "b", "y": "a"},
    Way.WIDE_TO_Y: {"y": "wide"},
}


def router(**changes):
    params = dict(sources={"a": 8, "b": 8, "wide": WIDE}, sinks={"x": 8, "y": 8},
                  routes=ROUTES, views={("wide", "y"): low_byte})
    params.update(changes)
    return StreamRouter(**params)


@pytest.mark.parametrize("changes, error, message", [
    (dict(sources=[]), TypeError, "sources must be a dict, not []"),
    (dict(routes={}), ValueError, "routes must name at least one route"),
    (dict(routes={Way.NONE: {}, 1: {}}), TypeError,
     "routes must be keyed by the members of one enum, not 1"),
    (dict(routes={Way.A_TO_X: [("x", "a")]}), TypeError,
     "route A_TO_X must be a dict of sources by sink, not [('x', 'a')]"),
    (dict(routes={Way.A_TO_X: {"z": "a"}}), ValueError, "route A_TO_X: no sink named 'z'"),
    (dict(routes={Way.A_TO_X: {"x": "c"}}), ValueError, "route A_TO_X: no source named 'c'"),
    (dict(routes={Way.A_TO_X: {"x": "a", "y": "a"}}), ValueError,
     "route A_TO_X: source 'a' feeds more than one sink"),
    (dict(views={}), ValueError,
     "route WIDE_TO_Y: 'wide' and 'y' carry different payloads and no view joins them"),
    (dict(views={("wide", "y"): low_byte, ("b", "y"): low_byte}), ValueError,
     "view ('b', 'y') joins no link of any route"),
    (dict(views={("wide", "y"): 1}), TypeError, "view ('wide', 'y') must be callable, not 1"),
])
def test_parameters_are_validated(changes, error, message):
    with pytest.raises(error) as info:
        router(**changes)
    assert str(info.value) == message


def test_routes_move_exactly_their_links():
    dut = router()
    rng = random.Random(1)
    sources = {"a": dut.sources.a, "b": dut.sources.b, "wide": dut.sources.wide}
    sinks = {"x": dut.sinks.x, "y": dut.sinks.y}
    first = {"x": "a", "y": "a"}  # the payload a sink shows when no link feeds it

    def seen(name, payload):
        return payload & 0xff if name == "wide" else payload  # the view: the low byte

    async def bench(ctx):
        for _ in range(400):
            route = rng.choice(list(Way))
            ctx.set(dut.route, route)
            valid, payload, ready = {}, {}, {}
            for name, port in sources.items():
                valid[name] = rng.randrange(2)
                payload[name] = rng.getrandbits(16 if name == "wide" else 8)
                ctx.set(port.valid, valid[name])
                if name == "wide":
                    ctx.set(port.payload, {"low": payload[name] & 0xff,
                                           "high": payload[name] >> 8})
                else:
                    ctx.set(port.payload, payload[name])
            for name, port in sinks.items():
                ready[name] = rng.randrange(2)
                ctx.set(port.ready, ready[name])
            links = ROUTES[route]
            for sink, port in sinks.items():
                source = links.get(sink)
                assert ctx.get(port.valid) == (valid[source] if source else 0)
                shown = source or first[sink]
                assert ctx.get(port.payload) == seen(shown, payload[shown])
            fed = {source: sink for sink, source in links.items()}
            for source, port in sources.items():
                assert ctx.get(port.ready) == (ready[fed[source]] if source in fed else 0)
            await ctx.delay(1e-6)

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
