"""Stitch one tag's passages into a route on the road, with a point per second.

Between consecutive passages (ordered by closest approach) a path is chosen on the road graph
by :func:`choose_path` — for now the shortest path; it is the one place that will later weigh
time consistency and negative evidence (readers on a candidate path that did not hear the tag).
Each segment then gets a kind from its implied speed:

* ``"stop"``       — the path has zero length (the same reader, or readers on one node): the
  bike stayed put; drawn as a stationary stretch.
* ``"inferred"``   — a plausible speed: the bike is assumed to ride the path at constant speed.
* ``"gap"``        — slower than ``min_speed_mps``: the bike was somewhere unseen for part of
  the time. The path is still drawn (it is the most likely way it went) but every point on it
  is marked ``"gap"``, because its timing along the path is a guess. Also used when no road
  path exists at all (``distance_m`` is NaN); that one is not drawn.
* ``"impossible"`` — faster than ``max_speed_mps``: two readers too far apart for the time,
  i.e. a cloned or misread tag. Not drawn; the per-second points have a hole there and the
  GeoJSON line breaks (``properties["breaks"]``).

Two tables come out: ``geometry`` follows the road exactly (every node of every path, with its
interpolated time: the per-meter shape) and ``points`` samples it at every whole UTC second.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from track_engine.roads import NoPathError, ReaderPaths, RoadGraph, precompute_reader_paths

POINT_COLUMNS = ["t_us", "x_m", "y_m", "lon", "lat", "kind"]
SEGMENT_KINDS = ("inferred", "gap", "impossible", "stop")
POINT_KINDS = ("observed", "inferred", "stop", "gap")
_US_PER_S = 1_000_000
_PASSAGE_TIMES = ("first_at_us", "last_at_us", "closest_at_us")
_DRAWN = frozenset({"inferred", "gap", "stop"})


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
        return self.kind in _DRAWN and bool(self.nodes)


@dataclass(frozen=True, eq=False)
class Route:
    """A tag's reconstructed route.

    ``points``: one row per whole UTC second from the first to the last passage (``POINT_COLUMNS``;
    ``kind`` in ``POINT_KINDS``, ``"observed"`` while the tag was in a reader's range), except
    inside segments that are not drawn. ``geometry``: the same columns at every road vertex,
    plus ``segment`` and ``run``. ``passages``: sorted by closest_at_us, with the reader's road
    ``node``, ``x_m``, ``y_m``, ``lon``, ``lat`` added.
    """

    tag_id: str
    points: pd.DataFrame
    segments: list[RouteSegment]
    passages: pd.DataFrame
    geometry: pd.DataFrame

    def to_geojson(self) -> dict[str, Any]:
        """A GeoJSON Feature: LineString through the road geometry, times and kinds per vertex.

        ``properties``: ``tag_id``, ``times`` (ISO-8601 UTC, one per coordinate), ``kinds``,
        ``breaks`` (coordinate indexes where the line resumes after a segment that is not
        drawn — a renderer should not join across them) and ``passages``. A route with a single
        position repeats it, since a LineString needs two.
        """
        geom = self.geometry
        coords = geom[["lon", "lat"]].to_numpy(dtype=np.float64).tolist()
        times = _iso_utc(geom["t_us"].to_numpy(dtype=np.int64))
        kinds = geom["kind"].astype(str).tolist()
        if len(coords) == 1:
            coords, times, kinds = coords * 2, times * 2, kinds * 2
        breaks = np.flatnonzero(geom["run"].diff().fillna(0).to_numpy() != 0).tolist()
        return {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": coords},
            "properties": {
                "tag_id": self.tag_id,
                "times": times,
                "kinds": kinds,
                "breaks": [int(b) for b in breaks],
                "passages": _passage_records(self.passages),
            },
        }

    def to_feature_collection(self) -> dict[str, Any]:
        """A GeoJSON FeatureCollection: one LineString per drawn segment, one Point per passage.

        Easier to style than :meth:`to_geojson` (color by segment kind, label readers).
        """
        features: list[dict[str, Any]] = []
        geom = self.geometry
        for i, seg in enumerate(self.segments):
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
                        "tag_id": self.tag_id,
                        "kind": seg.kind,
                        "from_reader": seg.from_reader,
                        "to_reader": seg.to_reader,
                        "start": _iso_utc(np.array([seg.start_us]))[0],
                        "end": _iso_utc(np.array([seg.end_us]))[0],
                        "distance_m": seg.distance_m,
                        "speed_mps": seg.speed_mps,
                        "times": _iso_utc(part["t_us"].to_numpy(dtype=np.int64)),
                    },
                }
            )
        for record in _passage_records(self.passages):
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [record["lon"], record["lat"]]},
                    "properties": {"tag_id": self.tag_id, **record},
                }
            )
        return {"type": "FeatureCollection", "features": features}


class PathChooser(Protocol):
    """Picks the road path between two consecutive passages; None when there is none."""

    def __call__(
        self,
        from_reader: str,
        to_reader: str,
        *,
        start_us: int,
        end_us: int,
        graph: RoadGraph,
        reader_nodes: Mapping[str, int],
        reader_paths: ReaderPaths,
    ) -> list[int] | None: ...


def choose_path(
    from_reader: str,
    to_reader: str,
    *,
    start_us: int,
    end_us: int,
    graph: RoadGraph,
    reader_nodes: Mapping[str, int],
    reader_paths: ReaderPaths,
) -> list[int] | None:
    """The road path a bike most probably took between two readers; None if there is none.

    First version: the shortest path. The time window and the graph are passed already so
    that a better chooser (time consistency, negative evidence from readers on the candidate
    path that did not hear the tag) can replace this one without touching :func:`build_route`.
    """
    del start_us, end_us, graph, reader_nodes  # used by the next version, not this one
    try:
        return reader_paths.path(from_reader, to_reader)
    except NoPathError:
        return None


def build_route(
    passages: pd.DataFrame,
    graph: RoadGraph,
    reader_nodes: Mapping[str, int],
    reader_paths: ReaderPaths | None = None,
    *,
    max_speed_mps: float = 17.0,
    min_speed_mps: float = 1.0,
    path_chooser: PathChooser = choose_path,
) -> Route:
    """Build one tag's route from its passages (``track_engine.passages.PASSAGE_COLUMNS``).

    Raises ValueError for no passages, several tags, or a reader missing from
    ``reader_nodes``. Pass ``reader_paths`` (from ``precompute_reader_paths``) when building
    many routes; without it the paths between the route's readers are computed here.
    """
    if passages.empty:
        raise ValueError("a route needs at least one passage")
    tags = passages["tag_id"].unique()
    if len(tags) != 1:
        raise ValueError(f"passages of {len(tags)} tags given; a route is one tag's")
    unknown = sorted(set(passages["reader_id"]) - set(reader_nodes))
    if unknown:
        raise ValueError(f"readers without a road node: {unknown}")
    ps = passages.sort_values(["closest_at_us", "reader_id"], kind="mergesort")
    ps = ps.reset_index(drop=True)
    # A passage's place is its reader's node on the road; keep it with the passage.
    node = np.asarray([reader_nodes[r] for r in ps["reader_id"]], dtype=np.int64)
    ps["node"] = node
    ps["x_m"], ps["y_m"] = graph.node_xy_m[node, 0], graph.node_xy_m[node, 1]
    ps["lon"], ps["lat"] = graph.node_lonlat[node, 0], graph.node_lonlat[node, 1]
    if reader_paths is None:
        used = set(ps["reader_id"])
        reader_paths = precompute_reader_paths(
            graph, {r: n for r, n in reader_nodes.items() if r in used}
        )

    readers = ps["reader_id"].astype(str).tolist()
    times = ps["closest_at_us"].to_numpy(dtype=np.int64)
    segments: list[RouteSegment] = []
    for i in range(len(ps) - 1):
        nodes = path_chooser(
            readers[i],
            readers[i + 1],
            start_us=int(times[i]),
            end_us=int(times[i + 1]),
            graph=graph,
            reader_nodes=reader_nodes,
            reader_paths=reader_paths,
        )
        segment = _classify(
            readers[i],
            readers[i + 1],
            int(times[i]),
            int(times[i + 1]),
            nodes,
            graph,
            max_speed_mps=max_speed_mps,
            min_speed_mps=min_speed_mps,
        )
        segments.append(segment)

    geometry = _geometry(graph, segments, node, times)
    points = _per_second(geometry, segments, ps)
    geometry = _mark_observed(geometry, ps)
    return Route(
        tag_id=str(tags[0]), points=points, segments=segments, passages=ps, geometry=geometry
    )


def route_length_m(route: Route) -> float:
    """Length of the drawn route in meters (inferred and gap stretches; stops add nothing)."""
    return float(sum(s.distance_m for s in route.segments if s.drawn))


def _classify(
    from_reader: str,
    to_reader: str,
    start_us: int,
    end_us: int,
    nodes: list[int] | None,
    graph: RoadGraph,
    *,
    max_speed_mps: float,
    min_speed_mps: float,
) -> RouteSegment:
    """Kind, distance and speed of one segment (see the module docstring for the rules)."""
    dt_s = (end_us - start_us) / _US_PER_S
    if nodes is None:
        return RouteSegment(
            from_reader, to_reader, start_us, end_us, float("nan"), float("nan"), "gap", ()
        )
    distance = graph.path_length_m(nodes)
    if distance == 0.0:
        speed = 0.0
        kind = "stop"
    else:
        speed = distance / dt_s if dt_s > 0 else float("inf")
        if speed > max_speed_mps:
            kind = "impossible"
        elif speed < min_speed_mps:
            kind = "gap"
        else:
            kind = "inferred"
    kept = tuple(nodes) if kind in _DRAWN else ()
    return RouteSegment(from_reader, to_reader, start_us, end_us, distance, speed, kind, kept)


def _geometry(
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


def _per_second(
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
    out["kind"] = np.where(_observed(t, ps), "observed", out["kind"].to_numpy(dtype=object))
    return out[POINT_COLUMNS]


def _mark_observed(geometry: pd.DataFrame, ps: pd.DataFrame) -> pd.DataFrame:
    geometry = geometry.copy()
    t = geometry["t_us"].to_numpy(dtype=np.int64)
    geometry["kind"] = np.where(
        _observed(t, ps), "observed", geometry["kind"].to_numpy(dtype=object)
    )
    return geometry


def _observed(t_us: NDArray[np.int64], ps: pd.DataFrame) -> NDArray[np.bool_]:
    """Whether each time falls inside some passage's [first_at, last_at] read window."""
    order = np.argsort(ps["first_at_us"].to_numpy(dtype=np.int64), kind="stable")
    first = ps["first_at_us"].to_numpy(dtype=np.int64)[order]
    # Windows can overlap (neighboring readers); the running max of their ends answers
    # "is t before the end of any window that started before t" in one searchsorted.
    last_max = np.maximum.accumulate(ps["last_at_us"].to_numpy(dtype=np.int64)[order])
    idx = np.searchsorted(first, t_us, side="right") - 1
    return (idx >= 0) & (last_max[np.maximum(idx, 0)] >= t_us)


def _iso_utc(t_us: NDArray[np.int64]) -> list[str]:
    """ISO-8601 UTC strings with microseconds and a ``Z``."""
    stamps = pd.to_datetime(t_us, unit="us", utc=True)
    return [str(s) for s in stamps.strftime("%Y-%m-%dT%H:%M:%S.%fZ")]


def _passage_records(ps: pd.DataFrame) -> list[dict[str, Any]]:
    """Passages as JSON-ready dicts (plain Python types, ISO-8601 UTC times)."""
    iso = {c: _iso_utc(ps[c].to_numpy(dtype=np.int64)) for c in _PASSAGE_TIMES}
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
