"""Stitch one tag's passages into a route on the road, with a point per second.

Steps, in order:

0. **Places** (:mod:`track_engine.places`): consecutive passages at neighbouring readers whose
   read zones overlap (a complex junction) and whose read windows overlap are one *sighting*:
   the loudest stands for it, the others are kept as ``merged`` (no path, no speed test between
   them). The clone test runs on the sightings with a lower bound of the distance between
   places (the straight line, less the readers' reach) and a clock allowance, so one-way
   streets and the order of passages inside a junction never make an honest tag a clone; its
   finding is a ``"clone"`` flag and :attr:`Route.clone_suspected`.
1. **Outliers**: a passage that makes an impossible move both from the passage before it and
   to the passage after it, while those two are consistent with each other, is a misread (or a
   clone's single sighting): it is dropped from the route and reported as an ``"outlier"``
   flag, instead of drawing two teleports. Then **passed by**: a reader heard the bike from
   a road that does not go through its node (a read zone reaches a few meters, and a
   cycleway, a parallel street or a bridge can pass that close to another road's junction).
   When the road way between the passages before and after it passes as close to the node
   as the reader's own pole (:data:`track_engine.places.SURE_REACH_M`: a road that close is
   heard as surely as the node's own, so the read cannot tell them apart), and going through
   the node instead is far less likely (the detour and speed terms of the path model:
   ``_PASSED_BY_LOGLIK``), the passage is kept as ``merged`` into the route (the reader heard
   the bike: not silent on that way) but not routed through.
2. **Path choice** between consecutive passages (ordered by closest approach) by the
   ``path_chooser`` — by default :class:`track_engine.paths.NegativeEvidenceChooser`: the most
   probable road paths given the time gaps, the readers on them that did not hear the tag, the
   rider's own speed and the direction of travel seen at two-antenna readers, decoded for the
   whole route at once (a :class:`RouteChooser`); any per-pair ``PathChooser`` works too.
3. **Segment kinds** from the implied speed along the chosen path:

   * ``"stop"``       — the path has zero length (the same reader, or readers on one node): the
     bike stayed put; drawn as a stationary stretch.
   * ``"inferred"``   — a plausible speed: the bike is assumed to ride the path at constant
     speed.
   * ``"gap"``        — slower than ``min_speed_mps``: the bike was somewhere unseen for part of
     the time. The path is still drawn (it is the most likely way it went) but every point on
     it is marked ``"gap"``, because its timing along the path is a guess. Also used when no
     road path exists at all (``distance_m`` is NaN); that one is not drawn.
   * ``"impossible"`` — faster than ``max_speed_mps`` along the road even allowing for passage
     time and reader position error: a cloned or misread tag, or a reader that heard the bike
     on a road its node is not on. Not drawn (the per-second points have a hole and the
     GeoJSON line breaks); reported as an ``"impossible"`` flag (the clone test is step 0's).

Two tables come out: ``geometry`` follows the road exactly (every node of every path, with its
interpolated time: the per-meter shape) and ``points`` samples it at every whole UTC second
(see :mod:`track_engine.route_geometry`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from track_engine.paths import NegativeEvidenceChooser, PathModel, shortest_path
from track_engine.places import SURE_REACH_M, PlaceModel, clone_moves, group_sightings
from track_engine.roads import Derived, ReaderPaths, RoadGraph, precompute_reader_paths
from track_engine.route_geometry import (
    DRAWN_KINDS,
    POINT_COLUMNS,
    PassageColumns,
    PathShapes,
    RouteSegment,
    Vertices,
    feature_collection,
    geometry_frame,
    iso_utc,
    line_feature,
    per_second,
    vertices_of,
)
from track_engine.stretch_confidence import StretchConfidence

__all__ = [
    "POINT_COLUMNS",
    "POINT_KINDS",
    "SEGMENT_KINDS",
    "PathChooser",
    "Route",
    "RouteChooser",
    "RouteFlag",
    "RouteSegment",
    "build_route",
    "choose_path",
    "route_length_m",
    "shortest_path",
    "warm_path_choice",
]

SEGMENT_KINDS = ("inferred", "gap", "impossible", "stop")
POINT_KINDS = ("observed", "inferred", "stop", "gap")
_US_PER_S = 1_000_000
# Slack before a move is called impossible: closest-approach times are good to about a
# second, and a reader's pole stands a few meters from its road node at either end.
_IMPOSSIBLE_SLACK_S = 2.0
_IMPOSSIBLE_SLACK_M = 20.0
# The path shapes of each reader paths' graph, built once, dropped with the reader paths.
_SHAPES: Derived[None, PathShapes] = Derived()
# A passage is "passed by" only when crossing the reader's node is this much less likely
# (natural log) than the way past it: 1 in 100, i.e. a reader hearing another road close to
# its node is not rare, but not the default explanation of a read either.
_PASSED_BY_LOGLIK = math.log(0.01)


@dataclass(frozen=True)
class RouteFlag:
    """Something an officer should know about a route: a misread, an impossible move, a clone.

    ``kind`` is ``"outlier"`` (the passage at ``reader_id``/``at_us`` was dropped: too far from
    both neighbours for the time), ``"impossible"`` (the road path from ``from_reader`` to
    ``reader_id`` is faster than any e-bike, so it is not drawn) or ``"clone"`` (no e-bike can
    get from ``from_reader``'s place to ``reader_id``'s in the time even in a straight line:
    ``speed_mps`` is that lower bound; a cloned or misread tag).
    """

    kind: str
    reader_id: str
    at_us: int
    from_reader: str = ""
    speed_mps: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (ISO-8601 UTC time)."""
        return {
            "kind": self.kind,
            "reader_id": self.reader_id,
            "at": iso_utc(np.array([self.at_us]))[0],
            "from_reader": self.from_reader,
            "speed_mps": None if np.isnan(self.speed_mps) else float(self.speed_mps),
        }


@dataclass(frozen=True)
class _RouteParts:
    """What a route is built from: the passages as given and the arrays derived from them."""

    source: pd.DataFrame  # the passages as given
    kept: NDArray[np.intp]  # rows of ``source`` on the route, in time order
    dropped: NDArray[np.intp]  # rows of ``source`` dropped as outliers, in time order
    merged: NDArray[np.intp]  # rows of ``source`` folded into a neighbour's sighting
    node: NDArray[np.int64]  # each kept passage's reader node
    vertices: Vertices
    readers: list[str]  # each kept passage's reader id
    first_at_us: NDArray[np.int64]  # each kept passage's first read
    last_at_us: NDArray[np.int64]  # each kept passage's last read
    closest_at_us: NDArray[np.int64]  # each kept passage's closest approach
    directions: list[Any]  # the direction column as given, every row of ``source``


@dataclass(frozen=True, eq=False)
class Route:
    """A tag's reconstructed route.

    ``points``: one row per whole UTC second from the first to the last passage (``POINT_COLUMNS``;
    ``kind`` in ``POINT_KINDS``, ``"observed"`` while the tag was in a reader's range), except
    inside segments that are not drawn. ``geometry``: the same columns at every road vertex,
    plus ``segment`` and ``run``. ``passages``: the passages used (outliers removed), sorted by
    closest_at_us, with the reader's road ``node``, ``x_m``, ``y_m``, ``lon``, ``lat`` added.
    ``dropped``: the outlier passages removed. ``merged``: passages at a neighbouring reader
    of the same place, folded into the sighting of the passage kept (whose read window then
    spans theirs), and passages heard from a road past their reader's node ("passed by": the
    route goes past, not through, the node). ``flags``: outliers, impossible moves and clone
    findings.

    The four tables are built on first use (the GeoJSON forms need none of them).
    """

    tag_id: str
    segments: list[RouteSegment]
    flags: list[RouteFlag]
    graph: RoadGraph = field(repr=False)
    _parts: _RouteParts = field(repr=False)
    # Per segment, how sure its path is (None: no road path, or a chooser that does not say).
    confidence: tuple[StretchConfidence | None, ...] = field(default=(), repr=False)

    @cached_property
    def passages(self) -> pd.DataFrame:
        """The passages used, in time order, with their reader's node and position."""
        parts, graph = self._parts, self.graph
        ps = parts.source.take(parts.kept).reset_index(drop=True)
        node = parts.node
        ps["node"] = node
        ps["x_m"], ps["y_m"] = graph.node_xy_m[node, 0], graph.node_xy_m[node, 1]
        ps["lon"], ps["lat"] = graph.node_lonlat[node, 0], graph.node_lonlat[node, 1]
        return ps

    @cached_property
    def dropped(self) -> pd.DataFrame:
        """The outlier passages removed from the route."""
        return self._parts.source.take(self._parts.dropped).reset_index(drop=True)

    @cached_property
    def merged(self) -> pd.DataFrame:
        """The passages folded into a neighbouring reader's sighting (one place, one pass),
        and those heard from a road that passes by their reader's node."""
        return self._parts.source.take(self._parts.merged).reset_index(drop=True)

    @cached_property
    def geometry(self) -> pd.DataFrame:
        """Road-exact vertices with times (``POINT_COLUMNS`` plus ``segment`` and ``run``)."""
        return geometry_frame(self.graph, self._parts.vertices)

    @cached_property
    def points(self) -> pd.DataFrame:
        """One row per whole UTC second (``POINT_COLUMNS``)."""
        return per_second(self.geometry, self.segments, self.passages)

    @property
    def clone_suspected(self) -> bool:
        """The tag was seen at two places no e-bike could travel between (a ``"clone"`` flag)."""
        return any(f.kind == "clone" for f in self.flags)

    def to_geojson(self) -> dict[str, Any]:
        """A GeoJSON Feature (see :func:`track_engine.route_geometry.line_feature`), with
        ``merged_passages``: the passages at a neighbouring reader of one place that were
        folded into a sighting. They draw nothing, but they are evidence the officer sees."""
        feature = line_feature(
            self.tag_id,
            self.graph,
            self._parts.vertices,
            self._passage_columns(),
            [f.to_dict() for f in self.flags],
        )
        feature["properties"]["merged_passages"] = self._merged_records()
        feature["properties"]["stretches"] = self.stretch_records()
        return feature

    def stretch_records(self) -> list[dict[str, Any]]:
        """Per segment: its readers, ``probability`` (the posterior of the way drawn; None
        when unknown) and ``alternatives`` (``coordinates`` as [lon, lat] pairs,
        ``probability``), see :mod:`track_engine.stretch_confidence`."""
        lonlat = self.graph.node_lonlat
        out = []
        for i, seg in enumerate(self.segments):
            conf = self.confidence[i] if i < len(self.confidence) else None
            out.append(
                {
                    "segment": i,
                    "from_reader": seg.from_reader,
                    "to_reader": seg.to_reader,
                    "kind": seg.kind,
                    "probability": None if conf is None else round(conf.probability, 4),
                    "alternatives": []
                    if conf is None
                    else [
                        {
                            "coordinates": lonlat[np.asarray(a.nodes, np.int64)].tolist(),
                            "probability": round(a.probability, 4),
                        }
                        for a in conf.alternatives
                    ],
                }
            )
        return out

    def _merged_records(self) -> list[dict[str, Any]]:
        merged = self.merged
        if merged.empty:
            return []
        times = {
            name: iso_utc(merged[f"{name}_us"].to_numpy(dtype=np.int64))
            for name in ("first_at", "last_at", "closest_at")
        }
        return [
            {
                "reader_id": str(merged["reader_id"].iloc[i]),
                **{name: values[i] for name, values in times.items()},
                "peak_rssi_dbm": float(merged["peak_rssi_dbm"].iloc[i]),
                "read_count": int(merged["read_count"].iloc[i]),
            }
            for i in range(len(merged))
        ]

    def to_feature_collection(self) -> dict[str, Any]:
        """One LineString per drawn segment and one Point per passage (easier to style)."""
        return feature_collection(self.tag_id, self.geometry, self.passages, self.segments)

    def _passage_columns(self) -> PassageColumns:
        parts = self._parts
        source, kept = parts.source, parts.kept
        lonlat = self.graph.node_lonlat[parts.node]
        if all(type(d) is str for d in parts.directions):
            directions = parts.directions
        else:  # missing values: exactly what pandas makes of them
            directions = source["direction"].astype(str).tolist()
        return PassageColumns(
            reader_id=parts.readers,
            first_at_us=parts.first_at_us,
            last_at_us=parts.last_at_us,
            closest_at_us=parts.closest_at_us,
            peak_rssi_dbm=source["peak_rssi_dbm"].to_numpy(dtype=np.float64)[kept].tolist(),
            read_count=source["read_count"].to_numpy(dtype=np.int64)[kept].tolist(),
            direction=[directions[i] for i in kept.tolist()],
            lon=lonlat[:, 0].tolist(),
            lat=lonlat[:, 1].tolist(),
        )


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


@runtime_checkable
class RouteChooser(Protocol):
    """A chooser that decodes a whole route at once (evidence at a passage couples the
    segments on both sides of it), e.g. :class:`track_engine.paths.NegativeEvidenceChooser`.
    """

    def choose_route(
        self,
        readers: Sequence[str],
        times_us: Sequence[int],
        directions: Sequence[str],
        reader_paths: ReaderPaths,
        *,
        heard: Sequence[frozenset[str]] | None = None,
    ) -> list[list[int] | None]:
        """One path per consecutive pair; ``heard[k]``: other readers that heard the bike at
        passage ``k`` (merged into it), never silent on the paths next to it."""
        ...


choose_path: PathChooser = NegativeEvidenceChooser()


def warm_path_choice(reader_paths: ReaderPaths, chooser: PathChooser = choose_path) -> int:
    """Compute ``chooser``'s shortest-path trees from every reader now rather than in the
    first routes that need them; returns the readers warmed (0 for a chooser without trees)."""
    if isinstance(chooser, NegativeEvidenceChooser):
        return chooser.candidates_for(reader_paths).warm()
    return 0


"""The default path chooser: time consistency plus negative evidence (see track_engine.paths)."""


def build_route(
    passages: pd.DataFrame,
    graph: RoadGraph,
    reader_nodes: Mapping[str, int],
    reader_paths: ReaderPaths | None = None,
    *,
    max_speed_mps: float = 17.0,
    min_speed_mps: float = 1.0,
    path_chooser: PathChooser = choose_path,
    drop_outliers: bool = True,
    places: PlaceModel | None = None,
    reader_range_m: Mapping[str, float] | None = None,
) -> Route:
    """Build one tag's route from its passages (``track_engine.passages.PASSAGE_COLUMNS``).

    Raises ValueError for no passages, several tags, or a reader missing from
    ``reader_nodes``. Pass ``reader_paths`` (from ``precompute_reader_paths``, with the readers'
    miss rates) when building many routes; without it they are computed here for every reader
    in ``reader_nodes`` (all of them: readers the tag did *not* pass are the negative evidence).
    ``places`` sets when neighbouring readers are one place and when a move is a clone's
    (default :class:`track_engine.places.PlaceModel`); ``reader_range_m``, where known, lets
    readers whose ranges overlap further apart than its tolerance be one place too.
    """
    if passages.empty:
        raise ValueError("a route needs at least one passage")
    tags = passages["tag_id"].unique()
    if len(tags) != 1:
        raise ValueError(f"passages of {len(tags)} tags given; a route is one tag's")
    unknown = sorted(set(passages["reader_id"]) - set(reader_nodes))
    if unknown:
        raise ValueError(f"readers without a road node: {unknown}")
    if reader_paths is None:
        reader_paths = precompute_reader_paths(graph, reader_nodes)
    place_model = places or PlaceModel()
    shapes = _path_shapes(graph, reader_paths)
    # Time order (ties by reader id), stable like a multi-key sort: a route has tens of
    # passages, so plain Python beats a data-frame sort here.
    raw_readers = passages["reader_id"].tolist()
    raw_directions = passages["direction"].tolist()
    closest_all = passages["closest_at_us"].to_numpy(dtype=np.int64)
    closest_list = closest_all.tolist()
    order = np.asarray(
        sorted(range(len(raw_readers)), key=lambda i: (closest_list[i], raw_readers[i])),
        dtype=np.intp,
    )
    sorted_readers = [str(raw_readers[i]) for i in order.tolist()]
    # Step 0: neighbouring readers hearing one pass are one sighting; the clone test.
    xy = {r: graph.node_xy_m[reader_nodes[r]] for r in set(sorted_readers)}
    loud = zip(
        passages["peak_rssi_dbm"].to_numpy(dtype=np.float64)[order].tolist(),
        passages["read_count"].to_numpy(dtype=np.int64)[order].tolist(),
        strict=True,
    )
    sightings = group_sightings(
        sorted_readers,
        passages["first_at_us"].to_numpy(dtype=np.int64)[order],
        passages["last_at_us"].to_numpy(dtype=np.int64)[order],
        [(-np.inf if np.isnan(p) else p, c) for p, c in loud],
        xy,
        place_model,
        reader_range_m,
    )
    flags = [
        RouteFlag(
            "clone",
            sorted_readers[int(sightings.rep[b])],
            int(closest_all[order[sightings.rep[b]]]),
            sorted_readers[int(sightings.rep[a])],
            speed,
        )
        for a, b, speed in clone_moves(sightings, sorted_readers, xy, place_model, reader_range_m)
    ]
    heard_with = sightings.heard_with(sorted_readers)
    rep = sightings.rep
    rep_readers = [sorted_readers[i] for i in rep.tolist()]
    rep_times = closest_all[order[rep]]
    if drop_outliers:
        keep = _outlier_mask(rep_readers, rep_times, reader_paths, max_speed_mps)
    else:
        keep = np.ones(len(rep), dtype=bool)
    flags += [
        RouteFlag("outlier", rep_readers[i], int(rep_times[i]))
        for i in np.flatnonzero(~keep).tolist()
    ]
    dropped_members = [i for k in np.flatnonzero(~keep).tolist() for i in sightings.groups[k]]
    # (computed before "passed by" below: those are merged into the route, not dropped)
    dropped = order[np.asarray(sorted(dropped_members), dtype=np.intp)]
    merged_members = set(sightings.merged()) - set(dropped_members)
    if drop_outliers:
        model = path_chooser.model if isinstance(path_chooser, NegativeEvidenceChooser) else None
        passed = _passed_by(rep_readers, rep_times, keep, graph, reader_paths, model or PathModel())
        for k, before in passed.items():
            keep[k] = False
            # It heard the bike, so it is not silent on the way past it.
            heard_with[before] = heard_with[before] | {rep_readers[k]}
    else:
        passed = {}
    merged_members |= {i for k in passed for i in sightings.groups[k]}
    merged = order[np.asarray(sorted(merged_members), np.intp)]
    kept = order[rep[keep]]
    readers = [rep_readers[i] for i in np.flatnonzero(keep).tolist()]
    heard = [heard_with[i] for i in np.flatnonzero(keep).tolist()]
    times = rep_times[keep]
    # A passage's place is its reader's node on the road.
    node = np.asarray([reader_nodes[raw_readers[i]] for i in kept.tolist()], dtype=np.int64)

    segments: list[RouteSegment] = []
    paths, confidence = _choose_paths(
        path_chooser, passages, raw_directions, kept, readers, times, graph, reader_nodes,
        reader_paths, heard,
    )  # fmt: skip
    for i, nodes in enumerate(paths):
        segment = _classify(
            readers[i],
            readers[i + 1],
            int(times[i]),
            int(times[i + 1]),
            nodes,
            shapes,
            max_speed_mps=max_speed_mps,
            min_speed_mps=min_speed_mps,
        )
        if segment.kind == "impossible":
            flags.append(
                RouteFlag(
                    "impossible",
                    segment.to_reader,
                    segment.end_us,
                    segment.from_reader,
                    segment.speed_mps,
                )
            )
        segments.append(segment)

    # A sighting's read window spans its merged passages' (the bike was in the place).
    first_at_us = sightings.first_us[keep]
    last_at_us = sightings.last_us[keep]
    vertices = vertices_of(shapes, segments, node, times, first_at_us, last_at_us)
    flags.sort(key=lambda f: f.at_us)
    return Route(
        tag_id=str(tags[0]),
        segments=segments,
        flags=flags,
        graph=graph,
        _parts=_RouteParts(
            source=passages,
            kept=kept,
            dropped=dropped,
            merged=merged,
            node=node,
            vertices=vertices,
            readers=readers,
            first_at_us=first_at_us,
            last_at_us=last_at_us,
            closest_at_us=times,
            directions=raw_directions,
        ),
        confidence=tuple(confidence),
    )


def _path_shapes(graph: RoadGraph, reader_paths: ReaderPaths) -> PathShapes:
    """The path shapes of ``graph``, kept with the reader paths so later routes reuse them."""
    shapes = _SHAPES.get(reader_paths, None, lambda: PathShapes(reader_paths.graph))
    return shapes if shapes.graph is graph else PathShapes(graph)


def _choose_paths(
    chooser: PathChooser,
    passages: pd.DataFrame,
    raw_directions: list[Any],
    kept: NDArray[np.intp],
    readers: list[str],
    times: NDArray[np.int64],
    graph: RoadGraph,
    reader_nodes: Mapping[str, int],
    reader_paths: ReaderPaths,
    heard: list[frozenset[str]],
) -> tuple[list[list[int] | None], list[StretchConfidence | None]]:
    """The path of every segment (jointly when the chooser can, else pair by pair) and how
    sure each is (all None for a chooser that does not say)."""
    if isinstance(chooser, RouteChooser):
        if all(type(d) is str for d in raw_directions):
            every = raw_directions
        else:  # missing values: exactly what pandas makes of them
            every = passages["direction"].fillna("").astype(str).tolist()
        directions = [every[i] for i in kept.tolist()]
        if isinstance(chooser, NegativeEvidenceChooser):
            return chooser.choose_route_with_confidence(
                readers,
                times.tolist(),
                directions,
                reader_paths,
                heard=heard if any(heard) else None,
            )
        if any(heard):
            paths = chooser.choose_route(
                readers, times.tolist(), directions, reader_paths, heard=heard
            )
        else:
            paths = chooser.choose_route(readers, times.tolist(), directions, reader_paths)
        return paths, [None] * len(paths)
    paths = [
        chooser(
            readers[i], readers[i + 1], start_us=int(times[i]), end_us=int(times[i + 1]),
            graph=graph, reader_nodes=reader_nodes, reader_paths=reader_paths,
        )
        for i in range(len(readers) - 1)
    ]  # fmt: skip
    return paths, [None] * len(paths)


def route_length_m(route: Route) -> float:
    """Length of the drawn route in meters (inferred and gap stretches; stops add nothing)."""
    return float(sum(s.distance_m for s in route.segments if s.drawn))


def _too_fast(distance_m: float, dt_us: int, max_speed_mps: float) -> bool:
    """Whether ``distance_m`` in ``dt_us`` is beyond an e-bike, allowing for measurement slack."""
    return bool(
        max(distance_m - _IMPOSSIBLE_SLACK_M, 0.0)
        > max_speed_mps * (abs(dt_us) / _US_PER_S + _IMPOSSIBLE_SLACK_S)
    )


def _outlier_mask(
    readers: list[str], t: NDArray[np.int64], reader_paths: ReaderPaths, max_speed_mps: float
) -> NDArray[np.bool_]:
    """Passages to keep: drop each one whose both neighbours reject it while accepting each other.

    Walks the passages (in time order) once, comparing each with the last *kept* one, so that a
    run of consistent passages after a dropped outlier is judged against the route it continues.
    """
    n = len(readers)
    keep = np.ones(n, dtype=bool)
    if n < 3:
        return keep
    times = t.tolist()

    def fast(i: int, j: int) -> bool:
        return _too_fast(
            reader_paths.distance_m(readers[i], readers[j]), times[j] - times[i], max_speed_mps
        )

    prev = 0
    for i in range(1, n - 1):
        if fast(prev, i) and fast(i, i + 1) and not fast(prev, i + 1):
            keep[i] = False
            continue
        prev = i
    return keep


def _passed_by(
    readers: list[str],
    t: NDArray[np.int64],
    keep: NDArray[np.bool_],
    graph: RoadGraph,
    reader_paths: ReaderPaths,
    model: PathModel,
) -> dict[int, int]:
    """Kept passages heard from a road past the reader, not through its node: ``{passage:
    the kept passage before it}`` (see step 1 of the module docstring).

    A reader's passage says the bike came within its reach, not that it crossed its node. So
    when the way from the passage before to the one after passes within ``SURE_REACH_M`` of
    the node (surely inside the read zone), both explain the read equally, and the path
    model's detour and speed terms decide:
    only a node far less likely to have been crossed (``_PASSED_BY_LOGLIK``) is passed by.
    """
    out: dict[int, int] = {}
    idx = np.flatnonzero(keep).tolist()
    times = t.tolist()
    node = reader_paths.reader_node
    prev = idx[0] if idx else 0
    for cur, nxt in itertools.pairwise(idx[1:]):
        a, x, b = readers[prev], readers[cur], readers[nxt]
        if node[x] in (node[a], node[b]):
            prev = cur
            continue
        direct = reader_paths.distance_m(a, b)
        via = reader_paths.distance_m(a, x) + reader_paths.distance_m(x, b)
        dt_s = (times[nxt] - times[prev]) / _US_PER_S
        ll_direct = model.speed_loglik(direct, dt_s) if math.isfinite(direct) else -math.inf
        if via <= direct or ll_direct == -math.inf:
            prev = cur
            continue
        ll_via = (
            model.speed_loglik(via, dt_s) + model.detour_loglik(via, direct)
            if math.isfinite(via)
            else -math.inf
        )
        if (
            ll_via - ll_direct >= _PASSED_BY_LOGLIK
            or _off_path_m(graph, reader_paths.path(a, b), node[x]) > SURE_REACH_M
        ):
            prev = cur
            continue
        out[cur] = prev
    return out


def _off_path_m(graph: RoadGraph, path: list[int], node: int) -> float:
    """Distance in meters from ``node`` to the polyline of ``path`` (road nodes)."""
    p = graph.node_xy_m[node]
    pts = graph.node_xy_m[np.asarray(path, dtype=np.int64)]
    if len(pts) == 1:
        return float(np.hypot(*(pts[0] - p)))
    a, d = pts[:-1], pts[1:] - pts[:-1]
    sq = (d * d).sum(axis=1)
    u = np.clip(((p - a) * d).sum(axis=1) / np.where(sq > 0, sq, 1.0), 0.0, 1.0)
    return float(np.min(np.hypot(*(a + u[:, None] * d - p).T)))


def _classify(
    from_reader: str,
    to_reader: str,
    start_us: int,
    end_us: int,
    nodes: list[int] | None,
    shapes: PathShapes,
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
    distance = shapes.length_m(nodes)
    if distance == 0.0:
        speed = 0.0
        kind = "stop"
    else:
        speed = distance / dt_s if dt_s > 0 else float("inf")
        if _too_fast(distance, end_us - start_us, max_speed_mps):
            kind = "impossible"
        elif speed < min_speed_mps:
            kind = "gap"
        else:
            kind = "inferred"
    kept = tuple(nodes) if kind in DRAWN_KINDS else ()
    return RouteSegment(from_reader, to_reader, start_us, end_us, distance, speed, kind, kept)
