"""Route geometry: road-exact vertices with times, per-second points, GeoJSON helpers.

Split from :mod:`track_engine.routes` by job: it and its step modules decide *which* path and
*what kind* each stretch is; this one turns those segments into coordinates and times, vectorized.

Everything on the way to a GeoJSON answer works on numpy arrays and Python lists (a route has
tens of passages, where pandas' per-call overhead would dominate); data frames are built only
when a caller asks for one. The shape of a road path (its length and the fraction of it covered
at each vertex) depends on the path alone, so :class:`PathShapes` keeps it across routes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from track_engine.roads import RoadGraph

POINT_COLUMNS = ["t_us", "x_m", "y_m", "lon", "lat", "kind"]
_US_PER_S = 1_000_000
_PASSAGE_TIMES = ("first_at_us", "last_at_us", "closest_at_us")
DRAWN_KINDS = frozenset({"inferred", "gap", "stop"})
# Road paths whose shape is kept per graph (a city's readers pair up in far fewer ways).
_SHAPE_CACHE_PATHS = 100_000


@dataclass(frozen=True)
class RouteSegment:
    """The stretch between passage i and passage i+1 of a route."""

    from_reader: str
    to_reader: str
    start_us: int
    end_us: int
    distance_m: float  # along the chosen path; NaN when no path exists
    speed_mps: float  # distance / time; inf when the time is zero and the distance is not
    kind: str  # one of SEGMENT_KINDS
    nodes: tuple[int, ...]  # the chosen road path (empty when not drawn)

    @property
    def drawn(self) -> bool:
        """Whether the segment is part of the drawn route."""
        return self.kind in DRAWN_KINDS and bool(self.nodes)


class PathShapes:
    """Length and vertex fractions of road paths on one graph, computed once per path.

    Thread-safe (a lost race only computes a shape twice); bounded by dropping everything
    when ``max_paths`` is reached. The arrays handed out are read-only.
    """

    def __init__(self, graph: RoadGraph, max_paths: int = _SHAPE_CACHE_PATHS) -> None:
        self.graph = graph
        self.max_paths = max_paths
        self._lengths: dict[tuple[int, ...], float] = {}
        self._shapes: dict[tuple[int, ...], tuple[NDArray[np.int64], NDArray[np.float64]]] = {}
        self._lock = threading.Lock()

    def length_m(self, nodes: Sequence[int]) -> float:
        """:meth:`RoadGraph.path_length_m` of the path (ValueError on a missing edge)."""
        key = tuple(nodes)
        length = self._lengths.get(key)
        if length is None:
            length = self.graph.path_length_m(nodes)
            self._remember(self._lengths, key, length)
        return length

    def shape(self, nodes: tuple[int, ...]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """The vertices to draw (a one-node stop repeats its node) and the fraction of the
        path's length reached at each, from 0 to 1."""
        found = self._shapes.get(nodes)
        if found is not None:
            return found
        arr = np.asarray(nodes, dtype=np.int64)
        if len(arr) == 1:  # a stop: stay on the node until the next passage
            arr = np.array([arr[0], arr[0]])
            frac = np.array([0.0, 1.0])
        else:
            step = np.asarray(self.graph.csr()[arr[:-1], arr[1:]]).ravel()
            cum = np.concatenate([[0.0], np.cumsum(step)])
            frac = cum / cum[-1]
        arr.setflags(write=False)
        frac.setflags(write=False)
        self._remember(self._shapes, nodes, (arr, frac))
        return arr, frac

    def _remember(
        self, table: dict[tuple[int, ...], Any], key: tuple[int, ...], value: Any
    ) -> None:
        with self._lock:
            if len(table) >= self.max_paths:
                table.clear()
            table[key] = value


@dataclass(frozen=True)
class Vertices:
    """Road-exact vertices of a route, in time order (the arrays behind ``Route.geometry``).

    ``segment``: index of the segment a vertex ends (-1 for the very first vertex); ``run``:
    increments after every segment that is not drawn; ``kind``: the segment's kind, or
    ``"observed"`` inside a passage's read window.
    """

    t_us: NDArray[np.int64]
    node: NDArray[np.int64]
    kind: NDArray[np.object_]
    segment: NDArray[np.int64]
    run: NDArray[np.int64]


def vertices_of(
    shapes: PathShapes,
    segments: list[RouteSegment],
    passage_node: NDArray[np.int64],
    passage_us: NDArray[np.int64],
    first_at_us: NDArray[np.int64],
    last_at_us: NDArray[np.int64],
) -> Vertices:
    """Road-exact vertices with times, at constant speed along each drawn segment; a vertex
    inside some passage's ``[first_at, last_at]`` window is ``"observed"``."""
    node_parts: list[NDArray[np.int64]] = [passage_node[:1]]
    t_parts: list[NDArray[np.int64]] = [passage_us[:1]]
    kind_parts: list[NDArray[np.object_]] = [np.array(["inferred"], dtype=object)]
    seg_parts: list[NDArray[np.int64]] = [np.array([-1])]
    run_parts: list[NDArray[np.int64]] = [np.array([0])]
    run = 0
    for i, seg in enumerate(segments):
        if not seg.drawn:
            # Resume at the next passage's reader, in a new run so nothing joins across.
            run += 1
            node_parts.append(passage_node[i + 1 : i + 2])
            t_parts.append(passage_us[i + 1 : i + 2])
            kind_parts.append(np.array(["inferred"], dtype=object))
            seg_parts.append(np.array([i]))
            run_parts.append(np.array([run]))
            continue
        nodes, frac = shapes.shape(seg.nodes)
        t = seg.start_us + np.rint(frac * (seg.end_us - seg.start_us)).astype(np.int64)
        node_parts.append(nodes[1:])
        t_parts.append(t[1:])
        kind_parts.append(np.full(len(nodes) - 1, seg.kind, dtype=object))
        seg_parts.append(np.full(len(nodes) - 1, i))
        run_parts.append(np.full(len(nodes) - 1, run))
    t_us = np.concatenate(t_parts)
    kind = np.concatenate(kind_parts)
    kind = np.where(observed_mask(t_us, first_at_us, last_at_us), "observed", kind)
    return Vertices(
        t_us=t_us,
        node=np.concatenate(node_parts),
        kind=kind.astype(object, copy=False),
        segment=np.concatenate(seg_parts),
        run=np.concatenate(run_parts),
    )


def geometry_frame(graph: RoadGraph, vertices: Vertices) -> pd.DataFrame:
    """The vertices as a data frame: ``POINT_COLUMNS`` plus ``segment`` and ``run``."""
    node = vertices.node
    return pd.DataFrame(
        {
            "t_us": vertices.t_us,
            "x_m": graph.node_xy_m[node, 0],
            "y_m": graph.node_xy_m[node, 1],
            "lon": graph.node_lonlat[node, 0],
            "lat": graph.node_lonlat[node, 1],
            "kind": vertices.kind,
            "segment": vertices.segment,
            "run": vertices.run,
        }
    )


def per_second(
    geometry: pd.DataFrame, segments: list[RouteSegment], ps: pd.DataFrame
) -> pd.DataFrame:
    """Sample the geometry at every whole UTC second; holes where segments are not drawn."""
    t_geo = geometry["t_us"].to_numpy(dtype=np.int64)
    start = -(-int(t_geo[0]) // _US_PER_S) * _US_PER_S
    t = np.arange(start, int(t_geo[-1]) + 1, _US_PER_S, dtype=np.int64)
    bounds = ps["closest_at_us"].to_numpy(dtype=np.int64)
    seg_idx = np.clip(np.searchsorted(bounds, t, side="right") - 1, 0, max(len(segments) - 1, 0))
    seg_kind = np.array([s.kind for s in segments] or ["stop"], dtype=object)[seg_idx]
    drawn = np.array([s.drawn for s in segments] or [True], dtype=bool)[seg_idx]
    at_passage = np.isin(t, bounds)
    keep = drawn | at_passage
    t, seg_kind = t[keep], seg_kind[keep]
    # np.interp needs increasing sample times; a stop of zero duration repeats one, which only
    # makes the (identical) position ambiguous, never the result wrong.
    out = pd.DataFrame({"t_us": t})
    for col in ("x_m", "y_m", "lon", "lat"):
        out[col] = np.interp(t, t_geo, geometry[col].to_numpy(dtype=np.float64))
    out["kind"] = np.where(
        seg_kind == "stop", "stop", np.where(seg_kind == "gap", "gap", "inferred")
    )
    observed = observed_mask(
        t,
        ps["first_at_us"].to_numpy(dtype=np.int64),
        ps["last_at_us"].to_numpy(dtype=np.int64),
    )
    out["kind"] = np.where(observed, "observed", out["kind"].to_numpy(dtype=object))
    return out[POINT_COLUMNS]


def observed_mask(
    t_us: NDArray[np.int64], first_at_us: NDArray[np.int64], last_at_us: NDArray[np.int64]
) -> NDArray[np.bool_]:
    """Whether each time falls inside some passage's [first_at, last_at] read window."""
    order = np.argsort(first_at_us, kind="stable")
    first = first_at_us[order]
    # Windows can overlap (neighboring readers); the running max of their ends answers
    # "is t before the end of any window that started before t" in one searchsorted.
    last_max = np.maximum.accumulate(last_at_us[order])
    idx = np.searchsorted(first, t_us, side="right") - 1
    return (idx >= 0) & (last_max[np.maximum(idx, 0)] >= t_us)


def iso_utc(t_us: NDArray[np.int64]) -> list[str]:
    """ISO-8601 UTC strings with microseconds and a ``Z``."""
    stamps = np.datetime_as_string(np.asarray(t_us, dtype=np.int64).astype("M8[us]"), unit="us")
    return [s + "Z" for s in stamps.tolist()]


@dataclass(frozen=True)
class PassageColumns:
    """A route's passages as plain columns (what the GeoJSON answer shows of them)."""

    reader_id: list[str]
    first_at_us: NDArray[np.int64]
    last_at_us: NDArray[np.int64]
    closest_at_us: NDArray[np.int64]
    peak_rssi_dbm: list[float]
    read_count: list[int]
    direction: list[str]
    lon: list[float]
    lat: list[float]


def passage_columns(ps: pd.DataFrame) -> PassageColumns:
    """The columns of a route's passages frame (with ``lon`` and ``lat``)."""
    return PassageColumns(
        reader_id=ps["reader_id"].astype(str).tolist(),
        first_at_us=ps["first_at_us"].to_numpy(dtype=np.int64),
        last_at_us=ps["last_at_us"].to_numpy(dtype=np.int64),
        closest_at_us=ps["closest_at_us"].to_numpy(dtype=np.int64),
        peak_rssi_dbm=ps["peak_rssi_dbm"].to_numpy(dtype=np.float64).tolist(),
        read_count=ps["read_count"].to_numpy(dtype=np.int64).tolist(),
        direction=ps["direction"].astype(str).tolist(),
        lon=ps["lon"].to_numpy(dtype=np.float64).tolist(),
        lat=ps["lat"].to_numpy(dtype=np.float64).tolist(),
    )


def passage_records(ps: PassageColumns) -> list[dict[str, Any]]:
    """Passages as JSON-ready dicts (plain Python types, ISO-8601 UTC times)."""
    first, last, closest = (
        iso_utc(ps.first_at_us),
        iso_utc(ps.last_at_us),
        iso_utc(ps.closest_at_us),
    )
    return [
        {
            "reader_id": ps.reader_id[i],
            "first_at": first[i],
            "last_at": last[i],
            "closest_at": closest[i],
            "peak_rssi_dbm": ps.peak_rssi_dbm[i],
            "read_count": ps.read_count[i],
            "direction": ps.direction[i],
            "lon": ps.lon[i],
            "lat": ps.lat[i],
        }
        for i in range(len(ps.reader_id))
    ]


def line_feature(
    tag_id: str,
    graph: RoadGraph,
    vertices: Vertices,
    passages: PassageColumns,
    flags: list[dict[str, Any]],
) -> dict[str, Any]:
    """A GeoJSON Feature: LineString through the road geometry, times and kinds per vertex.

    ``properties``: ``tag_id``, ``times`` (ISO-8601 UTC, one per coordinate), ``kinds``,
    ``breaks`` (coordinate indexes where the line resumes after a segment that is not
    drawn — a renderer should not join across them), ``passages`` and ``flags`` (dropped
    outliers, impossible moves). A route with a single position repeats it, since a LineString
    needs two.
    """
    coords = graph.node_lonlat[vertices.node].tolist()
    times = iso_utc(vertices.t_us)
    kinds = [str(k) for k in vertices.kind.tolist()]
    if len(coords) == 1:
        coords, times, kinds = coords * 2, times * 2, kinds * 2
    breaks = (np.flatnonzero(np.diff(vertices.run) != 0) + 1).tolist()
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": coords},
        "properties": {
            "tag_id": tag_id,
            "times": times,
            "kinds": kinds,
            "breaks": breaks,
            "passages": passage_records(passages),
            "flags": flags,
        },
    }


def feature_collection(
    tag_id: str, geometry: pd.DataFrame, passages: pd.DataFrame, segments: list[RouteSegment]
) -> dict[str, Any]:
    """A GeoJSON FeatureCollection: one LineString per drawn segment, one Point per passage.

    Easier to style than :meth:`to_geojson` (color by segment kind, label readers).
    """
    features: list[dict[str, Any]] = []
    geom = geometry
    for i, seg in enumerate(segments):
        if not seg.drawn:
            continue
        rows = np.flatnonzero(geom["segment"].to_numpy() == i)
        # A segment's vertices start at the previous segment's last one.
        part = geom.iloc[np.concatenate([[rows[0] - 1], rows])]
        coords = part[["lon", "lat"]].to_numpy(dtype=np.float64).tolist()
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": coords},
                "properties": {
                    "tag_id": tag_id,
                    "kind": seg.kind,
                    "from_reader": seg.from_reader,
                    "to_reader": seg.to_reader,
                    "start": iso_utc(np.array([seg.start_us]))[0],
                    "end": iso_utc(np.array([seg.end_us]))[0],
                    "distance_m": seg.distance_m,
                    "speed_mps": seg.speed_mps,
                    "times": iso_utc(part["t_us"].to_numpy(dtype=np.int64)),
                },
            }
        )
    for record in passage_records(passage_columns(passages)):
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [record["lon"], record["lat"]]},
                "properties": {"tag_id": tag_id, **record},
            }
        )
    return {"type": "FeatureCollection", "features": features}
