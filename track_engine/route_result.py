"""The route a build returns: its segments, flags, tables and GeoJSON forms.

:func:`track_engine.routes.build_route` decides which passages go on the route and what each
segment is; this module holds what comes out — :class:`Route` (its tables built on first use,
see :mod:`track_engine.route_geometry` for the shapes) and the :class:`RouteFlag` findings an
officer should know about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from track_engine.roads import RoadGraph
from track_engine.route_geometry import (
    PassageColumns,
    RouteSegment,
    Vertices,
    feature_collection,
    geometry_frame,
    iso_utc,
    line_feature,
    per_second,
)
from track_engine.stretch_confidence import StretchConfidence

__all__ = ["POINT_KINDS", "Route", "RouteFlag", "RouteParts"]

POINT_KINDS = ("observed", "inferred", "stop", "gap")


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
class RouteParts:
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
    _parts: RouteParts = field(repr=False)
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
    def vertex_count(self) -> int:
        """Road vertices of the route's line (what its GeoJSON's size grows with)."""
        return len(self._parts.vertices.node)

    @property
    def clone_suspected(self) -> bool:
        """The tag was seen at two places no e-bike could travel between (a ``"clone"`` flag)."""
        return any(f.kind == "clone" for f in self.flags)

    def to_geojson(self) -> dict[str, Any]:
        """A GeoJSON Feature (see :func:`track_engine.route_geometry.line_feature`), with
        ``merged_passages``: the passages at a neighbouring reader of one place that were
        folded into a sighting. They draw nothing, but they are evidence the officer sees.

        Made once per route: a route is immutable, and officers following a theft ask for the
        same route again and again (the API keeps routes in a cache). Each call returns its own
        top level and ``properties`` for the caller to add keys to; the values inside them
        (coordinates, times, passages, stretches) are shared and must not be changed."""
        feature = self._geojson
        return {**feature, "properties": dict(feature["properties"])}

    @cached_property
    def _geojson(self) -> dict[str, Any]:
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
