"""How far the wrong metres of a route lie from the true way (issue #17, "what bounds it").

Recall and precision count a drawn edge as wrong whether it is a cycleway 8 m beside the
ridden street or another street 300 m away. An officer reading a route cares which. For every
scored trip (the scorer's rule: :func:`track_engine.scoring.drawn_edges`), the drawn edges
that are not true (with multiplicity: the precision loss) are sampled every ``_STEP_M`` and
each sample's distance to the nearest point of the trip's true way is taken; the true edges
not drawn (the recall loss) likewise against the drawn way. The result is length-weighted:
how many of the wrong metres lie within 5, 10, 20, 50, 100 m of the way they should be on.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from track_engine.roads import RoadGraph
from track_engine.route_result import Route
from track_engine.scoring import drawn_edges

__all__ = ["BINS_M", "distance_summary", "point_to_path_m", "wrong_way_distances"]

BINS_M = (5.0, 10.0, 20.0, 50.0, 100.0)
_STEP_M = 2.0

Edge = tuple[int, int]


def point_to_path_m(points: NDArray[np.float64], segs: NDArray[np.float64]) -> NDArray[np.float64]:
    """Distance from each point (n, 2) to the nearest of the segments (m, 2, 2); inf if none."""
    if len(segs) == 0:
        return np.full(len(points), np.inf)
    a, b = segs[:, 0, :], segs[:, 1, :]
    ab = b - a
    den = np.maximum((ab * ab).sum(1), 1e-12)
    ap = points[:, None, :] - a[None, :, :]
    t = np.clip((ap * ab[None]).sum(2) / den[None], 0.0, 1.0)
    near = a[None] + t[..., None] * ab[None]
    out: NDArray[np.float64] = np.hypot(*(points[:, None, :] - near).transpose(2, 0, 1)).min(1)
    return out


def _samples(
    edges: list[Edge], xy: NDArray[np.float64], length: dict[Edge, float]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Points along ``edges`` (straight between their nodes) and the road metres each stands for."""
    pts: list[NDArray[np.float64]] = []
    weights: list[NDArray[np.float64]] = []
    for e in edges:
        k = max(1, math.ceil(length[e] / _STEP_M))
        f = (np.arange(k) + 0.5) / k
        pts.append(xy[e[0]][None, :] * (1 - f)[:, None] + xy[e[1]][None, :] * f[:, None])
        weights.append(np.full(k, length[e] / k))
    if not pts:
        return np.empty((0, 2)), np.empty(0)
    return np.concatenate(pts), np.concatenate(weights)


def _segments(edges: list[Edge], xy: NDArray[np.float64]) -> NDArray[np.float64]:
    if not edges:
        return np.empty((0, 2, 2))
    return np.stack([np.stack([xy[a], xy[b]]) for a, b in edges])


def wrong_way_distances(
    routes: dict[str, Route], spans: pd.DataFrame, true_edges: pd.DataFrame, graph: RoadGraph
) -> dict[str, Any]:
    """Length-weighted distances of the wrongly drawn metres to the true way (``false``) and
    of the missed true metres to the drawn way (``missed``); see :func:`distance_summary`."""
    xy = np.asarray(graph.node_xy_m, dtype=np.float64)
    length = {
        (int(s), int(d)): float(m)
        for s, d, m in zip(graph.edge_src, graph.edge_dst, graph.edge_length_m, strict=True)
    }
    true_by_trip = _edges_by_trip(true_edges)
    false_d: list[NDArray[np.float64]] = []
    false_w: list[NDArray[np.float64]] = []
    miss_d: list[NDArray[np.float64]] = []
    miss_w: list[NDArray[np.float64]] = []
    for tag, g in spans.groupby("tag_id", sort=False):
        route = routes.get(str(tag))
        drawn = drawn_edges(route, g) if route is not None else pd.DataFrame(
            columns=["trip_id", "src", "dst"])  # fmt: skip
        drawn_by_trip = _edges_by_trip(drawn)
        for trip in g["trip_id"].astype(int).tolist():
            true_e = true_by_trip.get(trip, [])
            drawn_e = drawn_by_trip.get(trip, [])
            t_count, d_count = Counter(true_e), Counter(drawn_e)
            wrong = list((d_count - t_count).elements())
            missed = list((t_count - d_count).elements())
            p, w = _samples(wrong, xy, length)
            false_d.append(point_to_path_m(p, _segments(list(t_count), xy)))
            false_w.append(w)
            p, w = _samples(missed, xy, length)
            miss_d.append(point_to_path_m(p, _segments(list(d_count), xy)))
            miss_w.append(w)
    return {
        "false": distance_summary(_cat(false_d), _cat(false_w)),
        "missed": distance_summary(_cat(miss_d), _cat(miss_w)),
    }


def _edges_by_trip(edges: pd.DataFrame) -> dict[int, list[Edge]]:
    """The directed edges of each trip, in order, with repeats."""
    trip = edges["trip_id"].to_numpy(np.int64).tolist()
    src = edges["src"].to_numpy(np.int64).tolist()
    dst = edges["dst"].to_numpy(np.int64).tolist()
    out: dict[int, list[Edge]] = {}
    for t, a, b in zip(trip, src, dst, strict=True):
        out.setdefault(t, []).append((a, b))
    return out


def _cat(parts: list[NDArray[np.float64]]) -> NDArray[np.float64]:
    return np.concatenate(parts) if parts else np.empty(0)


def distance_summary(dist_m: NDArray[np.float64], weight_m: NDArray[np.float64]) -> dict[str, Any]:
    """Total metres, the metres within each of ``BINS_M`` of the other way, and the
    length-weighted median and 90th percentile distance (inf: no way to measure against)."""
    total = float(weight_m.sum())
    out: dict[str, Any] = {"metres": round(total, 0)}
    for b in BINS_M:
        out[f"within_{b:g}_m"] = round(float(weight_m[dist_m <= b].sum()), 0)
    if total <= 0.0:
        out["median_m"] = out["p90_m"] = None
        return out
    order = np.argsort(dist_m, kind="mergesort")
    cum = np.cumsum(weight_m[order]) / total
    d = dist_m[order]

    def at(q: float) -> float | None:
        v = float(d[min(int(np.searchsorted(cum, q)), len(d) - 1)])
        return round(v, 1) if math.isfinite(v) else None

    out["median_m"] = at(0.5)
    out["p90_m"] = at(0.9)
    return out
