"""Choose the road path a bike most probably took between two consecutive passages.

The likelihood of a candidate path ``P`` of length ``L`` from reader ``a`` (closest at ``t0``) to
reader ``b`` (closest at ``t1``), given that no reader heard the tag in between, is the product of

* **negative evidence** — every reader standing on ``P`` (other than at ``a``'s or ``b``'s
  node) would have heard the tag unless it missed it, which happens with that reader's
  ``miss_rate``: a factor ``miss_rate`` per reader passed;
* **time consistency** — the implied speed ``L / (t1 - t0)`` under a log-normal e-bike speed
  distribution, floored so that a long stop (parked, waiting at lights) does not rule a path
  out; a speed above ``max_speed_mps`` rules it out;
* **a detour prior** — riders take near-shortest routes: ``exp(-(L - L_min) / scale)``, with a
  scale that grows with the trip (a 10% detour of a long ride is as plausible as 50 m of a
  short one).

The candidates are the shortest paths on the road graph with every reader node made *dearer* by
``λ · (-ln miss_rate)`` meters, for a few values of λ: ``λ = 0`` is the plain shortest path, a
huge λ is the path that passes the fewest (and most reliable-to-miss) readers, and the values
between trade length against readers passed. Readers never move, so one shortest-path tree per
(λ, source reader) serves every destination; trees and the candidate sets per reader pair are
computed on first use and cached on the :class:`~track_engine.roads.ReaderPaths`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse
from numpy.typing import NDArray
from scipy.sparse.csgraph import dijkstra

from track_engine.roads import NoPathError, ReaderPaths, RoadGraph

_US_PER_S = 1_000_000
# Shortest-path trees kept per ReaderPaths: (penalties x sources) rows of N int32 each.
_TREE_CACHE_ROWS = 2048


@dataclass(frozen=True)
class PathModel:
    """Parameters of the path likelihood (see the module docstring)."""

    typical_speed_mps: float = 4.5  # ~16 km/h, the middle of commuter e-bike speeds
    speed_log_sigma: float = 0.45
    # Below this log-likelihood a speed is "unusual but explainable" (a stop, a van).
    speed_floor_loglik: float = -3.0
    max_speed_mps: float = 17.0
    # Steep: riders overwhelmingly take the shortest way, so a detour must be explained by the
    # readers it avoids (tuned on simulated cities: a scale of 10% let near-equal reader-free
    # detours beat a shortest path whose one reader simply missed).
    detour_scale_frac: float = 0.02
    detour_scale_min_m: float = 10.0
    # Meters a missed-reader nat costs, per candidate search (0: plain shortest path).
    penalties_m: tuple[float, ...] = (0.0, 60.0, 200.0, 600.0, 1e6)

    def speed_loglik(self, length_m: float, dt_s: float) -> float:
        """Log-likelihood of covering ``length_m`` in ``dt_s``; ``-inf`` when impossible."""
        if length_m <= 0.0:
            return 0.0
        if dt_s <= 0.0 or length_m / dt_s > self.max_speed_mps:
            return -math.inf
        z = (math.log(length_m / dt_s) - math.log(self.typical_speed_mps)) / self.speed_log_sigma
        return max(-0.5 * z * z, self.speed_floor_loglik)

    def detour_loglik(self, length_m: float, shortest_m: float) -> float:
        """Log prior of a path ``length_m`` long when the shortest is ``shortest_m``."""
        scale = max(self.detour_scale_frac * shortest_m, self.detour_scale_min_m)
        return -max(length_m - shortest_m, 0.0) / scale


@dataclass(frozen=True)
class Candidate:
    """One candidate path between two readers with the terms of its log-likelihood."""

    nodes: tuple[int, ...]
    length_m: float
    missed_readers: tuple[str, ...]
    miss_loglik: float


class PathCandidates:
    """Candidate paths between reader pairs, built lazily from penalized shortest-path trees."""

    def __init__(self, reader_paths: ReaderPaths, model: PathModel) -> None:
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
        self._matrices: dict[float, scipy.sparse.csr_matrix] = {}
        for lam in model.penalties_m:
            # Entering a reader node costs its penalty; the constant cost of entering the
            # destination is the same for every path, so it does not change the choice.
            weight = graph.edge_length_m + lam * self.node_nats[graph.edge_dst]
            self._matrices[lam] = scipy.sparse.csr_matrix(
                (weight, (graph.edge_src, graph.edge_dst)), shape=(n, n)
            )
        self._trees: OrderedDict[tuple[float, int], NDArray[np.int32]] = OrderedDict()
        self._pairs: dict[tuple[str, str], tuple[Candidate, ...]] = {}

    def candidates(self, a: str, b: str) -> tuple[Candidate, ...]:
        """Distinct candidate paths from reader ``a`` to reader ``b``, shortest first."""
        key = (a, b)
        if key not in self._pairs:
            self._pairs[key] = self._build(a, b)
        return self._pairs[key]

    def _build(self, a: str, b: str) -> tuple[Candidate, ...]:
        src = self.reader_paths.reader_node[a]
        dst = self.reader_paths.reader_node[b]
        if src == dst:
            return (Candidate((src,), 0.0, (), 0.0),)
        seen: set[tuple[int, ...]] = set()
        out: list[Candidate] = []
        for lam in self.model.penalties_m:
            nodes = _walk(self._tree(lam, src), src, dst)
            if nodes is None or nodes in seen:
                continue
            seen.add(nodes)
            out.append(self._describe(nodes))
        if not out:
            raise NoPathError(f"no road path from reader {a} to reader {b}")
        out.sort(key=lambda c: c.length_m)
        return tuple(out)

    def _describe(self, nodes: tuple[int, ...]) -> Candidate:
        ends = {nodes[0], nodes[-1]}
        inner = [n for n in nodes[1:-1] if n not in ends and self.node_nats[n] > 0.0]
        missed = tuple(r for n in inner for r in self.readers_at[n])
        return Candidate(
            nodes=nodes,
            length_m=self._graph.path_length_m(nodes),
            missed_readers=missed,
            miss_loglik=-float(self.node_nats[inner].sum()) if inner else 0.0,
        )

    def _tree(self, lam: float, src: int) -> NDArray[np.int32]:
        key = (lam, src)
        row = self._trees.get(key)
        if row is None:
            _, pred = dijkstra(
                self._matrices[lam], directed=True, indices=[src], return_predecessors=True
            )
            row = np.asarray(pred, dtype=np.int32).reshape(-1)
            self._trees[key] = row
            while len(self._trees) > _TREE_CACHE_ROWS:
                self._trees.popitem(last=False)
        else:
            self._trees.move_to_end(key)
        return row


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


def score(candidate: Candidate, *, shortest_m: float, dt_s: float, model: PathModel) -> float:
    """Log-likelihood of one candidate for a gap of ``dt_s`` seconds."""
    return (
        candidate.miss_loglik
        + model.speed_loglik(candidate.length_m, dt_s)
        + model.detour_loglik(candidate.length_m, shortest_m)
    )


class NegativeEvidenceChooser:
    """A :class:`track_engine.routes.PathChooser` weighing time, detour and readers passed."""

    def __init__(self, model: PathModel | None = None) -> None:
        self.model = model or PathModel()

    def candidates_for(self, reader_paths: ReaderPaths) -> PathCandidates:
        """The (cached) candidate index of these reader paths under this model."""
        return reader_paths.memo(
            f"candidates:{self.model!r}", lambda: PathCandidates(reader_paths, self.model)
        )

    def ranked(
        self, reader_paths: ReaderPaths, from_reader: str, to_reader: str, dt_s: float
    ) -> list[tuple[float, Candidate]]:
        """Candidates with their log-likelihoods, most probable first."""
        cands = self.candidates_for(reader_paths).candidates(from_reader, to_reader)
        shortest = cands[0].length_m
        scored = [(score(c, shortest_m=shortest, dt_s=dt_s, model=self.model), c) for c in cands]
        scored.sort(key=lambda sc: (-sc[0], sc[1].length_m))
        return scored

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
    ) -> list[int] | None:
        """The most probable path; the shortest when every candidate is impossible."""
        del graph, reader_nodes  # all of it is in reader_paths
        try:
            ranked = self.ranked(
                reader_paths, from_reader, to_reader, (end_us - start_us) / _US_PER_S
            )
        except NoPathError:
            return None
        best_score, best = ranked[0]
        if math.isinf(best_score):
            # Too fast for every candidate: the route flags it; the shortest is the least bad.
            best = min((c for _, c in ranked), key=lambda c: c.length_m)
        return list(best.nodes)


def shortest_path(
    from_reader: str,
    to_reader: str,
    *,
    start_us: int,
    end_us: int,
    graph: RoadGraph,
    reader_nodes: Mapping[str, int],
    reader_paths: ReaderPaths,
) -> list[int] | None:
    """Plain shortest-path stitching (the baseline the accuracy benchmark compares with)."""
    del start_us, end_us, graph, reader_nodes
    try:
        return reader_paths.path(from_reader, to_reader)
    except NoPathError:
        return None
