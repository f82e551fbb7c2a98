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
* **a way prior** (optional) — how often the fleet, or this tag, rode each way between the two
  readers, learned from rides heard at the readers in between (:mod:`track_engine.way_prior`);
* **direction of travel** at two-antenna readers (:mod:`track_engine.path_direction`), which
  couples the last edge before a reader with the first edge after it, and a small penalty for
  turning back the way the bike came at a reader.

The first three terms and their parameters are :mod:`track_engine.path_model`; the direction
terms and the joint decoding of a route are :mod:`track_engine.path_decoding`. This module is
the chooser that puts them together.

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

import numpy as np
from numpy.typing import NDArray

from track_engine.path_candidates import Candidate, PathCandidates
from track_engine.path_decoding import (
    PassageEvidence,
    Segment,
    marginals,
    most_overlap,
    viterbi,
)
from track_engine.path_model import PathModel, score
from track_engine.roads import Derived, NoPathError, ReaderPaths, RoadGraph
from track_engine.stretch_confidence import StretchConfidence, normalise, stretch_confidence
from track_engine.way_prior import WayPrior

__all__ = ["NegativeEvidenceChooser", "shortest_path"]

_US_PER_S = 1_000_000


# Candidate indexes by (reader paths, model): built once each, dropped with the reader paths.
_CANDIDATES: Derived[PathModel, PathCandidates] = Derived()


class NegativeEvidenceChooser:
    """A path chooser weighing time, detour, readers passed and direction of travel.

    Usable per pair (the :class:`track_engine.route_choice.PathChooser` protocol) and, better, per
    route (:meth:`choose_route`, which :func:`track_engine.routes.build_route` prefers).
    """

    def __init__(
        self,
        model: PathModel | None = None,
        prior: WayPrior | None = None,
        *,
        prior_until_us: int | None = None,
        prior_after: WayPrior | None = None,
    ) -> None:
        self.model = model or PathModel()
        # How the fleet (or this tag) rides the ways between two readers: a log-prior term
        # per candidate (track_engine.way_prior). None: the reader paths' own, if any.
        self.prior = prior
        # Segments starting at or after this time (UTC µs) use ``prior_after`` instead (None:
        # the reader paths' own, the fleet's): a stolen bike no longer rides its owner's ways.
        self.prior_until_us = prior_until_us
        self.prior_after = prior_after

    def prior_at(self, reader_paths: ReaderPaths, start_us: int | None) -> WayPrior | None:
        """The way prior of a segment starting at ``start_us`` (None: no time known)."""
        cut = self.prior_until_us
        prior = self.prior
        if cut is not None and start_us is not None and start_us >= cut:
            prior = self.prior_after
        return reader_paths.way_prior if prior is None else prior

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
        *,
        start_us: int | None = None,
    ) -> list[tuple[float, Candidate]]:
        """Candidates with their log-likelihoods (direction aside), most probable first;
        ``start_us``: when the segment starts (which prior applies, :meth:`prior_at`)."""
        cands = self.candidates_for(reader_paths).candidates(from_reader, to_reader)
        shortest = cands[0].length_m
        scored = [
            (score(c, shortest_m=shortest, dt_s=dt_s, model=self.model,
                   own_speed_mps=own_speed_mps), c)
            for c in cands
        ]  # fmt: skip
        prior = self.prior_at(reader_paths, start_us)
        if prior:
            terms = prior.logliks(from_reader, to_reader, [c.missed_readers for c in cands])
            scored = [(s + t, c) for (s, c), t in zip(scored, terms, strict=True)]
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
        dts = _Gaps(times_us)
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
        dts = _Gaps(times_us)
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
        dts = _Gaps(times_us)
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
        segs: list[Segment],
        readers: Sequence[str],
        directions: Sequence[str],
        reader_paths: ReaderPaths,
    ) -> list[NDArray[np.float64]]:
        """Log posterior of every candidate of every segment (forward-backward over chains)."""
        return marginals(segs, self._evidence(readers, directions, reader_paths))

    def _evidence(
        self, readers: Sequence[str], directions: Sequence[str], reader_paths: ReaderPaths
    ) -> PassageEvidence:
        """What couples neighbouring segments at each passage of this route."""
        nodes = [reader_paths.reader_node[r] for r in readers]
        return PassageEvidence(self.model, reader_paths.graph.node_xy_m, nodes, directions)

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
    ) -> list[Segment]:
        out: list[Segment] = []
        for i, dt in enumerate(dts):
            try:
                ranked = self.ranked(
                    reader_paths, readers[i], readers[i + 1], dt, own_speed_mps,
                    start_us=dts.starts_us[i] if isinstance(dts, _Gaps) else None,
                )  # fmt: skip
            except NoPathError:
                out.append(Segment([], np.empty(0)))
                continue
            if excused and excused[i]:
                ranked = _excuse(ranked, excused[i], reader_paths)
            if math.isinf(ranked[0][0]):
                # Too fast for every candidate: the route flags it; the shortest is least bad.
                shortest = min((c for _, c in ranked), key=lambda c: c.length_m)
                out.append(Segment([shortest], np.zeros(1)))
                continue
            kept = [(s, c) for s, c in ranked[: self.model.beam] if not math.isinf(s)]
            out.append(Segment([c for _, c in kept], np.array([s for s, _ in kept])))
        return out

    def _decode(
        self,
        readers: Sequence[str],
        dts: list[float],
        directions: Sequence[str],
        reader_paths: ReaderPaths,
        own_speed_mps: float | None,
        excused: list[frozenset[str]] | None = None,
        segs: list[Segment] | None = None,
    ) -> list[Candidate | None]:
        """Viterbi over the segments' candidates; direction couples neighbouring segments.

        ``segs``: the segments under this evidence when the caller has them already."""
        if segs is None:
            segs = self._segments(readers, dts, reader_paths, own_speed_mps, excused)
        return viterbi(segs, self._evidence(readers, directions, reader_paths))


class _Gaps(list[float]):
    """The seconds between consecutive passages, remembering when each segment starts (which
    way prior applies to it, :meth:`NegativeEvidenceChooser.prior_at`)."""

    def __init__(self, times_us: Sequence[int]) -> None:
        super().__init__(
            (times_us[i + 1] - times_us[i]) / _US_PER_S for i in range(len(times_us) - 1)
        )
        self.starts_us = [int(t) for t in times_us[:-1]]


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
