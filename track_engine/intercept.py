"""Where to intercept: the readers a bike will likely be heard at next, from the same road model
as :mod:`track_engine.where_now` (pure, no SQL).

From the last sighting's node the bike heads down one of the roads; every road position
within ``horizon_m`` is as likely a heading as any other (by road length). A reader is heard
next if the bike heads somewhere behind it, every reader before it on the way missed it, and
it does not: ``P(r) ~ length behind r x prod(miss before r) x (1 - miss(r))``. The ETA window
is the road distance at the e-bike speed range.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.sparse.csgraph import dijkstra

from track_engine.roads import RoadGraph
from track_engine.where_now import SpeedModel, silence_log


@dataclass(frozen=True, slots=True)
class Intercept:
    """A reader to wait at: how likely it hears the bike next, and when (seconds after the
    sighting, at the fastest and slowest e-bike speeds)."""

    reader_id: str
    probability: float
    distance_m: float
    eta_from_s: float
    eta_to_s: float


def next_readers_by_model(
    graph: RoadGraph,
    start_node: int,
    reader_nodes: Mapping[str, int],
    miss_rate: Mapping[str, float],
    *,
    horizon_m: float = 1000.0,
    limit: int = 3,
    speeds: SpeedModel | None = None,
) -> list[Intercept]:
    """The ``limit`` likeliest next readers (leave the sighting's own place out of
    ``reader_nodes``); ``miss_rate`` by reader (0.3 when not given)."""
    model = speeds or SpeedModel()
    dist, pred = dijkstra(
        graph.csr(), directed=True, indices=start_node, return_predecessors=True, limit=horizon_m
    )
    reached = np.flatnonzero(np.isfinite(dist))
    order = reached[np.argsort(-dist[reached], kind="stable")]
    # Road length behind each node (its subtree), summed leaves first.
    below = np.zeros(graph.node_count)
    parent = np.where(pred >= 0, pred, -1).astype(np.int64)
    up = parent[reached]
    below[reached] = dist[reached] - np.where(up >= 0, dist[np.maximum(up, 0)], 0.0)
    for n in order.tolist():
        p = parent[n]
        if p >= 0:
            below[p] += below[n]
    node_miss: dict[int, float] = {}
    for reader, node in reader_nodes.items():
        node_miss[node] = node_miss.get(node, 1.0) * miss_rate.get(reader, 0.3)
    # Silence of the readers strictly before each node: the log product up to its parent.
    before = silence_log(graph.node_count, pred, reached, node_miss)
    before_at = np.zeros(graph.node_count)
    before_at[reached] = before
    total = max(float(below[start_node]), 1e-9)
    out: list[Intercept] = []
    for reader, node in reader_nodes.items():
        if not np.isfinite(dist[node]) or node == start_node:
            continue
        own = miss_rate.get(reader, 0.3)
        p_before = float(np.exp(before_at[node])) / max(node_miss.get(node, 1.0), 1e-9)
        share = below[node] / total * p_before * (1.0 - own)
        d = float(dist[node])
        out.append(
            Intercept(reader, share, d, d / (model.max_kmh / 3.6), d / (model.min_kmh / 3.6))
        )
    mass = sum(i.probability for i in out) or 1.0
    out.sort(key=lambda i: (-i.probability, i.distance_m))
    return [
        Intercept(i.reader_id, i.probability / mass, i.distance_m, i.eta_from_s, i.eta_to_s)
        for i in out[:limit]
    ]
