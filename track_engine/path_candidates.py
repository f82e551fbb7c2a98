"""Candidate road paths between two readers: the choice set that path choice ranks.

A rider between two readers seldom takes *the* shortest path: streets are near-equal, and each
rider has habits (a quieter street, a favourite bridge). Measured on the simulator, the
shortest path is the true one for about 81% of the ridden length, so ranking only shortest-path
variants cannot pass that. The choice set here is built the standard way of route-choice
modelling (link-cost perturbation, e.g. Bovy & Fiorenzo-Catalano 2007), plus the paths that
avoid silent readers:

* **perturbed shortest paths** — ``samples`` copies of the road graph with every edge length
  multiplied by an independent log-normal factor (``sample_sigma``); each copy's shortest path
  is one plausible way a rider with some street preference would go. How many copies produce a
  path (``Candidate.samples``) is a rough measure of how robustly near-shortest it is;
* **reader-avoiding paths** — shortest paths with every reader node made dearer by
  ``λ · (-ln miss_rate)`` meters, for the ``penalties_m`` values of λ (``λ = 0`` is the plain
  shortest path): the ways round readers that did not hear the tag.

Readers never move, so one shortest-path tree per (graph copy, source reader) serves every
destination; trees and candidate sets are computed on first use (or all trees at once:
:meth:`PathCandidates.warm`) and cached (trees in an LRU bounded in bytes, since a real city
has thousands of readers).

A tree computed on first use is grown only as far as the destinations asked for need: the
Dijkstra of copy ``k`` stops at ``w_k(P)``, the copy's cost of any one path ``P`` to the
destination (the plain shortest one), which bounds that copy's shortest distance to it. Inside
that radius a Dijkstra's distances and predecessors are final, so the candidate paths are those
of a whole-city tree; a later destination farther away grows the tree again. Consecutive
readers of a trip are a few hundred meters apart, so on a city of tens of thousands of nodes
this visits a small neighbourhood instead of the whole graph, 37 times per source.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.sparse
from numpy.typing import NDArray
from scipy.sparse.csgraph import dijkstra

from track_engine.roads import NoPathError, ReaderPaths

# Bytes of shortest-path trees kept per index (a source's trees are copies x nodes int32):
# every reader of a city the size of the demo's, some hundreds in a large city's; at least
# ``_MIN_TREE_SOURCES`` sources whatever the graph.
_TREE_CACHE_BYTES = 192 * 1024 * 1024
_MIN_TREE_SOURCES = 16


class CandidateModel(Protocol):
    """The parameters candidate generation needs (a :class:`track_engine.path_model.PathModel`)."""

    @property
    def penalties_m(self) -> tuple[float, ...]: ...

    @property
    def samples(self) -> int: ...

    @property
    def sample_sigma(self) -> float: ...

    @property
    def sample_seed(self) -> int: ...


@dataclass(frozen=True)
class Candidate:
    """One candidate path between two readers with the terms of its log-likelihood.

    ``samples``: how many perturbed graph copies gave this path (0 for a path found only by
    avoiding readers).
    """

    nodes: tuple[int, ...]
    length_m: float
    missed_readers: tuple[str, ...]
    miss_loglik: float
    samples: int = 0

    @property
    def first_hop(self) -> int | None:
        """The node after the start (None for a zero-length path)."""
        return self.nodes[1] if len(self.nodes) > 1 else None

    @property
    def last_hop(self) -> int | None:
        """The node before the end (None for a zero-length path)."""
        return self.nodes[-2] if len(self.nodes) > 1 else None


class PathCandidates:
    """Candidate paths between reader pairs, built lazily from cached shortest-path trees."""

    def __init__(self, reader_paths: ReaderPaths, model: CandidateModel) -> None:
        self.reader_paths = reader_paths
        self.model = model
        graph = reader_paths.graph
        self._graph = graph
        n = graph.node_count
        # Nats of negative evidence per node: the sum over the readers standing on it.
        self.node_nats = np.zeros(n)
        self.readers_at: dict[int, tuple[str, ...]] = {}
        for reader, node in reader_paths.reader_node.items():
            miss = min(max(reader_paths.miss_rate_of(reader), 1e-6), 1.0)
            self.node_nats[node] += -math.log(miss)
            self.readers_at[node] = (*self.readers_at.get(node, ()), reader)
        weights: list[NDArray[np.float64]] = []
        for lam in model.penalties_m:
            # Entering a reader node costs its penalty; the constant cost of entering the
            # destination is the same for every path, so it does not change the choice.
            weights.append(graph.edge_length_m + lam * self.node_nats[graph.edge_dst])
        # A fixed seed: the same readers and graph always give the same candidates.
        rng = np.random.default_rng(model.sample_seed)
        for _ in range(model.samples):
            factor = rng.lognormal(0.0, model.sample_sigma, size=len(graph.edge_length_m))
            weights.append(graph.edge_length_m * factor)
        self._n_penalized = len(model.penalties_m)
        self._weights = np.stack(weights) if weights else np.empty((0, len(graph.edge_src)))
        # Edge index + 1 by (src, dst): the graph keeps one edge per node pair.
        self._edge_ids = scipy.sparse.csr_matrix(
            (np.arange(1, len(graph.edge_src) + 1), (graph.edge_src, graph.edge_dst)),
            shape=(n, n),
        )
        self._matrices = [
            scipy.sparse.csr_matrix((w, (graph.edge_src, graph.edge_dst)), shape=(n, n))
            for w in weights
        ]
        self._trees: OrderedDict[int, NDArray[np.int32]] = OrderedDict()
        # How far (in each copy's own cost) each cached source's trees were grown; inf: whole.
        self._radius: dict[int, NDArray[np.float64]] = {}
        per_source = 4 * len(self._matrices) * max(n, 1)
        self.max_tree_sources = max(_MIN_TREE_SOURCES, _TREE_CACHE_BYTES // per_source)
        self._pairs: dict[tuple[str, str], tuple[Candidate, ...]] = {}

    def warm(self) -> int:
        """Compute the trees of every reader's node up front (as many as the tree cache
        keeps), one multi-source Dijkstra per graph copy; returns how many sources are warm.

        A reader's first route or prediction then costs path walks only, not its Dijkstra
        runs: an API worker calls this at start, so the first officers do not pay for it.
        """
        wanted = sorted(set(self.reader_paths.reader_node.values()) - set(self._trees))
        wanted = wanted[: max(self.max_tree_sources - len(self._trees), 0)]
        if wanted:
            rows = np.stack(
                [
                    np.asarray(
                        dijkstra(m, directed=True, indices=wanted, return_predecessors=True)[1],
                        dtype=np.int32,
                    ).reshape(len(wanted), -1)
                    for m in self._matrices
                ],
                axis=1,
            )  # sources x copies x nodes
            for i, src in enumerate(wanted):
                self._trees[src] = np.ascontiguousarray(rows[i])
                self._radius[src] = np.full(len(self._matrices), np.inf)
        return len(self._trees)

    def candidates(self, a: str, b: str) -> tuple[Candidate, ...]:
        """Distinct candidate paths from reader ``a`` to reader ``b``, shortest first.

        Raises NoPathError when no road path joins them.
        """
        key = (a, b)
        if key not in self._pairs:
            self._pairs[key] = self._build(a, b)
        return self._pairs[key]

    def _build(self, a: str, b: str) -> tuple[Candidate, ...]:
        src = self.reader_paths.reader_node[a]
        dst = self.reader_paths.reader_node[b]
        if src == dst:
            return (Candidate((src,), 0.0, (), 0.0, self.model.samples),)
        trees = self._trees_reaching(src, dst, self.reader_paths.distance_m(a, b))
        counts: dict[tuple[int, ...], int] = {}
        for k in range(trees.shape[0]):
            nodes = _walk(trees[k], src, dst)
            if nodes is None:
                continue
            counts[nodes] = counts.get(nodes, 0) + (k >= self._n_penalized)
        if not counts:
            raise NoPathError(f"no road path from reader {a} to reader {b}")
        out = [self._describe(nodes, c) for nodes, c in counts.items()]
        out.sort(key=lambda c: (c.length_m, c.nodes))
        return tuple(out)

    def _describe(self, nodes: tuple[int, ...], samples: int) -> Candidate:
        ends = {nodes[0], nodes[-1]}
        inner = [n for n in nodes[1:-1] if n not in ends and self.node_nats[n] > 0.0]
        missed = tuple(r for n in inner for r in self.readers_at[n])
        return Candidate(
            nodes=nodes,
            length_m=self._graph.path_length_m(nodes),
            missed_readers=missed,
            miss_loglik=-float(self.node_nats[inner].sum()) if inner else 0.0,
            samples=samples,
        )

    def _trees_reaching(self, src: int, dst: int, distance_m: float) -> NDArray[np.int32]:
        """Predecessor rows of every graph copy from ``src`` (copies x nodes), grown at least
        as far as ``dst`` in each copy (see the module docstring)."""
        rows = self._trees.get(src)
        if rows is None:
            rows = np.full((len(self._matrices), self._graph.node_count), -9999, np.int32)
            radius = np.zeros(len(self._matrices))
            short = np.ones(len(self._matrices), bool)
        else:
            self._trees.move_to_end(src)
            radius = self._radius[src]
            # A whole tree that lacks dst will never reach it: no path, nothing to grow.
            short = (rows[:, dst] < 0) & np.isfinite(radius)
            if not short.any():
                return rows
        need = self._costs_of_a_path(src, dst, distance_m)
        for k in np.flatnonzero(short).tolist():
            # A hair beyond the bound: summing the path's weights in another order than the
            # Dijkstra does may round the other way.
            limit = max(float(radius[k]), float(need[k]) * (1.0 + 1e-9) + 1e-6)
            rows[k] = self._tree(k, src, limit)
            if rows[k, dst] < 0 and math.isfinite(limit):  # rounding beyond the hair
                limit = np.inf
                rows[k] = self._tree(k, src, limit)
            radius[k] = limit
        self._trees[src] = rows
        self._radius[src] = radius
        while len(self._trees) > self.max_tree_sources:
            old, _ = self._trees.popitem(last=False)
            self._radius.pop(old, None)
        return rows

    def _tree(self, copy: int, src: int, limit: float) -> NDArray[np.int32]:
        return np.asarray(
            dijkstra(
                self._matrices[copy], directed=True, indices=src, return_predecessors=True,
                limit=limit,
            )[1],
            dtype=np.int32,
        )  # fmt: skip

    def _costs_of_a_path(self, src: int, dst: int, distance_m: float) -> NDArray[np.float64]:
        """Each copy's cost of one plain shortest path ``src`` -> ``dst``, ``distance_m`` long
        (inf in every copy when there is no path)."""
        if not math.isfinite(distance_m):
            return np.full(len(self._matrices), np.inf)
        nodes = None
        for limit in (distance_m * (1.0 + 1e-9) + 1e-6, np.inf):
            pred = dijkstra(
                self._graph.csr(), directed=True, indices=src, return_predecessors=True,
                limit=limit,
            )[1]  # fmt: skip
            nodes = _walk(np.asarray(pred, np.int32), src, dst)
            if nodes is not None:
                break
        if nodes is None:
            return np.full(len(self._matrices), np.inf)
        arr = np.asarray(nodes, np.int64)
        ids = np.asarray(self._edge_ids[arr[:-1], arr[1:]]).ravel().astype(np.int64) - 1
        return np.asarray(self._weights[:, ids].sum(axis=1), np.float64)


def _walk(pred: NDArray[np.int32], src: int, dst: int) -> tuple[int, ...] | None:
    """Node path from ``src`` to ``dst`` in a shortest-path tree; None when unreachable."""
    path = [dst]
    node = dst
    while node != src:
        node = int(pred[node])
        if node < 0:
            return None
        path.append(node)
    return tuple(reversed(path))
