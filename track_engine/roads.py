"""The road graph the engine routes on, and the reader-to-reader paths precomputed on it.

Nodes carry both a local metric position (meters east/north of a reference point, what speeds
and distances are computed in) and lon/lat (what maps draw). Edges are directed; a two-way
street is two edges. Shortest paths come from ``scipy.sparse.csgraph.dijkstra``; readers never
move, so the distances between every pair of reader nodes are computed once up front.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import scipy.sparse
from numpy.typing import ArrayLike, NDArray
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from track_engine.errors import EngineError
from track_engine.way_prior import WayPrior

EARTH_RADIUS_M = 6_371_008.8
# scipy's sparse graphs cannot tell a zero-length edge from a missing one in every code path,
# so lengths are floored at a millimeter.
_MIN_EDGE_LENGTH_M = 1e-3
# Predecessor rows are N int32 each; keep a bounded number (a 100k-node city: 400 kB a row).
_PREDECESSOR_CACHE_ROWS = 512
# A reader's miss rate when none is known (the readers table's default).
DEFAULT_MISS_RATE = 0.3

T = TypeVar("T")
K = TypeVar("K")


class NoPathError(EngineError, LookupError):
    """No directed road path joins the two nodes (the graph is not strongly connected)."""


def project_lonlat(
    lonlat: ArrayLike, origin_lonlat: tuple[float, float] | None = None
) -> NDArray[np.float64]:
    """Project lon/lat degrees to local meters east/north (equirectangular about ``origin``).

    Good to well under a meter per kilometer across a district; ``origin`` defaults to the
    mean of the points.
    """
    ll = np.asarray(lonlat, dtype=np.float64).reshape(-1, 2)
    lon0, lat0 = (
        (float(ll[:, 0].mean()), float(ll[:, 1].mean())) if origin_lonlat is None else origin_lonlat
    )
    rad = np.pi / 180.0
    x = (ll[:, 0] - lon0) * rad * EARTH_RADIUS_M * np.cos(lat0 * rad)
    y = (ll[:, 1] - lat0) * rad * EARTH_RADIUS_M
    return np.column_stack([x, y])


@dataclass(frozen=True, eq=False)
class RoadGraph:
    """A directed road graph with metric node positions. Build it with :meth:`from_arrays`."""

    node_xy_m: NDArray[np.float64]
    node_lonlat: NDArray[np.float64]
    edge_src: NDArray[np.int32]
    edge_dst: NDArray[np.int32]
    edge_length_m: NDArray[np.float64]
    # Lazily built helpers; the graph itself never changes, so caching them is safe.
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _predecessors: OrderedDict[int, NDArray[np.int32]] = field(
        default_factory=OrderedDict, init=False, repr=False
    )

    @classmethod
    def from_arrays(
        cls,
        *,
        node_lonlat: ArrayLike,
        edge_src: ArrayLike,
        edge_dst: ArrayLike,
        edge_length_m: ArrayLike | None = None,
        node_xy_m: ArrayLike | None = None,
        both_directions: bool = False,
    ) -> RoadGraph:
        """Validate and build a graph.

        ``node_xy_m`` defaults to :func:`project_lonlat` of ``node_lonlat``; ``edge_length_m``
        to the straight-line length between the end nodes (pass real lengths for curved
        roads). ``both_directions`` adds the reverse of every edge. Parallel edges keep the
        shortest; self-loops are dropped.
        """
        lonlat = np.asarray(node_lonlat, dtype=np.float64).reshape(-1, 2)
        xy = (
            project_lonlat(lonlat)
            if node_xy_m is None
            else np.asarray(node_xy_m, dtype=np.float64).reshape(-1, 2)
        )
        if xy.shape != lonlat.shape:
            raise ValueError("node_xy_m and node_lonlat must have the same shape")
        src = np.asarray(edge_src, dtype=np.int64).ravel()
        dst = np.asarray(edge_dst, dtype=np.int64).ravel()
        if src.shape != dst.shape:
            raise ValueError("edge_src and edge_dst must have the same length")
        n = len(xy)
        if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
            raise ValueError("edge endpoint out of range of the node arrays")
        if edge_length_m is None:
            length = np.hypot(*(xy[dst] - xy[src]).T)
        else:
            length = np.asarray(edge_length_m, dtype=np.float64).ravel()
            if length.shape != src.shape:
                raise ValueError("edge_length_m must have one entry per edge")
            if not np.all(np.isfinite(length)) or np.any(length < 0):
                raise ValueError("edge lengths must be finite and >= 0")
        if both_directions:
            src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
            length = np.concatenate([length, length])
        keep = src != dst
        src, dst, length = src[keep], dst[keep], np.maximum(length[keep], _MIN_EDGE_LENGTH_M)
        # Parallel edges: a sparse matrix would *sum* them; keep the shortest instead.
        order = np.lexsort((length, dst, src))
        src, dst, length = src[order], dst[order], length[order]
        first = np.ones(len(src), dtype=bool)
        first[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
        return cls(
            node_xy_m=xy,
            node_lonlat=lonlat,
            edge_src=src[first].astype(np.int32),
            edge_dst=dst[first].astype(np.int32),
            edge_length_m=length[first],
        )

    @property
    def node_count(self) -> int:
        """Number of nodes."""
        return len(self.node_xy_m)

    def csr(self) -> scipy.sparse.csr_matrix:
        """The weighted adjacency matrix (meters), built once."""
        if "csr" not in self._cache:
            n = self.node_count
            self._cache["csr"] = scipy.sparse.csr_matrix(
                (self.edge_length_m, (self.edge_src, self.edge_dst)), shape=(n, n)
            )
        return self._cache["csr"]

    def shortest_paths_from(
        self, sources: Sequence[int]
    ) -> tuple[NDArray[np.float64], NDArray[np.int32]]:
        """Distances (m, ``inf`` if unreachable) and predecessors (``-9999`` at roots and
        unreachable nodes) from each source to every node; shape (len(sources), N).

        The predecessor rows are cached for :meth:`path_nodes`.
        """
        idx = np.asarray(list(sources), dtype=np.int64)
        if idx.size == 0:
            n = self.node_count
            return np.empty((0, n)), np.empty((0, n), dtype=np.int32)
        dist, pred = dijkstra(self.csr(), directed=True, indices=idx, return_predecessors=True)
        dist = np.asarray(dist, dtype=np.float64).reshape(len(idx), -1)
        pred = np.asarray(pred, dtype=np.int32).reshape(len(idx), -1)
        for row, source in enumerate(idx.tolist()):
            self._remember_predecessors(source, pred[row])
        return dist, pred

    def path_nodes(self, src: int, dst: int, *, distance_m: float | None = None) -> list[int]:
        """Nodes of the shortest directed path from ``src`` to ``dst``, both included.

        ``distance_m`` (the known shortest distance, e.g. from :class:`ReaderPaths`) lets a
        source whose tree is not cached grow its Dijkstra only that far: on a city of tens of
        thousands of nodes, a few hundred meters instead of the whole graph (within that
        radius a Dijkstra's predecessors are final, so the path is the same).

        Raises :class:`NoPathError` when ``dst`` cannot be reached from ``src``.
        """
        if src == dst:
            return [src]
        pred = self._predecessors.get(src)
        if pred is not None:
            self._predecessors.move_to_end(src)
        elif distance_m is not None and np.isfinite(distance_m):
            limit = distance_m * (1.0 + 1e-9) + 1e-6  # a hair beyond: summation order rounds
            row = dijkstra(
                self.csr(), directed=True, indices=src, return_predecessors=True, limit=limit
            )[1]
            pred = np.asarray(row, dtype=np.int32)
            if pred[dst] < 0:
                pred = None
        if pred is None:
            pred = self.shortest_paths_from([src])[1][0]
        # Walk the shortest-path tree back from dst: as many steps as the path has nodes.
        path = [dst]
        node = dst
        while node != src:
            node = int(pred[node])
            if node < 0:
                raise NoPathError(f"no road path from node {src} to node {dst}")
            path.append(node)
        path.reverse()
        return path

    def path_length_m(self, nodes: Sequence[int]) -> float:
        """Length of a node path along its edges; raises ValueError on a missing edge."""
        if len(nodes) < 2:
            return 0.0
        arr = np.asarray(nodes, dtype=np.int64)
        lengths = np.asarray(self.csr()[arr[:-1], arr[1:]]).ravel()
        if np.any(lengths <= 0):
            bad = int(np.flatnonzero(lengths <= 0)[0])
            raise ValueError(f"no edge from node {arr[bad]} to node {arr[bad + 1]}")
        return float(lengths.sum())

    def nearest_node(self, x_m: float, y_m: float) -> int:
        """The node nearest to a local metric position (e.g. a reader's surveyed position)."""
        if "kdtree" not in self._cache:
            self._cache["kdtree"] = cKDTree(self.node_xy_m)
        _, idx = self._cache["kdtree"].query([x_m, y_m])
        return int(idx)

    def _remember_predecessors(self, source: int, row: NDArray[np.int32]) -> None:
        self._predecessors[source] = row
        self._predecessors.move_to_end(source)
        while len(self._predecessors) > _PREDECESSOR_CACHE_ROWS:
            self._predecessors.popitem(last=False)


@dataclass(frozen=True, eq=False)
class ReaderPaths:
    """Shortest road distances between every pair of readers, and their paths on demand.

    ``distance_matrix_m[i, j]`` is from ``reader_ids[i]`` to ``reader_ids[j]`` (``inf`` when
    unreachable). Paths are walked from cached predecessor rows when first asked for and
    memoized, since a route asks for the same few reader pairs again and again.
    """

    graph: RoadGraph
    reader_ids: tuple[str, ...]
    reader_node: Mapping[str, int]
    distance_matrix_m: NDArray[np.float64]
    # Probability that each reader misses a passing tag (negative evidence in path choice);
    # readers not listed get DEFAULT_MISS_RATE, the schema's default.
    miss_rate: Mapping[str, float] = field(default_factory=dict)
    # How the fleet rides the ways between reader pairs (path choice's prior; None: none).
    way_prior: WayPrior | None = None
    _index: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _paths: dict[tuple[str, str], tuple[int, ...]] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        self._index.update({r: i for i, r in enumerate(self.reader_ids)})

    def distance_m(self, a: str, b: str) -> float:
        """Shortest road distance from reader ``a`` to reader ``b`` (``inf`` if unreachable)."""
        return float(self.distance_matrix_m[self._position(a), self._position(b)])

    def path(self, a: str, b: str) -> list[int]:
        """Node path from reader ``a``'s node to reader ``b``'s; raises NoPathError."""
        key = (a, b)
        if key not in self._paths:
            self._position(a)
            self._position(b)
            self._paths[key] = tuple(
                self.graph.path_nodes(
                    self.reader_node[a], self.reader_node[b], distance_m=self.distance_m(a, b)
                )
            )
        return list(self._paths[key])

    def miss_rate_of(self, reader_id: str) -> float:
        """The reader's miss rate, ``DEFAULT_MISS_RATE`` when unknown."""
        return float(self.miss_rate.get(reader_id, DEFAULT_MISS_RATE))

    def _position(self, reader_id: str) -> int:
        try:
            return self._index[reader_id]
        except KeyError:
            raise KeyError(f"unknown reader {reader_id!r}") from None


class Derived(Generic[K, T]):
    """Helpers derived from a :class:`ReaderPaths` (per key), each built once and dropped with
    the paths.

    Readers never move, so a derived helper never ages; a new ReaderPaths (another network, or
    the same one with new miss rates) starts empty, and a replaced one takes its helpers with
    it (weak references). The module that uses a helper declares its ``Derived``, typed,
    beside the code: who keeps what, and until when, is read there.
    """

    def __init__(self) -> None:
        self._by_paths: weakref.WeakKeyDictionary[ReaderPaths, dict[K, T]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def get(self, paths: ReaderPaths, key: K, build: Callable[[], T]) -> T:
        """The helper of ``paths`` for ``key``, built by ``build()`` the first time (outside
        the lock: two threads may both build it; the first one kept is the answer)."""
        kept = self._by_paths.get(paths)
        if kept is not None and key in kept:
            return kept[key]
        value = build()
        with self._lock:
            return self._by_paths.setdefault(paths, {}).setdefault(key, value)


class NodeDistances:
    """Shortest road distances between nodes of a fixed set, each source's Dijkstra run once.

    Several deployments drawn from one set of sites (the accuracy bench's coverages and miss
    rates: the readers of a lower coverage are a prefix of a higher one's) share the work:
    :meth:`block` runs Dijkstra only from sources it has not seen and keeps the rows over
    ``nodes`` (``len(nodes)**2`` floats at most).
    """

    def __init__(self, graph: RoadGraph, nodes: ArrayLike, *, chunk_size: int = 64) -> None:
        self.graph = graph
        self.nodes = np.unique(np.asarray(nodes, dtype=np.int64))
        self._column = {int(n): i for i, n in enumerate(self.nodes.tolist())}
        self._rows: dict[int, NDArray[np.float64]] = {}
        self._chunk = chunk_size

    def block(self, nodes: NDArray[np.int64]) -> NDArray[np.float64]:
        """Distances (m) from each of ``nodes`` to each of ``nodes`` (all within the set)."""
        wanted = [int(n) for n in nodes.tolist()]
        unknown = sorted(set(wanted) - set(self._column))
        if unknown:
            raise ValueError(f"nodes {unknown[:5]} are not in the distance set")
        todo = sorted(set(wanted) - set(self._rows))
        for lo in range(0, len(todo), self._chunk):
            chunk = todo[lo : lo + self._chunk]
            dist, _ = self.graph.shortest_paths_from(chunk)
            for k, n in enumerate(chunk):
                self._rows[n] = dist[k, self.nodes]
        if not wanted:
            return np.empty((0, 0))
        cols = np.asarray([self._column[n] for n in wanted], dtype=np.int64)
        return np.stack([self._rows[n][cols] for n in wanted])


def precompute_reader_paths(
    graph: RoadGraph,
    reader_nodes: Mapping[str, int],
    *,
    chunk_size: int = 64,
    miss_rate: Mapping[str, float] | None = None,
    distances: NodeDistances | None = None,
) -> ReaderPaths:
    """Run Dijkstra once from every reader node and keep the reader-to-reader distances.

    ``miss_rate`` (reader id -> probability of missing a passing tag, ``readers.miss_rate``)
    feeds the negative evidence of path choice.

    Sources go in chunks of ``chunk_size`` so that the (chunk, N) distance block stays small
    on a city-sized graph; only the (R, R) reader block is kept. ``distances`` (over a set
    holding every reader node) serves the block from Dijkstra rows already run.
    """
    reader_ids = tuple(sorted(reader_nodes))
    node_of = np.asarray([reader_nodes[r] for r in reader_ids], dtype=np.int64)
    if node_of.size and (node_of.min() < 0 or node_of.max() >= graph.node_count):
        raise ValueError("reader node out of range of the graph")
    unique_nodes, inverse = np.unique(node_of, return_inverse=True)
    if distances is not None:
        if distances.graph is not graph:
            raise ValueError("the distances were computed on another graph")
        dist_unique = distances.block(unique_nodes)
    else:
        dist_unique = np.empty((len(unique_nodes), len(unique_nodes)))
        for lo in range(0, len(unique_nodes), chunk_size):
            block, _ = graph.shortest_paths_from(unique_nodes[lo : lo + chunk_size].tolist())
            dist_unique[lo : lo + chunk_size] = block[:, unique_nodes]
    return ReaderPaths(
        graph=graph,
        reader_ids=reader_ids,
        reader_node=dict(reader_nodes),
        distance_matrix_m=dist_unique[np.ix_(inverse, inverse)],
        miss_rate=dict(miss_rate or {}),
    )
