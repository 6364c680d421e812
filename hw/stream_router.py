"""A stream router: joins ``lib.stream`` sources to sinks as the selected route says."""

import enum as py_enum

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["StreamRouter"]


class StreamRouter(wiring.Component):
    """Joins streams by routes, one route at a time.

    A route is a set of links, each from a source to a sink. While ``route`` selects a route,
    each of its links passes the source's ``valid`` and ``payload`` to the sink and the sink's
    ``ready`` back to the source. A sink that no link of the route feeds sees ``valid`` low, a
    source that no link reads sees ``ready`` low: nothing moves there. The router is
    combinational and adds no cycle.

    A sink's ``payload`` is that of its *first* source (the first to feed it, in the order of
    ``routes``) except while the route links it to another, so a sink with one source is a plain
    wire. A link between streams of different payload shapes says, in ``views``, how the sink
    sees the source's payload.

    Parameters
    ----------
    sources, sinks : dict of str to shape-like
        The payload shape of each source and each sink, by name.
    routes : dict of enum member to dict of str to str
        The links of each route, as ``{sink: source}``. The keys are members of one enum, the
        shape of ``route``; a member left out routes nothing. A source feeds at most one sink
        in a route (a broadcast would need every sink's ``ready``).
    views : dict of (str, str) to callable, optional
        ``{(source, sink): view}`` for the links whose payload shapes differ:
        ``view(source_payload, sink_payload)`` returns the statements that set the sink's
        payload from the source's (wiring only).

    Attributes
    ----------
    route : In(enum)
        The route selected.
    sources : Out(Signature({name: In(stream.Signature(shape))}))
        The streams into the router, by name.
    sinks : Out(Signature({name: Out(stream.Signature(shape))}))
        The streams out of it, by name.

    Raises
    ------
    TypeError
        If ``sources``, ``sinks``, ``routes`` or ``views`` are not dicts, or ``routes`` is not
        keyed by the members of one enum, or a view is not callable.
    ValueError
        If ``routes`` is empty, a link names a source or a sink that does not exist, a source
        feeds two sinks in one route, a link joins different payload shapes without a view, or
        a view joins no link.
    """

    def __init__(self, *, sources, sinks, routes, views=None):
        views = {} if views is None else views
        for name, value in (("sources", sources), ("sinks", sinks), ("routes", routes),
                            ("views", views)):
            if not isinstance(value, dict):
                raise TypeError(f"{name} must be a dict, not {value!r}")
        if not routes:
            raise ValueError("routes must name at least one route")
        route_enum = type(next(iter(routes)))
        for route, links in routes.items():
            if not isinstance(route, py_enum.Enum) or type(route) is not route_enum:
                raise TypeError(f"routes must be keyed by the members of one enum, not {route!r}")
            if not isinstance(links, dict):
                raise TypeError(f"route {route.name} must be a dict of sources by sink, not "
                                f"{links!r}")
            fed = set()
            for sink, source in links.items():
                if sink not in sinks:
                    raise ValueError(f"route {route.name}: no sink named {sink!r}")
                if source not in sources:
                    raise ValueError(f"route {route.name}: no source named {source!r}")
                if source in fed:
                    raise ValueError(f"route {route.name}: source {source!r} feeds more than "
                                     "one sink")
                fed.add(source)
                if sources[source] != sinks[sink] and (source, sink) not in views:
                    raise ValueError(f"route {route.name}: {source!r} and {sink!r} carry "
                                     "different payloads and no view joins them")
        linked = {(source, sink) for links in routes.values() for sink, source in links.items()}
        for key, view in views.items():
            if key not in linked:
                raise ValueError(f"view {key!r} joins no link of any route")
            if not callable(view):
                raise TypeError(f"view {key!r} must be callable, not {view!r}")
        self._routes = routes
        self._views = views
        # Each sink's payload when no route feeds it, or its one source when it has only one.
        self._first_source = {}
        for links in routes.values():
            for sink, source in links.items():
                self._first_source.setdefault(sink, source)
        super().__init__({
            "route": In(route_enum),
            "sources": Out(wiring.Signature({name: In(stream.Signature(shape))
                                             for name, shape in sources.items()})),
            "sinks": Out(wiring.Signature({name: Out(stream.Signature(shape))
                                           for name, shape in sinks.items()})),
        })

    def _join_payload(self, source, sink):
        src, dst = getattr(self.sources, source), getattr(self.sinks, sink)
        view = self._views.get((source, sink))
        return view(src.payload, dst.payload) if view else [dst.payload.eq(src.payload)]

    def elaborate(self, platform):
        m = Module()
        for sink, source in self._first_source.items():
            m.d.comb += self._join_payload(source, sink)
        with m.Switch(self.route):
            for route, links in self._routes.items():
                with m.Case(route):
                    for sink, source in links.items():
                        src, dst = getattr(self.sources, source), getattr(self.sinks, sink)
                        m.d.comb += [dst.valid.eq(src.valid), src.ready.eq(dst.ready)]
                        if source != self._first_source[sink]:
                            m.d.comb += self._join_payload(source, sink)
        return m
