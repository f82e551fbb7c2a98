"""Loads the active road network once and keeps the engine's graph and reader paths."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from api.errors import UnavailableError
from track_engine.db import queries
from track_engine.roads import ReaderPaths, RoadGraph, precompute_reader_paths


@dataclass(frozen=True)
class LoadedNetwork:
    """The routing graph with everything precomputed between readers."""

    network_id: int
    graph: RoadGraph
    reader_nodes: dict[str, int]
    reader_paths: ReaderPaths
    arrays: queries.NetworkArrays


class NetworkCache:
    """Thread-safe holder of the active network; reloads when its id changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: LoadedNetwork | None = None

    def invalidate(self) -> None:
        """Forget the loaded network (readers changed); the next request reloads it."""
        with self._lock:
            self._loaded = None

    def current(self, network_id: int | None) -> LoadedNetwork | None:
        """The loaded network if it is the active one (``network_id``); None when it must be
        loaded first (:meth:`get`). Raises UnavailableError when no network is active."""
        if network_id is None:
            raise UnavailableError("no road network has been loaded yet")
        loaded = self._loaded
        return loaded if loaded is not None and loaded.network_id == network_id else None

    def get(self, conn: psycopg.Connection) -> LoadedNetwork:
        """The active network, loading it if it is new; raises UnavailableError if none."""
        network_id = queries.active_network_id(conn)
        if network_id is None:
            raise UnavailableError("no road network has been loaded yet")
        with self._lock:
            if self._loaded is None or self._loaded.network_id != network_id:
                arrays = queries.load_network(conn)
                if arrays is None:
                    raise UnavailableError("no road network has been loaded yet")
                graph = RoadGraph.from_arrays(
                    node_lonlat=arrays.node_lonlat,
                    node_xy_m=arrays.node_xy_m,
                    edge_src=arrays.edge_src,
                    edge_dst=arrays.edge_dst,
                    edge_length_m=arrays.edge_length_m,
                )
                reader_nodes = {
                    str(r): int(n)
                    for r, n in zip(
                        arrays.readers["reader_id"], arrays.readers["node_id"], strict=True
                    )
                }
                self._loaded = LoadedNetwork(
                    network_id=arrays.network_id,
                    graph=graph,
                    reader_nodes=reader_nodes,
                    reader_paths=precompute_reader_paths(
                        graph,
                        reader_nodes,
                        # Each reader's own miss rate weighs its silence in path choice.
                        miss_rate=dict(
                            zip(
                                arrays.readers["reader_id"].astype(str).tolist(),
                                arrays.readers["miss_rate"].astype(float).tolist(),
                                strict=True,
                            )
                        ),
                    ),
                    arrays=arrays,
                )
            return self._loaded


async def active_network(
    cache: NetworkCache, pool: ConnectionPool, network_id: int | None
) -> LoadedNetwork:
    """For views on the event loop: the network whose id the request read (``network_id``,
    None = no active network: UnavailableError), loaded in a worker thread on a pooled
    connection when it is not loaded yet (normally once, at start-up)."""
    loaded = cache.current(network_id)
    if loaded is None:
        loaded = await run_in_threadpool(_load, cache, pool)
    return loaded


def _load(cache: NetworkCache, pool: ConnectionPool) -> LoadedNetwork:
    with pool.connection() as conn:
        return cache.get(conn)


def network_geojson(network: LoadedNetwork) -> dict[str, Any]:
    """Roads as one MultiLineString (two-way streets drawn once) and readers as points."""
    arrays = network.arrays
    lonlat = arrays.node_lonlat.round(7)
    seen: set[tuple[int, int]] = set()
    lines: list[list[list[float]]] = []
    for s, d in zip(arrays.edge_src.tolist(), arrays.edge_dst.tolist(), strict=True):
        key = (min(s, d), max(s, d))
        if key not in seen:
            seen.add(key)
            lines.append([lonlat[s].tolist(), lonlat[d].tolist()])
    features: list[dict[str, Any]] = [
        {
            "type": "Feature",
            "geometry": {"type": "MultiLineString", "coordinates": lines},
            "properties": {"layer": "roads"},
        }
    ]
    readers = arrays.readers
    for reader_id, lon, lat in zip(
        readers["reader_id"].tolist(), readers["lon"].tolist(), readers["lat"].tolist(), strict=True
    ):
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]},
                "properties": {"layer": "readers", "reader_id": reader_id},
            }
        )
    return {"type": "FeatureCollection", "features": features}
