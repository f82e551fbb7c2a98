"""Stitch one tag's passages into a route on the road, with a point per second.

Steps, in order:

0. **Places** (:mod:`track_engine.places`): consecutive passages at neighbouring readers whose
   read zones overlap (a complex junction) and whose read windows overlap are one *sighting*:
   the loudest stands for it, the others are kept as ``merged`` (no path, no speed test between
   them). The clone test runs on the sightings with a lower bound of the distance between
   places (the straight line, less the readers' reach) and a clock allowance, so one-way
   streets and the order of passages inside a junction never make an honest tag a clone; its
   finding is a ``"clone"`` flag and
   :attr:`track_engine.route_result.Route.clone_suspected`.
1. **Outliers** (:mod:`track_engine.route_outliers`): a passage that makes an impossible move
   both from the passage before it and to the passage after it, while those two are consistent
   with each other, is a misread (or a clone's single sighting): it is dropped from the route
   and reported as an ``"outlier"`` flag, instead of drawing two teleports. Then **passed by**:
   a reader heard the bike from a road that does not go through its node (a read zone reaches
   a few meters, and a cycleway, a parallel street or a bridge can pass that close to another
   road's junction). When the road way between the passages before and after it passes as
   close to the node as the reader's own pole (:data:`track_engine.places.SURE_REACH_M`: a
   road that close is heard as surely as the node's own, so the read cannot tell them apart),
   and going through the node instead is far less likely (the detour and speed terms of the
   path model: ``_PASSED_BY_LOGLIK``), the passage is kept as ``merged`` into the route (the
   reader heard the bike: not silent on that way) but not routed through.
2. **Path choice** (:mod:`track_engine.route_choice`) between consecutive passages (ordered
   by closest approach) by the ``path_chooser`` — by default
   :class:`track_engine.paths.NegativeEvidenceChooser`: the most probable road paths given the
   time gaps, the readers on them that did not hear the tag, the rider's own speed and the
   direction of travel seen at two-antenna readers, decoded for the whole route at once (a
   ``RouteChooser``); any per-pair ``PathChooser`` works too.
3. **Segment kinds** (:mod:`track_engine.segment_kinds`) from the implied speed along the
   chosen path:

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

The result is a :class:`track_engine.route_result.Route`. Two tables come out: ``geometry``
follows the road exactly (every node of every path, with its interpolated time: the per-meter
shape) and ``points`` samples it at every whole UTC second (see
:mod:`track_engine.route_geometry`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from track_engine.path_model import PathModel
from track_engine.paths import NegativeEvidenceChooser
from track_engine.places import PlaceModel, clone_moves, group_sightings
from track_engine.roads import Derived, ReaderPaths, RoadGraph, precompute_reader_paths
from track_engine.route_choice import PathChooser, choose_path, choose_paths
from track_engine.route_geometry import PathShapes, RouteSegment, vertices_of
from track_engine.route_outliers import outlier_mask, passed_by
from track_engine.route_result import Route, RouteFlag, RouteParts
from track_engine.route_zones import ReadZone, heard_in_zone
from track_engine.segment_kinds import classify

__all__ = ["build_route", "route_length_m"]

# The path shapes of each reader paths' graph, built once, dropped with the reader paths.
_SHAPES: Derived[None, PathShapes] = Derived()


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
    reader_zones: Mapping[str, ReadZone] | None = None,
) -> Route:
    """Build one tag's route from its passages (``track_engine.passages.PASSAGE_COLUMNS``).

    Raises ValueError for no passages, several tags, or a reader missing from
    ``reader_nodes``. Pass ``reader_paths`` (from ``precompute_reader_paths``, with the readers'
    miss rates) when building many routes; without it they are computed here for every reader
    in ``reader_nodes`` (all of them: readers the tag did *not* pass are the negative evidence).
    ``places`` sets when neighbouring readers are one place and when a move is a clone's
    (default :class:`track_engine.places.PlaceModel`); ``reader_range_m``, where known, lets
    readers whose ranges overlap further apart than its tolerance be one place too.
    ``reader_zones``, where surveyed (pole position and read range), let a passage be heard
    from another road inside the zone (:mod:`track_engine.route_zones`).
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
        keep = outlier_mask(rep_readers, rep_times, reader_paths, max_speed_mps)
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
        passed = passed_by(rep_readers, rep_times, keep, graph, reader_paths, model or PathModel())
        if reader_zones:
            chooser = (
                path_chooser
                if isinstance(path_chooser, NegativeEvidenceChooser)
                else NegativeEvidenceChooser(model)
            )
            past = keep.copy()
            past[list(passed)] = False
            passed |= heard_in_zone(
                rep_readers, rep_times, past, graph, reader_paths, chooser, reader_zones
            )
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
    paths, confidence = choose_paths(
        path_chooser, passages, raw_directions, kept, readers, times, graph, reader_nodes,
        reader_paths, heard,
    )  # fmt: skip
    for i, nodes in enumerate(paths):
        segment = classify(
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
        _parts=RouteParts(
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


def route_length_m(route: Route) -> float:
    """Length of the drawn route in meters (inferred and gap stretches; stops add nothing)."""
    return float(sum(s.distance_m for s in route.segments if s.drawn))
