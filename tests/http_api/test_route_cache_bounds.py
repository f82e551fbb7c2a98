"""The API's route cache is bounded in routes and in road vertices (a route keeps its GeoJSON)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from api.tracking.caches import RouteCache
from track_engine.passages import PASSAGE_COLUMNS
from track_engine.roads import RoadGraph
from track_engine.route_result import Route
from track_engine.routes import build_route

T0_US = 1_700_000_000 * 1_000_000


def _line_graph(nodes: int) -> RoadGraph:
    """A straight two-way street of ``nodes`` junctions 100 m apart."""
    x = np.arange(nodes, dtype=np.float64) * 100.0
    src = np.concatenate([np.arange(nodes - 1), np.arange(1, nodes)])
    dst = np.concatenate([np.arange(1, nodes), np.arange(nodes - 1)])
    return RoadGraph.from_arrays(
        node_lonlat=np.column_stack([24.9 + x / 50_000.0, np.full(nodes, 60.2)]),
        node_xy_m=np.column_stack([x, np.zeros(nodes)]),
        edge_src=src,
        edge_dst=dst,
        edge_length_m=np.full(src.size, 100.0),
    )


def _route(graph: RoadGraph, to_node: int, tag_id: str) -> Route:
    """A ride from node 0 to ``to_node`` at 5 m/s, heard at both ends."""
    rows = []
    for reader, node in (("R0", 0), (f"R{to_node}", to_node)):
        at = T0_US + int(node * 100 / 5.0 * 1_000_000)
        rows.append(
            {
                "tag_id": tag_id, "reader_id": reader, "first_at_us": at - 500_000,
                "last_at_us": at + 500_000, "closest_at_us": at, "read_count": 5,
                "peak_rssi_dbm": -50.0, "direction": None,
            }
        )  # fmt: skip
    frame = pd.DataFrame(rows)
    for column in PASSAGE_COLUMNS:
        if column not in frame:
            frame[column] = None
    return build_route(frame[list(PASSAGE_COLUMNS)], graph, {"R0": 0, f"R{to_node}": to_node})


def test_routes_beyond_the_vertex_budget_are_dropped_oldest_first() -> None:
    graph = _line_graph(60)
    long_ride = _route(graph, 50, "E1")
    assert long_ride.vertex_count >= 50
    cache = RouteCache(size=100, max_vertices=long_ride.vertex_count * 2)
    for i in range(3):
        cache.get(("long", i), lambda i=i: _route(graph, 50, f"E{i}"))
    assert cache.peek(("long", 0)) is None  # three would pass the budget: the oldest went
    assert cache.peek(("long", 1)) is not None
    assert cache.peek(("long", 2)) is not None


def test_the_newest_route_stays_even_if_it_alone_passes_the_budget() -> None:
    graph = _line_graph(60)
    cache = RouteCache(size=100, max_vertices=5)
    route = cache.get(("huge",), lambda: _route(graph, 50, "E9"))
    assert cache.peek(("huge",)) is route


def test_the_route_count_bound_still_holds() -> None:
    graph = _line_graph(10)
    cache = RouteCache(size=2)
    for i in range(3):
        cache.get((i,), lambda i=i: _route(graph, 5, f"E{i}"))
    assert cache.peek((0,)) is None
    assert cache.peek((2,)) is not None
