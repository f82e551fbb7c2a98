"""Route geometry: road-exact vertices with times, per-second points, GeoJSON helpers.

Split from :mod:`track_engine.routes` by job: that module decides *which* path and *what kind*
each stretch is; this one turns the decided segments into coordinates and times, vectorized.
"""

from __future__ import annotations

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


def geometry_of(
    graph: RoadGraph,
    segments: list[RouteSegment],
    passage_node: NDArray[np.int64],
    passage_us: NDArray[np.int64],
) -> pd.DataFrame:
    """Road-exact vertices with times, at constant speed along each drawn segment.

    Columns: POINT_COLUMNS plus ``segment`` (index of the segment a vertex ends; -1 for the
    very first vertex) and ``run`` (increments after every segment that is not drawn).
    """
    node_parts: list[NDArray[np.int64]] = [passage_node[:1]]
    t_parts: list[NDArray[np.int64]] = [passage_us[:1]]
    kind_parts: list[NDArray[np.object_]] = [np.array(["inferred"], dtype=object)]
    seg_parts: list[NDArray[np.int64]] = [np.array([-1])]
    run_parts: list[NDArray[np.int64]] = [np.array([0])]
    run = 0
    csr = graph.csr()
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
        nodes = np.asarray(seg.nodes, dtype=np.int64)
        if len(nodes) == 1:  # a stop: stay on the node until the next passage
            nodes = np.array([nodes[0], nodes[0]])
            frac = np.array([0.0, 1.0])
        else:
            step = np.asarray(csr[nodes[:-1], nodes[1:]]).ravel()
            cum = np.concatenate([[0.0], np.cumsum(step)])
            frac = cum / cum[-1]
        t = seg.start_us + np.rint(frac * (seg.end_us - seg.start_us)).astype(np.int64)
        node_parts.append(nodes[1:])
        t_parts.append(t[1:])
        kind_parts.append(np.full(len(nodes) - 1, seg.kind, dtype=object))
        seg_parts.append(np.full(len(nodes) - 1, i))
        run_parts.append(np.full(len(nodes) - 1, run))
    node = np.concatenate(node_parts)
    return pd.DataFrame(
        {
            "t_us": np.concatenate(t_parts),
            "x_m": graph.node_xy_m[node, 0],
            "y_m": graph.node_xy_m[node, 1],
            "lon": graph.node_lonlat[node, 0],
            "lat": graph.node_lonlat[node, 1],
            "kind": np.concatenate(kind_parts),
            "segment": np.concatenate(seg_parts),
            "run": np.concatenate(run_parts),
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
    out["kind"] = np.where(observed_mask(t, ps), "observed", out["kind"].to_numpy(dtype=object))
    return out[POINT_COLUMNS]


def mark_observed(geometry: pd.DataFrame, ps: pd.DataFrame) -> pd.DataFrame:
    geometry = geometry.copy()
    t = geometry["t_us"].to_numpy(dtype=np.int64)
    geometry["kind"] = np.where(
        observed_mask(t, ps), "observed", geometry["kind"].to_numpy(dtype=object)
    )
    return geometry


def observed_mask(t_us: NDArray[np.int64], ps: pd.DataFrame) -> NDArray[np.bool_]:
    """Whether each time falls inside some passage's [first_at, last_at] read window."""
    order = np.argsort(ps["first_at_us"].to_numpy(dtype=np.int64), kind="stable")
    first = ps["first_at_us"].to_numpy(dtype=np.int64)[order]
    # Windows can overlap (neighboring readers); the running max of their ends answers
    # "is t before the end of any window that started before t" in one searchsorted.
    last_max = np.maximum.accumulate(ps["last_at_us"].to_numpy(dtype=np.int64)[order])
    idx = np.searchsorted(first, t_us, side="right") - 1
    return (idx >= 0) & (last_max[np.maximum(idx, 0)] >= t_us)


def iso_utc(t_us: NDArray[np.int64]) -> list[str]:
    """ISO-8601 UTC strings with microseconds and a ``Z``."""
    stamps = pd.to_datetime(t_us, unit="us", utc=True)
    return [str(s) for s in stamps.strftime("%Y-%m-%dT%H:%M:%S.%fZ")]


def passage_records(ps: pd.DataFrame) -> list[dict[str, Any]]:
    """Passages as JSON-ready dicts (plain Python types, ISO-8601 UTC times)."""
    iso = {c: iso_utc(ps[c].to_numpy(dtype=np.int64)) for c in _PASSAGE_TIMES}
    readers = ps["reader_id"].astype(str).tolist()
    directions = ps["direction"].astype(str).tolist()
    peaks = ps["peak_rssi_dbm"].to_numpy(dtype=np.float64).tolist()
    counts = ps["read_count"].to_numpy(dtype=np.int64).tolist()
    lons = ps["lon"].to_numpy(dtype=np.float64).tolist()
    lats = ps["lat"].to_numpy(dtype=np.float64).tolist()
    return [
        {
            "reader_id": readers[i],
            "first_at": iso["first_at_us"][i],
            "last_at": iso["last_at_us"][i],
            "closest_at": iso["closest_at_us"][i],
            "peak_rssi_dbm": peaks[i],
            "read_count": counts[i],
            "direction": directions[i],
            "lon": lons[i],
            "lat": lats[i],
        }
        for i in range(len(ps))
    ]


def line_feature(
    tag_id: str, geometry: pd.DataFrame, passages: pd.DataFrame, flags: list[dict[str, Any]]
) -> dict[str, Any]:
    """A GeoJSON Feature: LineString through the road geometry, times and kinds per vertex.

    ``properties``: ``tag_id``, ``times`` (ISO-8601 UTC, one per coordinate), ``kinds``,
    ``breaks`` (coordinate indexes where the line resumes after a segment that is not
    drawn — a renderer should not join across them), ``passages`` and ``flags`` (dropped
    outliers, impossible moves). A route with a single position repeats it, since a LineString
    needs two.
    """
    geom = geometry
    coords = geom[["lon", "lat"]].to_numpy(dtype=np.float64).tolist()
    times = iso_utc(geom["t_us"].to_numpy(dtype=np.int64))
    kinds = geom["kind"].astype(str).tolist()
    if len(coords) == 1:
        coords, times, kinds = coords * 2, times * 2, kinds * 2
    breaks = np.flatnonzero(geom["run"].diff().fillna(0).to_numpy() != 0).tolist()
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": coords},
        "properties": {
            "tag_id": tag_id,
            "times": times,
            "kinds": kinds,
            "breaks": [int(b) for b in breaks],
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
    for record in passage_records(passages):
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [record["lon"], record["lat"]]},
                "properties": {"tag_id": tag_id, **record},
            }
        )
    return {"type": "FeatureCollection", "features": features}
