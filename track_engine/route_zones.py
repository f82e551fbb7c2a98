"""Readers whose surveyed read zone covers a second road: which passages were heard from it.

A reader stands on a pole beside its road node, and its read zone (the surveyed circle round
the pole where it hears tags) can reach a road that does not cross the node: a street on the
other side of a barrier, a bridge, a ramp, whose way to the node by road is long. A read there
says the bike was *in the zone*, so the route may go past the node on that road as well as
through it. Step 1b of :func:`track_engine.routes.build_route` (after
:func:`track_engine.route_outliers.passed_by`, which judges roads past the node without a
survey): between the passages before and after, the most probable way that crosses the node is
compared with the most probable one that does not cross it but enters the zone. The read is
explained equally by both (each brings the tag into the zone), so the path evidence decides:
when the way past the node is the more probable, the passage is passed by.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from track_engine.path_candidates import Candidate
from track_engine.paths import NegativeEvidenceChooser
from track_engine.roads import NoPathError, ReaderPaths, RoadGraph

__all__ = ["ReadZone", "heard_in_zone", "zone_distance_m"]

_US_PER_S = 1_000_000


@dataclass(frozen=True)
class ReadZone:
    """A reader's surveyed read zone: its pole's position (the road graph's x/y, meters) and
    how far round it the reader hears a tag (meters, along the ground)."""

    x_m: float
    y_m: float
    range_m: float


def heard_in_zone(
    readers: list[str],
    t: NDArray[np.int64],
    keep: NDArray[np.bool_],
    graph: RoadGraph,
    reader_paths: ReaderPaths,
    chooser: NegativeEvidenceChooser,
    zones: Mapping[str, ReadZone],
) -> dict[int, int]:
    """Kept passages heard from a road inside the reader's zone, not through its node:
    ``{passage: the kept passage before it}`` (see the module docstring)."""
    out: dict[int, int] = {}
    idx = np.flatnonzero(keep).tolist()
    times = t.tolist()
    node = reader_paths.reader_node
    prev = idx[0] if idx else 0
    for cur, nxt in itertools.pairwise(idx[1:]):
        a, x, b = readers[prev], readers[cur], readers[nxt]
        zone = zones.get(x)
        if zone is None or a == b or node[x] in (node[a], node[b]):
            prev = cur
            continue
        dt_s = (times[nxt] - times[prev]) / _US_PER_S
        try:
            ranked = chooser.ranked(reader_paths, a, b, dt_s)
        except NoPathError:  # no way between the neighbours: nothing to compare
            prev = cur
            continue
        excuse = -math.log(min(max(reader_paths.miss_rate_of(x), 1e-6), 1.0))
        through, past = _best_through_and_past(ranked, node[x], x, excuse, graph, zone)
        if past is None or through is None or past <= through:
            prev = cur
            continue
        out[cur] = prev
    return out


def zone_distance_m(graph: RoadGraph, nodes: tuple[int, ...], zone: ReadZone) -> float:
    """How far (meters) the polyline of ``nodes`` stays outside ``zone``; 0 when it enters."""
    p = np.array([zone.x_m, zone.y_m])
    pts = graph.node_xy_m[np.asarray(nodes, dtype=np.int64)]
    if len(pts) == 1:
        return max(float(np.hypot(*(pts[0] - p))) - zone.range_m, 0.0)
    a, d = pts[:-1], pts[1:] - pts[:-1]
    sq = (d * d).sum(axis=1)
    u = np.clip(((p - a) * d).sum(axis=1) / np.where(sq > 0, sq, 1.0), 0.0, 1.0)
    return max(float(np.min(np.hypot(*(a + u[:, None] * d - p).T))) - zone.range_m, 0.0)


def _best_through_and_past(
    ranked: list[tuple[float, Candidate]],
    node: int,
    heard: str,
    excuse: float,
    graph: RoadGraph,
    zone: ReadZone,
) -> tuple[float | None, float | None]:
    """The best log-likelihood of a way crossing ``node`` and of one past it entering
    ``zone`` (None where there is none, or all are impossible). The reader that heard the bike
    is not silent on a way through its node: its missed-reader cost (``excuse``) is taken back.
    """
    through = past = -math.inf
    for s, c in ranked:
        if node in c.nodes:
            through = max(through, s + (excuse if heard in c.missed_readers else 0.0))
        elif s > past and zone_distance_m(graph, c.nodes, zone) <= 0.0:
            past = s
    return (
        through if math.isfinite(through) else None,
        past if math.isfinite(past) else None,
    )
