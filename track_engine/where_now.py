"""Where a bike can be now: a probability map from its last sighting, pure (no SQL, no I/O).

The model. From the last sighting's node the rider goes on along the roads at an e-bike speed
``v`` (uniform over :class:`SpeedModel`'s range) and keeps riding for a remaining time ``T``
(exponential: trips end and bikes get parked), so at ``t`` seconds after the sighting the
distance ridden is ``D = v * min(t, T)``. The probability of ``D`` falling in a distance band
is shared equally by the road positions at that band's distance (shortest road distance, a
Dijkstra bounded by the reach ``v_max * t``). Every reader on the way from the sighting to a
position has stayed silent since; each multiplies that position's probability by its miss
rate (a silent reader makes a way less likely, not impossible), and the map is renormalized.

Probability is put on points along every road segment within reach, then summed
into square cells: the smallest set of cells holding 90% of it is "the region", whose area is
compared with the reach circle (``pi * (v_max * t)**2``) an officer would draw without it.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.sparse.csgraph import dijkstra

from track_engine.roads import EARTH_RADIUS_M, ReaderPaths, RoadGraph

# Distances are binned this finely when sharing a band's probability among its positions.
_BAND_M = 50.0
# Points along each segment carry its probability (a cell then gets its share of a long one).
_POINT_SPACING_M = 20.0
_TIME_STEPS = 64
_EDGE_MARGIN_M = 300.0
# Silence is weighed as miss_rate ** SILENCE_WEIGHT: the model puts a position behind the
# readers of the shortest way only, and riders take other ways (past other readers, or none),
# so full weight is over-sure. 0.75 was fitted on the accuracy bench's seed 11 (50% coverage,
# 30% misses) and checked on seeds 7 and 23: the 90% region's hit rate went from 0.85-0.89
# to 0.91-0.93 (docs/accuracy.md, "Where now").
SILENCE_WEIGHT = 0.75

_AFFINE: weakref.WeakKeyDictionary[RoadGraph, NDArray[np.float64]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class SpeedModel:
    """How a stolen e-bike moves after a sighting: speeds (km/h, uniform) and how long it is
    still ridden (exponential with mean ``mean_ride_s``; after that it stands still)."""

    min_kmh: float = 10.0
    max_kmh: float = 32.0
    steps: int = 12
    mean_ride_s: float = 1200.0

    def max_reach_m(self, elapsed_s: float) -> float:
        """The farthest the bike can have ridden in ``elapsed_s`` (the reach circle's radius)."""
        return self.max_kmh / 3.6 * max(elapsed_s, 0.0)

    def distance_distribution(
        self, elapsed_s: float, band_edges_m: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Probability of the distance ridden falling in each band ``[edges[i], edges[i+1])``."""
        speeds = np.linspace(self.min_kmh, self.max_kmh, self.steps) / 3.6
        t = max(elapsed_s, 0.0)
        # Riding time: min(t, T), T ~ Exp(mean); a grid of stop times plus "still riding".
        grid = np.linspace(0.0, t, _TIME_STEPS + 1)
        cdf = 1.0 - np.exp(-grid / self.mean_ride_s)
        times = np.append((grid[:-1] + grid[1:]) / 2, t)
        weights = np.append(np.diff(cdf), 1.0 - cdf[-1])
        dist = np.outer(speeds, times).ravel()
        mass = np.tile(weights / len(speeds), len(speeds))
        hist, _ = np.histogram(
            np.minimum(dist, band_edges_m[-1] - 1e-9), band_edges_m, weights=mass
        )
        return hist


@dataclass(frozen=True)
class WhereNow:
    """A probability map over square cells of ``cell_m`` meters (indices ``cell_ix``,
    ``cell_iy`` into the graph's metric plane), most probable first; probabilities sum to 1."""

    elapsed_s: float
    reach_m: float
    cell_m: float
    cell_ix: NDArray[np.int64]
    cell_iy: NDArray[np.int64]
    cell_prob: NDArray[np.float64]

    def region_size(self, mass: float = 0.9) -> int:
        """How many of the most probable cells it takes to hold ``mass`` of the probability."""
        if self.cell_prob.size == 0:
            return 0
        held = np.cumsum(self.cell_prob)
        return min(int(np.searchsorted(held, mass - 1e-12)) + 1, len(held))

    def region_area_km2(self, mass: float = 0.9) -> float:
        """Area of the smallest set of cells holding ``mass`` of the probability."""
        return self.region_size(mass) * self.cell_m**2 / 1e6

    def reach_area_km2(self) -> float:
        """Area of the reach circle (radius: the farthest ride at top speed)."""
        return float(np.pi * self.reach_m**2 / 1e6)

    def contains(self, x_m: float, y_m: float, mass: float = 0.9) -> bool:
        """Whether the metric position lies in a cell of the ``mass`` region."""
        k = self.region_size(mass)
        ix, iy = int(np.floor(x_m / self.cell_m)), int(np.floor(y_m / self.cell_m))
        return bool(np.any((self.cell_ix[:k] == ix) & (self.cell_iy[:k] == iy)))

    def region_geojson(self, graph: RoadGraph, mass: float = 0.9) -> dict[str, object]:
        """The region's cells as a GeoJSON FeatureCollection of lon/lat squares, each with its
        ``probability``."""
        k = self.region_size(mass)
        to_lonlat = _affine(graph)
        features: list[dict[str, object]] = []
        for ix, iy, p in zip(
            self.cell_ix[:k].tolist(), self.cell_iy[:k].tolist(), self.cell_prob[:k].tolist(),
            strict=True,
        ):  # fmt: skip
            corners = (
                np.array(
                    [[ix, iy], [ix + 1, iy], [ix + 1, iy + 1], [ix, iy + 1], [ix, iy]], dtype=float
                )
                * self.cell_m
            )
            ring = np.column_stack([corners, np.ones(5)]) @ to_lonlat
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Polygon", "coordinates": [np.round(ring, 7).tolist()]},
                    "properties": {"probability": round(p, 6)},
                }
            )
        return {"type": "FeatureCollection", "features": features}


def where_now(
    graph: RoadGraph,
    start_node: int,
    elapsed_s: float,
    silent_miss_rate: Mapping[int, float],
    *,
    speeds: SpeedModel | None = None,
    cell_m: float = 100.0,
    silence_weight: float = SILENCE_WEIGHT,
) -> WhereNow:
    """The probability map of where the bike seen at ``start_node`` is ``elapsed_s`` later.

    ``silent_miss_rate``: node -> miss rate of the reader(s) there that have not heard the bike
    since (pass several readers at one node as the product of their rates; leave out the
    sighting's own place); each weighs as ``rate ** silence_weight``.
    """
    if not 0 <= start_node < graph.node_count:
        raise ValueError(f"start node {start_node} is not in the graph")
    if cell_m <= 0:
        raise ValueError("cell_m must be positive")
    model = speeds or SpeedModel()
    reach = model.max_reach_m(elapsed_s)
    # A little beyond the reach, so that the road leading out of it is partly covered.
    dist, pred = dijkstra(
        graph.csr(), directed=True, indices=start_node, return_predecessors=True,
        limit=reach + _EDGE_MARGIN_M,
    )  # fmt: skip
    reached = np.flatnonzero(np.isfinite(dist))
    silence = silence_weight * silence_log(graph.node_count, pred, reached, silent_miss_rate)
    pts = _points_along_edges(graph, dist, reached, silence)
    edges = np.arange(0.0, reach + 2 * _BAND_M, _BAND_M)
    band = np.minimum(np.searchsorted(edges, pts.distance_m, side="right") - 1, len(edges) - 2)
    # Each band's probability is shared by the road length at that distance, then silenced.
    per_band = np.bincount(band, weights=pts.length_m, minlength=len(edges) - 1)
    mass = model.distance_distribution(elapsed_s, edges)[band] * pts.length_m / per_band[band]
    mass = np.where(pts.distance_m <= reach + 1e-9, mass, 0.0) * np.exp(pts.silence_log)
    if mass.sum() <= 0:  # nothing reachable (or only past certain readers): the start
        mass = (pts.distance_m == 0).astype(float)
    ix = np.floor(pts.x_m / cell_m).astype(np.int64)
    iy = np.floor(pts.y_m / cell_m).astype(np.int64)
    keys, inverse = np.unique(np.column_stack([ix, iy]), axis=0, return_inverse=True)
    prob = np.bincount(inverse.ravel(), weights=mass, minlength=len(keys))
    order = np.argsort(-prob, kind="stable")
    prob = prob[order] / prob.sum()
    return WhereNow(
        elapsed_s=float(elapsed_s),
        reach_m=float(reach),
        cell_m=float(cell_m),
        cell_ix=keys[order, 0],
        cell_iy=keys[order, 1],
        cell_prob=prob,
    )


def silence_log(
    n: int, pred: NDArray[np.int32], reached: NDArray[np.int64], miss: Mapping[int, float]
) -> NDArray[np.float64]:
    """log of the product of the silent readers' miss rates on the tree path to each reached
    node (its own included), by pointer jumping: O(log depth) vectorised rounds."""
    own = np.zeros(n)
    for node, rate in miss.items():
        if 0 <= node < n:
            own[node] += np.log(min(max(rate, 1e-6), 1.0))
    acc = own.copy()
    up = np.where(pred >= 0, pred, -1).astype(np.int64)
    while np.any(up[reached] >= 0):
        has = up >= 0
        acc = acc + np.where(has, acc[np.where(has, up, 0)], 0.0)
        up = np.where(has, up[np.where(has, up, 0)], -1)
    return acc[reached]


@dataclass(frozen=True, slots=True)
class _Points:
    """Points along the road segments: position, road distance from the
    start, the road length each stands for, and the log of the silence on the way to it."""

    x_m: NDArray[np.float64]
    y_m: NDArray[np.float64]
    distance_m: NDArray[np.float64]
    length_m: NDArray[np.float64]
    silence_log: NDArray[np.float64]


def _points_along_edges(
    graph: RoadGraph,
    dist: NDArray[np.float64],
    reached: NDArray[np.int64],
    silence: NDArray[np.float64],
) -> _Points:
    """Points every ~20 m along each road segment leaving a reached node (not only the
    shortest-path tree's: a bike parked on a cross street is somewhere too), at their road
    distance through that node and past the readers up to it; the start keeps a point."""
    position = np.full(graph.node_count, -1, dtype=np.int64)
    position[reached] = np.arange(len(reached))
    src, dst = graph.edge_src.astype(np.int64), graph.edge_dst.astype(np.int64)
    keep = np.isfinite(dist[src])
    src, dst, span = src[keep], dst[keep], graph.edge_length_m[keep]
    count = np.maximum(np.ceil(span / _POINT_SPACING_M).astype(np.int64), 1)
    which = np.repeat(np.arange(len(src)), count)
    first = np.repeat(np.cumsum(count) - count, count)
    frac = (np.arange(len(which)) - first + 0.5) / count[which]
    xy = graph.node_xy_m
    a, b = xy[src[which]], xy[dst[which]]
    pts = a + (b - a) * frac[:, None]
    root = reached[dist[reached] == 0][:1]
    return _Points(
        x_m=np.concatenate([pts[:, 0], xy[root, 0]]),
        y_m=np.concatenate([pts[:, 1], xy[root, 1]]),
        distance_m=np.concatenate([dist[src[which]] + span[which] * frac, np.zeros(len(root))]),
        length_m=np.concatenate([span[which] / count[which], np.full(len(root), _POINT_SPACING_M)]),
        silence_log=np.concatenate([silence[position[src[which]]], np.zeros(len(root))]),
    )


def _affine(graph: RoadGraph) -> NDArray[np.float64]:
    """A (3, 2) matrix taking ``[x_m, y_m, 1]`` to lon/lat, fitted on the graph's nodes (the
    projection is equirectangular: lon follows x, lat follows y). Along an axis the nodes do
    not spread on (a single street), the sphere's scale stands in for the fit."""
    kept = _AFFINE.get(graph)
    if kept is not None:
        return kept
    xy, ll = graph.node_xy_m, graph.node_lonlat
    deg_per_m = 180.0 / np.pi / EARTH_RADIUS_M
    lat0 = float(np.mean(ll[:, 1])) if len(ll) else 0.0
    fitted = np.zeros((3, 2))
    for axis, fallback in ((0, deg_per_m / np.cos(np.radians(lat0))), (1, deg_per_m)):
        coord, deg = xy[:, axis], ll[:, axis]
        spread = len(coord) > 1 and float(np.ptp(coord)) > 1.0
        slope = float(np.polyfit(coord, deg, 1)[0]) if spread else fallback
        fitted[axis, axis] = slope
        fitted[2, axis] = float(np.mean(deg - slope * coord)) if len(coord) else 0.0
    _AFFINE[graph] = fitted
    return fitted


def silent_readers(
    paths: ReaderPaths, seen_reader: str, *, place_m: float = 40.0
) -> dict[int, float]:
    """Node -> product of miss rates of the readers that have stayed silent since a sighting at
    ``seen_reader``: every reader of ``paths`` but those of the sighting's own place (within
    ``place_m`` by road either way: one place, heard as one passage)."""
    own = paths.reader_ids.index(seen_reader) if seen_reader in paths.reader_node else -1
    out: dict[int, float] = {}
    for i, reader in enumerate(paths.reader_ids):
        if (
            own >= 0
            and min(paths.distance_matrix_m[own, i], paths.distance_matrix_m[i, own]) <= place_m
        ):
            continue
        node = paths.reader_node[reader]
        out[node] = out.get(node, 1.0) * paths.miss_rate_of(reader)
    return out
