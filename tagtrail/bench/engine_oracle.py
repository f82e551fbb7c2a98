"""The route-choice oracle of ``tagtrail bench accuracy``: the bound the evidence allows.

The simulator's riders choose their way by a known model (:mod:`simulators.routing`): each trip
rides the shortest path on one of a few *route variants* (the road lengths times a fixed random
factor per edge, the same for the whole city; variant 0 is the plain shortest path), thieves
ride variant 0 and vans prefer arterials. Any piece of a shortest path is itself a shortest
path, so between two passages of one trip the true way is the shortest path of the trip's
variant between the two readers.

:class:`RouteChoiceOracle` knows that model — the variants' very weights — and nothing else the
engine does not: for every segment its candidates are the variants' shortest paths between the
two readers, weighed like the engine weighs a path (readers on it that stayed silent, by their
miss rates; the implied speed), and the variant of a route is decoded jointly (Viterbi: the
variant rarely changes between consecutive segments, since most consecutive passages are one
trip). No deployment can have this; it shows how much of the recall left on the table is the
evidence's and how much the path choice's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse.csgraph import dijkstra

from citymap.network import City
from simulators.preferences import RoutePreferences
from simulators.routing import VAN_VARIANT, Router
from track_engine.path_model import PathModel
from track_engine.paths import NegativeEvidenceChooser
from track_engine.roads import ReaderPaths

_US_PER_S = 1_000_000
# Log prior of a change of variant between consecutive segments (a new trip), and of a van.
_SWITCH_LOGLIK = math.log(0.1)
_VAN_LOGLIK = math.log(0.01)


class RouteChoiceOracle:
    """A route chooser (``track_engine.route_choice.RouteChooser``) that knows the simulator's
    route variants; build it with the simulated day's router seed (and, for riders with
    habits, its shared route preferences: ``DayPlan.route_preferences``)."""

    def __init__(
        self,
        city: City,
        *,
        router_seed: int,
        variants: int = 4,
        model: PathModel | None = None,
        preferences: RoutePreferences | None = None,
        decision: str = "viterbi",
    ) -> None:
        if decision not in ("viterbi", "marginal"):
            raise ValueError(f"decision must be viterbi or marginal, got {decision!r}")
        # "viterbi": the most probable variant sequence; "marginal": per segment, the path
        # with the largest posterior probability (forward-backward over the variants) — the
        # better decision for a score counted segment by segment.
        self.decision = decision
        router = Router(city, seed=router_seed, variants=variants, preferences=preferences)
        self._graphs = [router.variant_graph(v) for v in range(variants)]
        self._graphs.append(router.variant_graph(VAN_VARIANT))
        self._prior = np.zeros(len(self._graphs))
        self._prior[-1] = _VAN_LOGLIK
        self.model = model or PathModel()
        self._trees: dict[int, NDArray[np.int32]] = {}

    def _tree(self, src: int) -> NDArray[np.int32]:
        """Predecessor rows (variant x node) of every variant's shortest paths from ``src``."""
        if src not in self._trees:
            self._trees[src] = np.stack([
                np.asarray(dijkstra(g, directed=True, indices=src, return_predecessors=True)[1],
                           dtype=np.int32)
                for g in self._graphs
            ])  # fmt: skip
        return self._trees[src]

    def variant_paths(self, src: int, dst: int) -> list[tuple[int, ...] | None]:
        """Each variant's shortest node path from ``src`` to ``dst`` (None: unreachable)."""
        if src == dst:
            return [(src,)] * len(self._graphs)
        out: list[tuple[int, ...] | None] = []
        for pred in self._tree(src):
            path, node = [dst], dst
            while node != src and node >= 0:
                node = int(pred[node])
                path.append(node)
            out.append(tuple(reversed(path)) if node == src else None)
        return out

    def choose_route(
        self,
        readers: Sequence[str],
        times_us: Sequence[int],
        directions: Sequence[str],
        reader_paths: ReaderPaths,
        *,
        heard: Sequence[frozenset[str]] | None = None,
    ) -> list[list[int] | None]:
        """One path per consecutive pair: the variant paths decoded jointly (Viterbi)."""
        del directions
        nats = NegativeEvidenceChooser(self.model).candidates_for(reader_paths).node_nats
        graph = reader_paths.graph
        nodes = [reader_paths.reader_node[r] for r in readers]
        segs: list[tuple[list[tuple[int, ...] | None], NDArray[np.float64]]] = []
        for i in range(len(readers) - 1):
            dt_s = (times_us[i + 1] - times_us[i]) / _US_PER_S
            excused = {reader_paths.reader_node[r] for r in
                       (heard[i] | heard[i + 1] if heard else ())}  # fmt: skip
            paths = self.variant_paths(nodes[i], nodes[i + 1])
            score = np.full(len(paths), -np.inf)
            for v, p in enumerate(paths):
                if p is None:
                    continue
                ends = {p[0], p[-1]} | excused
                inner = [n for n in p[1:-1] if n not in ends]
                miss = -float(nats[inner].sum()) if inner else 0.0
                speed = self.model.speed_loglik(graph.path_length_m(p), dt_s)
                score[v] = miss + max(speed, -50.0) + self._prior[v]
            segs.append((paths, score))
        return _viterbi(segs) if self.decision == "viterbi" else _marginal(segs)

    def __call__(self, *args: Any, **kwargs: Any) -> list[int] | None:  # pragma: no cover
        """Per-pair use is not supported: the oracle decodes whole routes."""
        raise TypeError("the route-choice oracle decodes whole routes (choose_route)")


def _viterbi(
    segs: list[tuple[list[tuple[int, ...] | None], NDArray[np.float64]]],
) -> list[list[int] | None]:
    """The most probable variant sequence; a change of variant costs ``_SWITCH_LOGLIK``."""
    if not segs:
        return []
    k = len(segs[0][1])
    trans = np.full((k, k), _SWITCH_LOGLIK)
    np.fill_diagonal(trans, 0.0)
    delta = segs[0][1].copy()
    back: list[NDArray[np.intp]] = []
    for _, score in segs[1:]:
        total = delta[:, None] + trans
        back.append(np.argmax(total, axis=0))
        delta = total[back[-1], np.arange(k)] + score
        if not np.isfinite(delta).any():  # no variant reaches: start the chain afresh
            delta = score.copy()
    state = int(np.argmax(delta))
    states = [state]
    for b in reversed(back):
        state = int(b[state])
        states.append(state)
    states.reverse()
    out: list[list[int] | None] = []
    for (paths, score), v in zip(segs, states, strict=True):
        if not np.isfinite(score[v]):  # this variant cannot: the segment's own best
            v = int(np.argmax(score))
        path = paths[v]
        out.append(list(path) if path is not None and np.isfinite(score[v]) else None)
    return out


def _marginal(
    segs: list[tuple[list[tuple[int, ...] | None], NDArray[np.float64]]],
) -> list[list[int] | None]:
    """Per segment, the path with the largest posterior probability under the same chain as
    :func:`_viterbi` (forward-backward; a segment no variant reaches breaks the chain)."""
    out: list[list[int] | None] = [None] * len(segs)
    start = 0
    for end in range(len(segs) + 1):
        if end < len(segs) and np.isfinite(segs[end][1]).any():
            continue
        if end > start:
            for k, path in enumerate(_chain_marginal(segs[start:end])):
                out[start + k] = path
        start = end + 1
    return out


def _chain_marginal(
    segs: list[tuple[list[tuple[int, ...] | None], NDArray[np.float64]]],
) -> list[list[int] | None]:
    k = len(segs[0][1])
    trans = np.full((k, k), _SWITCH_LOGLIK)
    np.fill_diagonal(trans, 0.0)
    fwd = [segs[0][1].copy()]
    for _, score in segs[1:]:
        fwd.append(_lse(fwd[-1][:, None] + trans, axis=0) + score)
    bwd = [np.zeros(k)]
    for _, score in reversed(segs[1:]):
        bwd.append(_lse(trans + (score + bwd[-1])[None, :], axis=1))
    bwd.reverse()
    out: list[list[int] | None] = []
    for (paths, _), f, b in zip(segs, fwd, bwd, strict=True):
        post = f + b
        post = np.exp(post - np.max(post))
        mass: dict[tuple[int, ...], float] = {}
        for v, way in enumerate(paths):
            if way is not None and post[v] > 0.0:
                mass[way] = mass.get(way, 0.0) + float(post[v])
        best = max(mass.items(), key=lambda kv: kv[1])[0] if mass else None
        out.append(list(best) if best is not None else None)
    return out


def _lse(x: NDArray[np.float64], axis: int) -> NDArray[np.float64]:
    """log-sum-exp along ``axis``, -inf where every term is."""
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        out: NDArray[np.float64] = np.log(np.sum(np.exp(x - m), axis=axis)) + np.squeeze(m, axis)
    return out
