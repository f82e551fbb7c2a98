"""Where to intercept: the readers a bike will likely be heard at next, from the same road model
as :mod:`track_engine.where_now` (pure, no SQL).

From the last sighting's node the bike heads down one of the roads; every road position
within ``horizon_m`` is as likely a heading as any other (by road length). A reader is heard
next if the bike heads somewhere behind it, every reader before it on the way missed it, and
it does not: ``P(r) ~ length behind r x prod(miss before r) x (1 - miss(r))``. The ETA window
is the road distance at the e-bike speed range.

The heading. When the node the bike came from is known (the one before the sighting's node on
the way from the previous sighting), the road length behind each first step from the sighting
is weighed by how that step turns: ``Heading.back`` for the way it came (riders rarely turn
back), ``Heading.straight`` for the step closest to straight on, 1 for the other turns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.sparse.csgraph import dijkstra

from track_engine.roads import NoPathError, ReaderPaths, RoadGraph
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


@dataclass(frozen=True, slots=True)
class Heading:
    """How the way the bike came weighs its next step (see the module docstring)."""

    came_from: int | None  # the node before the sighting's node on the way in
    back: float = 0.1
    straight: float = 2.0
    # The first step known (the accuracy bench's oracle bound): every other step weighs 0.
    only_step: int | None = None


def next_readers_by_model(
    graph: RoadGraph,
    start_node: int,
    reader_nodes: Mapping[str, int],
    miss_rate: Mapping[str, float],
    *,
    horizon_m: float = 1000.0,
    limit: int | None = 3,
    speeds: SpeedModel | None = None,
    heading: Heading | None = None,
) -> list[Intercept]:
    """The ``limit`` likeliest next readers (every reachable one with ``limit=None``; leave
    the sighting's own place out of ``reader_nodes``); ``miss_rate`` by reader (0.3 when not
    given). Probabilities are shares of the reachable readers' total (they sum to 1 over the
    full list)."""
    model = speeds or SpeedModel()
    dist, pred = dijkstra(
        graph.csr(), directed=True, indices=start_node, return_predecessors=True, limit=horizon_m
    )
    reached = np.flatnonzero(np.isfinite(dist))
    order = reached[np.argsort(-dist[reached], kind="stable")]
    parent = np.where(pred >= 0, pred, -1).astype(np.int64)
    weight = _step_weights(graph, start_node, parent, reached, heading)
    # Road length behind each node (its subtree), weighed by its first step, leaves first.
    below = np.zeros(graph.node_count)
    up = parent[reached]
    below[reached] = (dist[reached] - np.where(up >= 0, dist[np.maximum(up, 0)], 0.0)) * weight[
        reached
    ]
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
        share = float(below[node]) / total * p_before * (1.0 - own)  # plain floats: JSON
        d = float(dist[node])
        out.append(
            Intercept(reader, share, d, d / (model.max_kmh / 3.6), d / (model.min_kmh / 3.6))
        )
    mass = sum(i.probability for i in out) or 1.0
    out.sort(key=lambda i: (-i.probability, i.distance_m))
    return [
        Intercept(i.reader_id, i.probability / mass, i.distance_m, i.eta_from_s, i.eta_to_s)
        for i in (out if limit is None else out[:limit])
    ]


def _step_weights(
    graph: RoadGraph,
    start: int,
    parent: NDArray[np.int64],
    reached: NDArray[np.int64],
    heading: Heading | None,
) -> NDArray[np.float64]:
    """Each reached node's weight: that of the first step from ``start`` on its tree path."""
    weight = np.ones(graph.node_count)
    if heading is None:
        return weight
    # First step of every reached node: the start's children name themselves, and every
    # other node takes its parent's (as many rounds as the tree is deep within the horizon).
    first = np.full(graph.node_count, -1, dtype=np.int64)
    kids = reached[parent[reached] == start]
    first[kids] = kids
    rest = reached[(parent[reached] >= 0) & (parent[reached] != start)]
    while rest.size:
        first[rest] = first[parent[rest]]
        left = first[rest] < 0
        if left.all():  # nothing more can be named (cannot happen on a shortest-path tree)
            break
        rest = rest[left]
    # One weight per first step: back, the straightest, or a turn.
    steps = np.unique(first[reached][first[reached] >= 0])
    if heading.only_step is not None:
        weight[reached] = (first[reached] == heading.only_step).astype(np.float64)
        weight[start] = 1.0
        return weight
    by_step = {int(s): 1.0 for s in steps.tolist()}
    if heading.came_from is None:
        return weight
    xy = graph.node_xy_m
    came = xy[start] - xy[heading.came_from]
    forward = [int(s) for s in steps.tolist() if s != heading.came_from]
    if forward and np.hypot(*came) > 0:
        out = xy[np.asarray(forward)] - xy[start]
        cos = out @ came / np.maximum(np.hypot(out[:, 0], out[:, 1]) * np.hypot(*came), 1e-9)
        best = int(np.argmax(cos))
        if cos[best] > 0.5:  # within 60 degrees of straight on
            by_step[forward[best]] = heading.straight
    if heading.came_from in by_step:
        by_step[heading.came_from] = heading.back
    for s, w in by_step.items():
        weight[first == s] = w
    weight[start] = 1.0
    return weight


def came_from_node(paths: ReaderPaths, previous_reader: str, reader_id: str) -> int | None:
    """The node before ``reader_id``'s on the shortest way from ``previous_reader`` (None when
    unknown: no previous reader, the same one, or no road between them)."""
    if not previous_reader or previous_reader == reader_id:
        return None
    if previous_reader not in paths.reader_node or reader_id not in paths.reader_node:
        return None
    try:
        nodes = paths.path(previous_reader, reader_id)
    except NoPathError:
        return None
    return nodes[-2] if len(nodes) >= 2 else None


def other_readers(paths: ReaderPaths, reader_id: str, place_m: float = 40.0) -> dict[str, int]:
    """Reader -> node of every reader but those of ``reader_id``'s own place (within
    ``place_m`` by road either way: they hear the same pass)."""
    i = paths.reader_ids.index(reader_id)
    row, col = paths.distance_matrix_m[i], paths.distance_matrix_m[:, i]
    near = np.minimum(row, col) <= place_m
    return {r: paths.reader_node[r] for j, r in enumerate(paths.reader_ids) if not near[j]}
