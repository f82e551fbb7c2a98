"""Everything the tracking domain keeps in memory, in one place: what, for how long, and
when it is dropped.

Per loaded road network (its :class:`~track_engine.roads.ReaderPaths`) and per process,
:func:`caches_of` holds one :class:`TrackingCaches`:

- ``routes``: stitched routes by (passages, network), the newest ``RouteCache.size`` and at
  most ``RouteCache.max_vertices`` road vertices in all (a route keeps its GeoJSON once made,
  ~300 bytes a vertex, so a few month-long routes must not hold hundreds of megabytes). A
  route depends only on its passages and the loaded network, so it never ages.
- ``route_flights``: routes being stitched now; concurrent misses of one route wait for it.
- ``departures``: the departures query's answer (:mod:`api.tracking.departure_store`) by
  (tag, reader, time of the sighting), each for ``DepartureCache.ttl_s`` seconds, at most
  ``max_entries``: thousands of index probes over 30 days of passages, the same for every
  officer following a parked bike, and a minute-old count predicts as well.
- ``departure_flights``: departures being counted now, one query however many ask.

The road model's answer per (reader, previous reader) is kept apart, for the network's life
(:data:`api.tracking.prediction._ROAD`): it depends on the network alone.

All of it goes when the network is replaced: a reload (another network made active, readers
added, removed or moved) or a rebuild with new miss rates (``api.network.service``) makes a
new ``ReaderPaths``, and its caches start empty; the old ones are dropped with the old paths
(:class:`track_engine.roads.Derived`: nothing here keeps a replaced network alive).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from api.singleflight import SingleFlight
from api.tracking.prediction import HasReaderPaths
from track_engine.next_readers import Departures
from track_engine.roads import Derived
from track_engine.route_result import Route


class RouteCache:
    """Routes stitched from the same passages on the same network, most recent ``size``.

    A route depends only on its passages and the loaded network (graph, reader paths and miss
    rates), so an officer refreshing a route, or several following one theft, stitch it once.
    Routes are immutable; each answer is made from the cached route afresh.
    """

    def __init__(self, size: int = 512, max_vertices: int = 500_000) -> None:
        self.size = size
        self.max_vertices = max_vertices
        self._routes: OrderedDict[tuple[Any, ...], Route] = OrderedDict()
        self._vertices = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], build: Callable[[], Route]) -> Route:
        """The route for ``key``, built by ``build()`` on a miss."""
        route = self.peek(key)
        if route is not None:
            return route
        route = build()
        with self._lock:
            old = self._routes.pop(key, None)
            self._vertices -= old.vertex_count if old is not None else 0
            self._routes[key] = route
            self._vertices += route.vertex_count
            # The newest route stays, however large: it is the one being asked for.
            while len(self._routes) > 1 and (
                len(self._routes) > self.size or self._vertices > self.max_vertices
            ):
                _, dropped = self._routes.popitem(last=False)
                self._vertices -= dropped.vertex_count
        return route

    def peek(self, key: tuple[Any, ...]) -> Route | None:
        """The route for ``key`` if it is kept; None otherwise."""
        with self._lock:
            route = self._routes.get(key)
            if route is not None:
                self._routes.move_to_end(key)
            return route


DepartureKey = tuple[str, str, datetime]  # (tag, reader, time of the sighting)


class DepartureCache:
    """Recent answers of the departures query by (tag, reader, time), each for ``ttl_s`` seconds;
    at most ``max_entries`` (the oldest go first). Thread-safe; a miss computes outside the
    lock, so two requests may both compute the same answer."""

    def __init__(self, ttl_s: float = 60.0, max_entries: int = 4096) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[DepartureKey, tuple[float, Departures]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: DepartureKey, compute: Callable[[], Departures]) -> Departures:
        """The cached answer for ``key``, or ``compute()``'s, remembered."""
        now = time.monotonic()
        hit = self.peek(key, now)
        if hit is not None:
            return hit
        value = compute()
        self.put(key, value, now)
        return value

    def peek(self, key: DepartureKey, now: float | None = None) -> Departures | None:
        """The cached answer for ``key`` if it is younger than ``ttl_s``; None otherwise."""
        now = time.monotonic() if now is None else now
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and now - hit[0] < self.ttl_s:
                return hit[1]
        return None

    def put(self, key: DepartureKey, value: Departures, at: float) -> None:
        """Remember ``value`` for ``key``, computed from data read at ``at`` (monotonic)."""
        with self._lock:
            self._entries[key] = (at, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


@dataclass(frozen=True, eq=False)
class TrackingCaches:
    """The tracking domain's caches of one loaded network (see the module docstring)."""

    routes: RouteCache = field(default_factory=RouteCache)
    route_flights: SingleFlight[Route] = field(default_factory=SingleFlight)
    departures: DepartureCache = field(default_factory=DepartureCache)
    departure_flights: SingleFlight[Departures] = field(default_factory=SingleFlight)


_CACHES: Derived[None, TrackingCaches] = Derived()


def caches_of(network: HasReaderPaths) -> TrackingCaches:
    """The caches of ``network`` (its reader paths), made empty on first use."""
    return _CACHES.get(network.reader_paths, None, TrackingCaches)
