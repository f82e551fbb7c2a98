"""OpenStreetMap road data (.osm XML or .osm.pbf, read with pyosmium) as a :class:`City`.

Only roads an e-bike may use are kept (see :func:`bike_class`): motorways, steps, footways
without ``bicycle=yes``, private roads, ``bicycle=no`` and ``bicycle=use_sidepath`` are out.
``highway=*`` maps onto the simulator's road classes: trunk to tertiary (and their links) are
``arterial``; residential, unclassified, living streets, service roads are ``street``; cycleways,
paths, tracks and bike-permitted footways are ``lane``; any of them on ``bridge=*`` is
``bridge``, because a bridge is the bottleneck that readers should watch.

One-way: ``oneway=yes|true|1`` runs along the way, ``oneway=-1|reverse`` against it,
``junction=roundabout|circular`` implies one-way; ``oneway:bicycle=no`` or an ``opposite*``
cycleway makes a one-way street two-way *for bikes*, which is what matters here.

Each edge keeps its street name (:func:`street_name`: ``name``, else ``ref``), for the map's
labels, the readers' addresses and search by street.

Every node of a kept way becomes a graph node, so edges follow the real geometry. A node where
roads meet or end (other than two distinct neighbours) is a ``junction``; the rest, including
the points where OSM merely splits one road into two ways (a tag change, a bridge), are ``shape``
(readers are placed only on junctions). The several nodes of one real junction (dual
carriageways, turn lanes, short link ways, small roundabouts) are then merged into one at
their centroid, within ``junction_tolerance_m`` (see :mod:`citymap.junctions`; 0 keeps
every OSM node). Nodes are projected like the generated city (equirectangular about the centre of
the data's bounding box). Only the largest strongly connected component is kept: an island or
a one-way dead end cannot be routed through, and the engine routes on this graph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import osmium
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.csgraph import connected_components

from citymap.junctions import DEFAULT_TOLERANCE_M, consolidate
from citymap.network import EARTH_RADIUS_M, City, xy_to_lonlat

_ARTERIAL = {"trunk", "trunk_link", "primary", "primary_link", "secondary", "secondary_link",
             "tertiary", "tertiary_link"}  # fmt: skip
_STREET = {"residential", "unclassified", "living_street", "road", "service"}
_LANE = {"cycleway", "path", "track"}
_BIKE_ONLY_IF_ALLOWED = {"footway", "pedestrian", "bridleway", "corridor"}
_YES = {"yes", "designated", "permissive", "destination"}
_ONEWAY_FWD = {"yes", "true", "1"}
_ONEWAY_BACK = {"-1", "reverse"}


class OsmImportError(ValueError):
    """The file holds no usable road network (or is not OSM data)."""


def bike_class(tags: dict[str, str]) -> str | None:
    """Road class of a way for e-bikes, or None if bikes do not (or may not) ride it."""
    highway = tags.get("highway", "")
    bicycle = tags.get("bicycle", "")
    if tags.get("area") == "yes" or bicycle in ("no", "use_sidepath", "dismount"):
        return None
    if tags.get("access") in ("no", "private") and bicycle not in _YES:
        return None
    if highway in _ARTERIAL:
        cls = "arterial"
    elif highway in _STREET:
        cls = "street"
    elif highway in _LANE or (highway in _BIKE_ONLY_IF_ALLOWED and bicycle in _YES):
        cls = "lane"
    else:
        return None
    return "bridge" if tags.get("bridge", "no") != "no" else cls


def street_name(tags: dict[str, str]) -> str:
    """The name a reader of the map knows the road by: ``name``, else ``ref`` (e.g. "S9")."""
    return (tags.get("name") or tags.get("ref") or "").strip()


def oneway_direction(tags: dict[str, str]) -> int:
    """+1 one-way along the way, -1 against it, 0 two-way (for bikes)."""
    if tags.get("oneway:bicycle") == "no" or tags.get("cycleway", "").startswith("opposite"):
        return 0
    oneway = tags.get("oneway", "")
    if oneway in _ONEWAY_FWD:
        return 1
    if oneway in _ONEWAY_BACK:
        return -1
    if oneway == "" and tags.get("junction") in ("roundabout", "circular"):
        return 1
    return 0


def read_osm(path: str | Path, *, junction_tolerance_m: float = DEFAULT_TOLERANCE_M) -> City:
    """Read an .osm / .osm.pbf file into a strongly connected :class:`City` (see module doc)."""
    seg_a: list[int] = []  # OSM node ids, consecutive pairs along kept ways
    seg_b: list[int] = []
    seg_cls: list[str] = []
    seg_dir: list[int] = []
    seg_name: list[str] = []
    locs: dict[int, tuple[float, float]] = {}
    try:
        # Nodes must be read for their locations; only ways are handed to the loop.
        processor = (
            osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
            .with_locations()
            .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
        )
        for way in processor:
            if not isinstance(way, osmium.osm.Way):  # the filter passes ways only
                raise TypeError(f"osmium's way filter passed a {type(way).__name__}")
            tags = {t.k: t.v for t in way.tags}
            cls = bike_class(tags)
            if cls is None or len(way.nodes) < 2:
                continue
            ids = [n.ref for n in way.nodes]
            for n in way.nodes:
                if n.location.valid():
                    locs[n.ref] = (n.location.lon, n.location.lat)
            direction = oneway_direction(tags)
            seg_a += ids[:-1]
            seg_b += ids[1:]
            seg_cls += [cls] * (len(ids) - 1)
            seg_dir += [direction] * (len(ids) - 1)
            seg_name += [street_name(tags)] * (len(ids) - 1)
    except RuntimeError as exc:  # osmium reports unreadable input as RuntimeError
        raise OsmImportError(f"{path}: {exc}") from exc
    a = np.asarray(seg_a, np.int64)
    b = np.asarray(seg_b, np.int64)
    known = np.array([x in locs and y in locs for x, y in zip(seg_a, seg_b, strict=True)], bool)
    known &= a != b
    if not known.any():
        raise OsmImportError(f"{path}: no roads that bikes use")
    a, b = a[known], b[known]
    cls = np.asarray(seg_cls, dtype=object)[known]
    direction = np.asarray(seg_dir, np.int8)[known]
    names = np.asarray(seg_name, dtype=object)[known]
    osm_ids, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    ia, ib = inverse[: len(a)], inverse[len(a) :]
    lonlat = np.array([locs[int(n)] for n in osm_ids], dtype=np.float64)
    kind = _node_kind(len(osm_ids), ia, ib)
    lat0 = float((lonlat[:, 1].min() + lonlat[:, 1].max()) / 2.0)
    lon0 = float((lonlat[:, 0].min() + lonlat[:, 0].max()) / 2.0)
    x = np.radians(lonlat[:, 0] - lon0) * EARTH_RADIUS_M * np.cos(np.radians(lat0))
    y = np.radians(lonlat[:, 1] - lat0) * EARTH_RADIUS_M
    xy = np.stack([x, y], 1)
    if junction_tolerance_m > 0:
        merged = consolidate(xy, kind == "junction", ia, ib, tolerance_m=junction_tolerance_m)
        new_kind = np.empty(len(merged.xy_m), dtype=object)
        kept = merged.new_node >= 0
        new_kind[merged.new_node[kept]] = kind[kept]
        ia, ib = merged.new_node[ia], merged.new_node[ib]
        inside = (ia >= 0) & (ib >= 0) & (ia != ib)
        ia, ib, cls, direction = ia[inside], ib[inside], cls[inside], direction[inside]
        names = names[inside]
        # A junction whose short stub went may now just continue one road: a bend.
        bends_now = _node_kind(len(merged.xy_m), ia, ib) == "shape"
        new_kind[bends_now & (new_kind == "junction")] = "shape"
        xy, kind = merged.xy_m, new_kind
        lonlat = xy_to_lonlat(xy, lat0, lon0)
    return _build(xy, lonlat, (lat0, lon0), kind, ia, ib, (cls, names), direction)


def _node_kind(n: int, a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.object_]:
    """``junction`` where roads meet or end, ``shape`` at plain bends.

    A node where one way simply continues as the next is a bend like any other: OSM splits ways
    wherever a tag changes, and a bridge's ends are such splits. (A reader there would stand
    metres from the real junction; on a dual carriageway's bridge, the two carriageways' heads
    are a few metres apart and a reader on one hears bikes on the other, which a one-way road
    makes an impossible move.) Distinct neighbours are counted, not segment uses, so a way
    drawn twice over the same nodes is a bend too.
    """
    pairs = np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)], 1), axis=0)
    neighbours = np.bincount(pairs.ravel(), minlength=n)
    return np.where(neighbours != 2, "junction", "shape").astype(object)


def _build(
    xy: NDArray[np.float64],
    lonlat: NDArray[np.float64],
    origin: tuple[float, float],
    kind: NDArray[np.object_],
    a: NDArray[np.int64],
    b: NDArray[np.int64],
    cls_names: tuple[NDArray[np.object_], NDArray[np.object_]],
    direction: NDArray[np.int8],
) -> City:
    lat0, lon0 = origin
    cls, names = cls_names
    fwd, back = direction >= 0, direction <= 0
    src = np.concatenate([a[fwd], b[back]])
    dst = np.concatenate([b[fwd], a[back]])
    e_cls = np.concatenate([cls[fwd], cls[back]])
    e_ow = np.concatenate([direction[fwd] != 0, direction[back] != 0])
    e_name = np.concatenate([names[fwd], names[back]])
    # Two ways over the same node pair (a dual carriageway drawn twice): keep one edge.
    n = len(xy)
    _, first = np.unique(src * n + dst, return_index=True)
    src, dst, e_cls, e_ow = src[first], dst[first], e_cls[first], e_ow[first]
    e_name = e_name[first]
    graph = sp.csr_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    _, labels = connected_components(graph, directed=True, connection="strong")
    inside = labels == np.bincount(labels).argmax()
    keep = inside[src] & inside[dst]
    new_id = np.cumsum(inside) - 1
    src, dst = new_id[src[keep]], new_id[dst[keep]]
    e_cls, e_ow, e_name = e_cls[keep], e_ow[keep], e_name[keep]
    order = np.lexsort((dst, src))
    src, dst, e_cls, e_ow = src[order], dst[order], e_cls[order], e_ow[order]
    e_name = e_name[order]
    xy = np.ascontiguousarray(xy[inside])
    return City(
        origin_lat=lat0,
        origin_lon=lon0,
        node_xy_m=xy,
        node_lonlat=np.ascontiguousarray(lonlat[inside]),
        edge_src=src.astype(np.int32),
        edge_dst=dst.astype(np.int32),
        edge_length_m=np.hypot(*(xy[dst] - xy[src]).T).astype(np.float64),
        edge_class=e_cls,
        edge_oneway=e_ow.astype(np.bool_),
        node_kind=kind[inside],
        edge_name=e_name,
    )
