"""Choose the road path a bike most probably took between consecutive passages.

The likelihood of a candidate path ``P`` of length ``L`` from reader ``a`` (closest at ``t0``) to
reader ``b`` (closest at ``t1``), given that no reader heard the tag in between, is the product of

* **negative evidence** — every reader standing on ``P`` (other than at ``a``'s or ``b``'s
  node) would have heard the tag unless it missed it, which happens with that reader's
  ``miss_rate``: a factor ``miss_rate`` per reader passed;
* **time consistency** — the implied speed ``L / (t1 - t0)`` under a log-normal speed
  distribution around the *rider's own* typical speed (estimated from the same route, see
  below), floored on the slow side so that a stop (parked, waiting at lights) does not rule a
  path out, steeper on the fast side (nobody rides a detour faster than they ride); above
  ``max_speed_mps`` it is impossible;
* **a detour prior** — riders take near-shortest routes: ``exp(-(L - L_min) / scale)``, with a
  scale that grows with the trip (a 10% detour of a long ride is as plausible as 50 m of a
  short one);
* **direction of travel** at two-antenna readers (:mod:`track_engine.path_direction`), which
  couples the last edge before a reader with the first edge after it, and a small penalty for
  turning back the way the bike came at a reader.

The candidates are built by :class:`track_engine.path_candidates.PathCandidates` (perturbed
and reader-avoiding shortest paths). A whole route is decoded jointly
(:meth:`NegativeEvidenceChooser.choose_route`): a Viterbi pass over the candidates of every
segment, since the direction seen at a reader is evidence about both segments that meet there.
It runs twice: first with a population-wide speed, then with the rider's own speed, the median
of the implied speeds of the first pass's moving segments — a route implying a speed far from
the rider's own is less likely.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from track_engine.path_candidates import Candidate, PathCandidates
from track_engine.path_direction import direction_loglik, travel_heading
from track_engine.roads import Derived, NoPathError, ReaderPaths, RoadGraph
from track_engine.stretch_confidence import StretchConfidence, normalise, stretch_confidence

__all__ = [
    "Candidate",
    "NegativeEvidenceChooser",
    "PathCandidates",
    "PathModel",
    "score",
    "shortest_path",
]

_US_PER_S = 1_000_000


@dataclass(frozen=True)
class PathModel:
    """Parameters of the path likelihood (see the module docstring)."""

    typical_speed_mps: float = 4.5  # ~16 km/h, the middle of commuter e-bike speeds
    speed_log_sigma: float = 0.45
    # Below this log-likelihood a speed is "unusual but explainable" (a stop, a van).
    speed_floor_loglik: float = -3.0
    max_speed_mps: float = 17.0
    # A rider's own speed varies much less than the population's; faster than one's own
    # usual speed is rarer than slower (slower is any stop).
    own_speed_log_sigma: float = 0.2
    own_speed_fast_floor_loglik: float = -6.0
    own_speed_min_segments: int = 2
    # Riders overwhelmingly take near-shortest ways, so a detour must be explained by the
    # readers it avoids, the time, or the direction seen at a reader.
    detour_scale_frac: float = 0.02
    detour_scale_min_m: float = 10.0
    # Meters a missed-reader nat costs, per reader-avoiding candidate search (0: shortest).
    penalties_m: tuple[float, ...] = (0.0, 60.0, 200.0, 600.0, 1e6)
    # Perturbed-graph candidates: how many copies and the spread of the edge-length factor.
    samples: int = 32
    sample_sigma: float = 0.25
    sample_seed: int = 0
    # Candidates per segment kept for the joint (Viterbi) decoding of a route.
    beam: int = 8
    direction_steepness: float = 4.0
    direction_floor: float = 0.05
    u_turn_loglik: float = -2.0
    # How a segment's path is picked from the decoding: "map" (the jointly most probable
    # candidates, Viterbi) or "overlap" (per segment, the candidate with the largest expected
    # length in common with the true path under the posterior marginals).
    decision: str = "map"

    def speed_loglik(
        self, length_m: float, dt_s: float, own_speed_mps: float | None = None
    ) -> float:
        """Log-likelihood of covering ``length_m`` in ``dt_s``; ``-inf`` when impossible.

        With ``own_speed_mps`` (the rider's estimated typical speed) the distribution is
        centred there and narrower, and being faster costs more than being slower.
        """
        if length_m <= 0.0:
            return 0.0
        if dt_s <= 0.0 or length_m / dt_s > self.max_speed_mps:
            return -math.inf
        v = math.log(length_m / dt_s)
        if own_speed_mps is None:
            z = (v - math.log(self.typical_speed_mps)) / self.speed_log_sigma
            return max(-0.5 * z * z, self.speed_floor_loglik)
        z = (v - math.log(own_speed_mps)) / self.own_speed_log_sigma
        floor = self.own_speed_fast_floor_loglik if z > 0 else self.speed_floor_loglik
        return max(-0.5 * z * z, floor)

    def detour_loglik(self, length_m: float, shortest_m: float) -> float:
        """Log prior of a path ``length_m`` long when the shortest is ``shortest_m``."""
        scale = max(self.detour_scale_frac * shortest_m, self.detour_scale_min_m)
        return -max(length_m - shortest_m, 0.0) / scale


def score(
    candidate: Candidate,
    *,
    shortest_m: float,
    dt_s: float,
    model: PathModel,
    own_speed_mps: float | None = None,
) -> float:
    """Log-likelihood of one candidate for a gap of ``dt_s`` seconds (direction aside)."""
    return (
        candidate.miss_loglik
        + model.speed_loglik(candidate.length_m, dt_s, own_speed_mps)
        + model.detour_loglik(candidate.length_m, shortest_m)
    )


@dataclass
class _Segment:
    """The ranked candidates of one segment in a route decoding (empty: no road path)."""

    cands: list[Candidate]
    loglik: NDArray[np.float64]


# Candidate indexes by (reader paths, model): built once each, dropped with the reader paths.
_CANDIDATES: Derived[PathModel, PathCandidates] = Derived()


class NegativeEvidenceChooser:
    """A path chooser weighing time, detour, readers passed and direction of travel.

    Usable per pair (the :class:`track_engine.routes.PathChooser` protocol) and, better, per
    route (:meth:`choose_route`, which :func:`track_engine.routes.build_route` prefers).
    """

    def __init__(self, model: PathModel | None = None) -> None:
        self.model = model or PathModel()

    def candidates_for(self, reader_paths: ReaderPaths) -> PathCandidates:
        """The (cached) candidate index of these reader paths under this model."""
        return _CANDIDATES.get(
            reader_paths, self.model, lambda: PathCandidates(reader_paths, self.model)
        )

    def ranked(
        self,
        reader_paths: ReaderPaths,
        from_reader: str,
        to_reader: str,
        dt_s: float,
        own_speed_mps: float | None = None,
    ) -> list[tuple[float, Candidate]]:
        """Candidates with their log-likelihoods (direction aside), most probable first."""
        cands = self.candidates_for(reader_paths).candidates(from_reader, to_reader)
        shortest = cands[0].length_m
        scored = [
            (score(c, shortest_m=shortest, dt_s=dt_s, model=self.model,
                   own_speed_mps=own_speed_mps), c)
            for c in cands
        ]  # fmt: skip
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
        """The most probable path of one pair; the shortest when every one is impossible."""
        del graph, reader_nodes  # all of it is in reader_paths
        return self.choose_route(
            [from_reader, to_reader], [start_us, end_us], ["", ""], reader_paths
        )[0]

    def choose_route(
        self,
        readers: Sequence[str],
        times_us: Sequence[int],
        directions: Sequence[str],
        reader_paths: ReaderPaths,
        *,
        heard: Sequence[frozenset[str]] | None = None,
    ) -> list[list[int] | None]:
        """The jointly most probable path of every segment of one tag's route.

        ``readers``, ``times_us`` and ``directions`` are its passages in time order; the
        result has one path per consecutive pair (None where no road path exists).
        ``heard[k]``: readers of passage ``k``'s place that heard the bike too (folded into
        it, see :mod:`track_engine.places`): they are not silent on the paths next to it.
        """
        dts = [(times_us[i + 1] - times_us[i]) / _US_PER_S for i in range(len(readers) - 1)]
        excused = _excused(heard, len(dts))
        first = self._pick(readers, dts, directions, reader_paths, None, excused)
        own = self._own_speed(first, dts)
        if own is None:
            return [list(c.nodes) if c else None for c in first]
        return [list(c.nodes) if c else None for c in
                self._pick(readers, dts, directions, reader_paths, own, excused)]  # fmt: skip

    def choose_route_with_confidence(
        self,
        readers: Sequence[str],
        times_us: Sequence[int],
        directions: Sequence[str],
        reader_paths: ReaderPaths,
        *,
        heard: Sequence[frozenset[str]] | None = None,
    ) -> tuple[list[list[int] | None], list[StretchConfidence | None]]:
        """:meth:`choose_route`'s paths and, per segment, how sure that choice is.

        The posteriors are the forward-backward marginals under the same evidence as the
        choice (the rider's own speed, the readers excused by ``heard``); see
        :mod:`track_engine.stretch_confidence`. None where a segment has no road path.
        """
        dts = [(times_us[i + 1] - times_us[i]) / _US_PER_S for i in range(len(readers) - 1)]
        excused = _excused(heard, len(dts))
        first = self._pick(readers, dts, directions, reader_paths, None, excused)
        own = self._own_speed(first, dts)
        segs = self._segments(readers, dts, reader_paths, own, excused)
        if own is None:
            chosen = first
        elif self.model.decision == "map":  # the same choice as _pick, on segments at hand
            chosen = self._decode(readers, dts, directions, reader_paths, own, excused, segs)
        else:
            chosen = self._pick(readers, dts, directions, reader_paths, own, excused)
        marg = self.marginals(segs, readers, directions, reader_paths)
        confidence: list[StretchConfidence | None] = []
        for seg, logp, pick in zip(segs, marg, chosen, strict=True):
            if not seg.cands or pick is None:
                confidence.append(None)
                continue
            ways = [c.nodes for c in seg.cands]
            confidence.append(stretch_confidence(ways, normalise(logp), pick.nodes))
        return [list(c.nodes) if c else None for c in chosen], confidence

    def posteriors(
        self,
        readers: Sequence[str],
        times_us: Sequence[int],
        directions: Sequence[str],
        reader_paths: ReaderPaths,
    ) -> list[tuple[list[Candidate], NDArray[np.float64]]]:
        """Every segment's candidates with their posterior probabilities (summing to 1).

        The same evidence as :meth:`choose_route` (the rider's own speed when the route
        shows it), but the whole distribution instead of its best path: what a learner of
        reader miss rates needs (:mod:`track_engine.miss_rates`). Segments without a road
        path have no candidates.
        """
        dts = [(times_us[i + 1] - times_us[i]) / _US_PER_S for i in range(len(readers) - 1)]
        own = self._own_speed(self._decode(readers, dts, directions, reader_paths, None), dts)
        segs = self._segments(readers, dts, reader_paths, own)
        marg = self.marginals(segs, readers, directions, reader_paths)
        return [(seg.cands, np.exp(logp)) for seg, logp in zip(segs, marg, strict=True)]

    def _pick(
        self,
        readers: Sequence[str],
        dts: list[float],
        directions: Sequence[str],
        reader_paths: ReaderPaths,
        own_speed_mps: float | None,
        excused: list[frozenset[str]] | None = None,
    ) -> list[Candidate | None]:
        if self.model.decision == "map":
            return self._decode(readers, dts, directions, reader_paths, own_speed_mps, excused)
        if self.model.decision != "overlap":
            raise ValueError(f"unknown decision {self.model.decision!r}")
        segs = self._segments(readers, dts, reader_paths, own_speed_mps, excused)
        marg = self.marginals(segs, readers, directions, reader_paths)
        out: list[Candidate | None] = []
        for seg, logp in zip(segs, marg, strict=True):
            if not seg.cands:
                out.append(None)
                continue
            out.append(seg.cands[most_overlap(seg.cands, np.exp(logp), reader_paths.graph)])
        return out

    def marginals(
        self,
        segs: list[_Segment],
        readers: Sequence[str],
        directions: Sequence[str],
        reader_paths: ReaderPaths,
    ) -> list[NDArray[np.float64]]:
        """Log posterior of every candidate of every segment (forward-backward over chains)."""
        xy = reader_paths.graph.node_xy_m
        nodes = [reader_paths.reader_node[r] for r in readers]
        out: list[NDArray[np.float64]] = [np.empty(0)] * len(segs)
        i = 0
        while i < len(segs):
            if not segs[i].cands:
                i += 1
                continue
            j = i
            while j < len(segs) and segs[j].cands:
                j += 1
            self._chain_marginals(segs, i, j, xy, nodes, directions, out)
            i = j
        return out

    def _chain_marginals(
        self,
        segs: list[_Segment],
        i0: int,
        i1: int,
        xy: NDArray[np.float64],
        nodes: list[int],
        directions: Sequence[str],
        out: list[NDArray[np.float64]],
    ) -> None:
        """Fill ``out[i0:i1]`` for the chain of segments ``i0 .. i1 - 1`` (all with candidates)."""

        def hops(i: int, last: bool) -> NDArray[np.int64]:
            return np.array(
                [_hop(c.last_hop if last else c.first_hop) for c in segs[i].cands], np.int64
            )

        none = np.array([-1], np.int64)
        trans = {
            i: self._at_passage(xy, nodes[i], directions[i], hops(i - 1, True), hops(i, False))
            for i in range(i0 + 1, i1)
        }
        entry = self._at_passage(xy, nodes[i0], directions[i0], none, hops(i0, False))[0]
        exit_ = self._at_passage(xy, nodes[i1], directions[i1], hops(i1 - 1, True), none)[:, 0]
        fwd = {i0: entry + segs[i0].loglik}
        for i in range(i0 + 1, i1):
            fwd[i] = _logsumexp(fwd[i - 1][:, None] + trans[i], axis=0) + segs[i].loglik
        bwd = {i1 - 1: exit_}
        for i in range(i1 - 1, i0, -1):
            bwd[i - 1] = _logsumexp(trans[i] + (segs[i].loglik + bwd[i])[None, :], axis=1)
        for i in range(i0, i1):
            total = fwd[i] + bwd[i]
            out[i] = total - _logsumexp(total[:, None], axis=0)[0]

    def _own_speed(self, chosen: list[Candidate | None], dts: list[float]) -> float | None:
        """Median implied speed of the moving segments (None with too few of them)."""
        speeds = [
            c.length_m / dt
            for c, dt in zip(chosen, dts, strict=True)
            if c is not None and c.length_m >= 100.0 and dt > 0
            and 1.5 <= c.length_m / dt <= self.model.max_speed_mps
        ]  # fmt: skip
        if len(speeds) < self.model.own_speed_min_segments:
            return None
        return float(np.median(speeds))

    def _segments(
        self,
        readers: Sequence[str],
        dts: list[float],
        reader_paths: ReaderPaths,
        own_speed_mps: float | None,
        excused: list[frozenset[str]] | None = None,
    ) -> list[_Segment]:
        out: list[_Segment] = []
        for i, dt in enumerate(dts):
            try:
                ranked = self.ranked(reader_paths, readers[i], readers[i + 1], dt, own_speed_mps)
            except NoPathError:
                out.append(_Segment([], np.empty(0)))
                continue
            if excused and excused[i]:
                ranked = _excuse(ranked, excused[i], reader_paths)
            if math.isinf(ranked[0][0]):
                # Too fast for every candidate: the route flags it; the shortest is least bad.
                shortest = min((c for _, c in ranked), key=lambda c: c.length_m)
                out.append(_Segment([shortest], np.zeros(1)))
                continue
            kept = [(s, c) for s, c in ranked[: self.model.beam] if not math.isinf(s)]
            out.append(_Segment([c for _, c in kept], np.array([s for s, _ in kept])))
        return out

    def _decode(
        self,
        readers: Sequence[str],
        dts: list[float],
        directions: Sequence[str],
        reader_paths: ReaderPaths,
        own_speed_mps: float | None,
        excused: list[frozenset[str]] | None = None,
        segs: list[_Segment] | None = None,
    ) -> list[Candidate | None]:
        """Viterbi over the segments' candidates; direction couples neighbouring segments.

        ``segs``: the segments under this evidence when the caller has them already."""
        if segs is None:
            segs = self._segments(readers, dts, reader_paths, own_speed_mps, excused)
        xy = reader_paths.graph.node_xy_m
        nodes = [reader_paths.reader_node[r] for r in readers]
        best: list[Candidate | None] = [None] * len(segs)
        back: list[NDArray[np.intp]] = [np.empty(0, np.intp)] * len(segs)
        delta = np.empty(0)
        for i, seg in enumerate(segs):
            if not seg.cands:
                delta = self._close(segs, delta, i - 1, xy, nodes, directions)
                self._backtrack(segs, back, delta, i - 1, best)
                delta = np.empty(0)
                continue
            first_hop = np.array([_hop(c.first_hop) for c in seg.cands], np.int64)
            if delta.size == 0:  # a chain starts: only this side of passage i is known
                came = np.array([-1], np.int64)
                entry = self._at_passage(xy, nodes[i], directions[i], came, first_hop)[0]
                delta = entry + seg.loglik
                back[i] = np.full(len(seg.cands), -1, np.intp)
                continue
            came = np.array([_hop(c.last_hop) for c in segs[i - 1].cands], np.int64)
            trans = self._at_passage(xy, nodes[i], directions[i], came, first_hop)
            total = delta[:, None] + trans
            back[i] = np.argmax(total, axis=0)
            delta = total[back[i], np.arange(len(seg.cands))] + seg.loglik
        delta = self._close(segs, delta, len(segs) - 1, xy, nodes, directions)
        self._backtrack(segs, back, delta, len(segs) - 1, best)
        return best

    def _close(
        self,
        segs: list[_Segment],
        delta: NDArray[np.float64],
        last: int,
        xy: NDArray[np.float64],
        nodes: list[int],
        directions: Sequence[str],
    ) -> NDArray[np.float64]:
        """Add the evidence at the passage that ends a chain (only its arrival is known)."""
        if delta.size == 0 or last < 0:
            return delta
        came = np.array([_hop(c.last_hop) for c in segs[last].cands], np.int64)
        goes = np.array([-1], np.int64)
        return delta + self._at_passage(xy, nodes[last + 1], directions[last + 1], came, goes)[:, 0]

    def _at_passage(
        self,
        xy: NDArray[np.float64],
        node: int,
        direction: str,
        came: NDArray[np.int64],
        goes: NDArray[np.int64],
    ) -> NDArray[np.float64]:
        """Log-likelihood of every (arrival, departure) pair of neighbours at one passage."""
        heading = travel_heading(direction)
        out = np.zeros((len(came), len(goes)))
        if heading is not None:
            out += direction_loglik(
                xy, node, heading, came, goes,
                steepness=self.model.direction_steepness, floor=self.model.direction_floor,
            )  # fmt: skip
        u_turn = (came[:, None] == goes[None, :]) & (came[:, None] >= 0)
        return out + np.where(u_turn, self.model.u_turn_loglik, 0.0)

    @staticmethod
    def _backtrack(
        segs: list[_Segment],
        back: list[NDArray[np.intp]],
        delta: NDArray[np.float64],
        last: int,
        best: list[Candidate | None],
    ) -> None:
        """Fill ``best`` for the chain ending at segment ``last`` from its back pointers."""
        if delta.size == 0 or last < 0:
            return
        j = int(np.argmax(delta))
        i = last
        while i >= 0 and segs[i].cands:
            best[i] = segs[i].cands[j]
            j = int(back[i][j])
            if j < 0:
                break
            i -= 1


def _excused(heard: Sequence[frozenset[str]] | None, segments: int) -> list[frozenset[str]]:
    """Per segment, the readers that heard the bike at either end's place."""
    if not heard:
        return []
    return [heard[i] | heard[i + 1] for i in range(segments)]


def _excuse(
    ranked: list[tuple[float, Candidate]], heard: frozenset[str], reader_paths: ReaderPaths
) -> list[tuple[float, Candidate]]:
    """``ranked`` with the missed-reader cost of readers that did hear the bike taken back."""
    out = []
    for s, c in ranked:
        back = sum(
            -math.log(min(max(reader_paths.miss_rate_of(r), 1e-6), 1.0))
            for r in c.missed_readers
            if r in heard
        )
        out.append((s + back, c))
    out.sort(key=lambda sc: (-sc[0], sc[1].length_m))
    return out


def _hop(node: int | None) -> int:
    return -1 if node is None else node


def _logsumexp(x: NDArray[np.float64], axis: int) -> NDArray[np.float64]:
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    out: NDArray[np.float64] = np.squeeze(top, axis) + np.log(np.sum(np.exp(x - top), axis=axis))
    return out


def most_overlap(cands: Sequence[Candidate], prob: NDArray[np.float64], graph: RoadGraph) -> int:
    """Index of the candidate with the largest expected length in common with the true path.

    ``prob[k]`` is the posterior probability that candidate ``k`` is the true path. Recall and
    precision count road length, not whole paths: when two near-equal ways share most of
    their streets, the path that agrees most with the probable ones beats a slightly more
    probable outlier (minimum Bayes risk for the length in common). Ties go to the most
    probable.
    """
    edges = [
        dict(zip(zip(c.nodes[:-1], c.nodes[1:], strict=True), _edge_lengths(c, graph),
                 strict=True))
        for c in cands
    ]  # fmt: skip
    n = len(cands)
    common = np.zeros((n, n))
    for a in range(n):
        for b in range(a, n):
            shared = sum(m for e, m in edges[a].items() if e in edges[b])
            common[a, b] = common[b, a] = shared
    expected = common @ prob
    best = np.flatnonzero(expected >= expected.max() - 1e-9)
    return int(best[np.argmax(prob[best])])


def _edge_lengths(c: Candidate, graph: RoadGraph) -> list[float]:
    if len(c.nodes) < 2:
        return []
    arr = np.asarray(c.nodes, dtype=np.int64)
    return [float(x) for x in np.asarray(graph.csr()[arr[:-1], arr[1:]]).ravel()]


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
