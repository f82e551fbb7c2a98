"""Loads the active road network once and keeps the engine's graph and reader paths.

The readers' miss rates (learned from the passages where known, else the registry's figure;
:func:`track_engine.db.network.load_network`) are looked at again every ``refresh_s``: when a
learning run (``tagtrail readers learn-miss-rates`` or the engine's periodic one) or an import
in another API process changed them, the reader paths are rebuilt with the new rates in a
thread of their own, warmed, and swapped in (the routes stitched with the old ones are
forgotten with them); readers added, removed or moved make it a full reload.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from api.errors import UnavailableError
from track_engine.db import network as stored_network
from track_engine.roads import ReaderPaths, RoadGraph
from track_engine.route_choice import warm_path_choice
from track_engine.route_zones import ReadZone
from track_engine.way_prior import WayPrior

log = logging.getLogger(__name__)

# How often a loaded network looks for changed reader miss rates (one small query).
MISS_RATE_REFRESH_S = 60.0


@dataclass(frozen=True)
class LoadedNetwork:
    """The routing graph with everything precomputed between readers."""

    network_id: int
    graph: RoadGraph
    reader_nodes: dict[str, int]
    reader_paths: ReaderPaths
    arrays: stored_network.NetworkArrays

    @cached_property
    def base_map(self) -> dict[str, Any]:
        """The base map's GeoJSON (:func:`network_geojson`), built once per loaded network."""
        return network_geojson(self)

    @cached_property
    def reader_addresses(self) -> dict[str, str]:
        """Each reader's address, the streets meeting at its node (worked out once)."""
        return self.arrays.reader_addresses()

    @cached_property
    def reader_ranges_m(self) -> dict[str, float]:
        """Read ranges of the long-range readers (active tags), for places and clone tests
        (worked out once per loaded network)."""
        return self.arrays.reader_ranges_m()

    @cached_property
    def reader_zones(self) -> dict[str, ReadZone]:
        """Each surveyed reader's read zone (pole and range), for route stitching (worked out
        once per loaded network)."""
        return self.arrays.reader_zones()


class NetworkCache:
    """Thread-safe holder of the active network; reloads when its id changes, and its readers'
    miss rates when they change (looked at every ``refresh_s``)."""

    def __init__(self, *, refresh_s: float = MISS_RATE_REFRESH_S) -> None:
        self._lock = threading.Lock()
        self._loaded: LoadedNetwork | None = None
        self.refresh_s = refresh_s
        self._stamp = ""  # stored_network.network_miss_rates_stamp of the loaded miss rates
        self._refreshing: threading.Thread | None = None  # a rebuild with new rates
        self._checked_at = 0.0  # time.monotonic() of the last look at them

    def invalidate(self) -> None:
        """Forget the loaded network (readers changed); the next request reloads it."""
        with self._lock:
            self._loaded = None

    def current(self, network_id: int | None) -> LoadedNetwork | None:
        """The loaded network if it is the active one (``network_id``); None when it must be
        loaded first, or its miss rates looked at again (:meth:`get`). Raises
        UnavailableError when no network is active."""
        if network_id is None:
            raise UnavailableError("no road network has been loaded yet")
        loaded = self._loaded
        if loaded is None or loaded.network_id != network_id or self._refresh_due():
            return None
        return loaded

    def get(self, conn: psycopg.Connection) -> LoadedNetwork:
        """The active network, loading it if it is new; raises UnavailableError if none."""
        network_id = stored_network.active_network_id(conn)
        if network_id is None:
            raise UnavailableError("no road network has been loaded yet")
        with self._lock:
            loaded = self._loaded
            if loaded is None or loaded.network_id != network_id:
                # The stamp first: a learning run committing in between is seen next time.
                stamp = stored_network.network_miss_rates_stamp(conn, network_id)
                arrays = stored_network.load_network(conn)
                if arrays is None:
                    raise UnavailableError("no road network has been loaded yet")
                graph = arrays.road_graph()
                self._loaded = LoadedNetwork(
                    network_id=arrays.network_id,
                    graph=graph,
                    reader_nodes=arrays.reader_nodes(),
                    # Each reader's own miss rate weighs its silence in path choice.
                    reader_paths=arrays.reader_paths(graph),
                    arrays=arrays,
                )
                self._stamp, self._checked_at = stamp, time.monotonic()
                return self._loaded
            if not self._refresh_due():
                return loaded
            self._checked_at = time.monotonic()  # one request looks; the others go on
            stamp = self._stamp
        return self._refresh_miss_rates(conn, loaded, stamp)

    def _refresh_due(self) -> bool:
        return time.monotonic() - self._checked_at >= self.refresh_s

    def _refresh_miss_rates(
        self, conn: psycopg.Connection, loaded: LoadedNetwork, stamp: str
    ) -> LoadedNetwork:
        """``loaded``, after starting its rebuild with the readers' current miss rates if they
        changed since ``stamp`` (a full reload when readers were added, removed or moved).

        The rebuild and its warm-up run in a thread of their own and swap in when done: the
        request that looked goes on with the loaded network, holding no connection longer.
        A failed look is logged and tried again at the next one.
        """
        try:
            new_stamp = stored_network.network_miss_rates_stamp(conn, loaded.network_id)
            if new_stamp == stamp:
                return loaded
            readers = stored_network.network_reader_rates(conn, loaded.network_id)
            prior = stored_network.load_way_prior(conn)
        except psycopg.Error:
            log.warning("network: could not look at the readers' miss rates", exc_info=True)
            return loaded
        if {r: node for r, (node, _) in readers.items()} != dict(loaded.reader_nodes):
            with self._lock:
                if self._loaded is loaded:
                    self._loaded = None
            return self.get(conn)
        with self._lock:
            if self._refreshing is not None and self._refreshing.is_alive():
                return loaded
            self._refreshing = threading.Thread(
                target=self._swap_rates,
                args=(loaded, {r: rate for r, (_, rate) in readers.items()}, new_stamp, prior),
                name="network-miss-rates",
                daemon=True,
            )
            self._refreshing.start()
        return loaded

    def _swap_rates(
        self,
        loaded: LoadedNetwork,
        rates: dict[str, float],
        stamp: str,
        prior: WayPrior | None = None,
    ) -> None:
        """Build ``loaded`` with ``rates`` and the way ``prior``, warm its path choice, and
        swap it in."""
        try:
            readers = loaded.arrays.readers.assign(
                miss_rate=loaded.arrays.readers["reader_id"]
                .map(rates)
                .fillna(loaded.arrays.readers["miss_rate"])
            )
            # A new ReaderPaths: the path-choice helpers and the routes memoized on the old
            # one were built with the old rates (the distances are shared, not recomputed).
            refreshed = dataclasses.replace(
                loaded,
                reader_paths=dataclasses.replace(
                    loaded.reader_paths,
                    miss_rate={**loaded.reader_paths.miss_rate, **rates},
                    way_prior=prior,
                ),
                arrays=dataclasses.replace(loaded.arrays, readers=readers, way_prior=prior),
            )
            # As at start-up: the reader penalties depend on the rates, so the trees are new.
            warm_path_choice(refreshed.reader_paths)
        except Exception:  # the loaded network goes on serving; the next look tries again
            log.exception("network: rebuilding with new miss rates failed")
            return
        with self._lock:
            if self._loaded is loaded:  # not reloaded or invalidated meanwhile
                self._loaded, self._stamp = refreshed, stamp

    def wait_refreshed(self, timeout_s: float) -> bool:
        """Wait for a rebuild in progress (tests, shutdown); True when none is running."""
        thread = self._refreshing
        if thread is not None:
            thread.join(timeout_s)
            return not thread.is_alive()
        return True


async def active_network(
    cache: NetworkCache, pool: ConnectionPool, network_id: int | None
) -> LoadedNetwork:
    """For views on the event loop: the network whose id the request read (``network_id``,
    None = no active network: UnavailableError), loaded in a worker thread on a pooled
    connection when it is not loaded yet (normally once, at start-up) or its readers' miss
    rates are due for a look (every ``cache.refresh_s``)."""
    loaded = cache.current(network_id)
    if loaded is None:
        loaded = await run_in_threadpool(_load, cache, pool)
    return loaded


def _load(cache: NetworkCache, pool: ConnectionPool) -> LoadedNetwork:
    with pool.connection() as conn:
        return cache.get(conn)


def network_geojson(network: LoadedNetwork) -> dict[str, Any]:
    """The base map as GeoJSON features, each with a ``layer`` property:

    - ``roads``: the unnamed roads as one MultiLineString (two-way roads drawn once);
    - ``streets``: one MultiLineString per street name (``name``), its edges merged into as
      few lines as walking them allows, so a 30k-edge city stays a small answer;
    - ``readers``: points with ``reader_id`` and ``address`` (the streets meeting there).
    """
    arrays = network.arrays
    lonlat = arrays.node_lonlat.round(7).tolist()
    unnamed: set[tuple[int, int]] = set()
    named: dict[str, set[tuple[int, int]]] = {}
    for s, d, name in zip(
        arrays.edge_src.tolist(), arrays.edge_dst.tolist(), arrays.edge_names().tolist(),
        strict=True,
    ):  # fmt: skip
        key = (min(s, d), max(s, d))
        (named.setdefault(name, set()) if name else unnamed).add(key)
    features: list[dict[str, Any]] = [
        _lines_feature([[lonlat[s], lonlat[d]] for s, d in sorted(unnamed)], {"layer": "roads"})
    ]
    for name in sorted(named):
        lines = [[lonlat[n] for n in line] for line in _chains(named[name])]
        features.append(_lines_feature(lines, {"layer": "streets", "name": name}))
    addresses = network.reader_addresses
    readers = arrays.readers
    for reader_id, lon, lat in zip(
        readers["reader_id"].tolist(), readers["lon"].tolist(), readers["lat"].tolist(), strict=True
    ):
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]},
                "properties": {
                    "layer": "readers",
                    "reader_id": reader_id,
                    "address": addresses.get(reader_id, ""),
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _lines_feature(lines: list[list[list[float]]], properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "MultiLineString", "coordinates": lines},
        "properties": properties,
    }


def _chains(segments: set[tuple[int, int]]) -> list[list[int]]:
    """Undirected segments walked into node sequences, each segment once. Walks start at the
    ends and branch points (odd degree) first, so a straight street is one line."""
    adjacent: dict[int, list[int]] = {}
    for a, b in sorted(segments):
        adjacent.setdefault(a, []).append(b)
        adjacent.setdefault(b, []).append(a)
    used: set[tuple[int, int]] = set()
    lines: list[list[int]] = []
    for start in sorted(adjacent, key=lambda n: (len(adjacent[n]) % 2 == 0, n)):
        while line := _walk(start, adjacent, used):
            lines.append(line)
    return lines


def _walk(start: int, adjacent: dict[int, list[int]], used: set[tuple[int, int]]) -> list[int]:
    """One line from ``start`` along segments not used yet (marking them); [] if none."""
    line = [start]
    node = start
    while True:
        step = next((m for m in adjacent[node] if (min(node, m), max(node, m)) not in used), None)
        if step is None:
            return line if len(line) > 1 else []
        used.add((min(node, step), max(node, step)))
        line.append(step)
        node = step
