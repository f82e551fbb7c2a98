"""Decode a whole route over its segments' candidate paths: Viterbi, forward-backward, overlap.

Each segment between consecutive passages has a few ranked candidates (:class:`Segment`, scored
by :func:`track_engine.path_model.score`). The direction of travel seen at a two-antenna reader
is evidence about both segments that meet at its passage, and turning back the way the bike
came costs a little (:class:`PassageEvidence`), so the segments of a route are decoded
together: :func:`viterbi` for the jointly most probable candidates, :func:`marginals` for each
candidate's posterior, and :func:`most_overlap` to pick, per segment, the candidate with the
largest expected length in common with the true path. A segment without candidates (no road
path) cuts the route into independent chains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from track_engine.path_candidates import Candidate
from track_engine.path_direction import direction_loglik, travel_heading
from track_engine.path_model import PathModel
from track_engine.roads import RoadGraph

__all__ = ["PassageEvidence", "Segment", "marginals", "most_overlap", "viterbi"]


@dataclass
class Segment:
    """The ranked candidates of one segment in a route decoding (empty: no road path)."""

    cands: list[Candidate]
    loglik: NDArray[np.float64]


@dataclass(frozen=True)
class PassageEvidence:
    """What couples the segments at each passage of a route: its reader's road node and the
    direction of travel seen there (``""``: none), weighed by ``model``."""

    model: PathModel
    xy: NDArray[np.float64]  # the road graph's node positions
    nodes: list[int]  # each passage's reader node
    directions: Sequence[str]  # each passage's direction

    def at(self, k: int, came: NDArray[np.int64], goes: NDArray[np.int64]) -> NDArray[np.float64]:
        """Log-likelihood of every (arrival, departure) pair of neighbours at passage ``k``
        (``-1``: that side is not known)."""
        model = self.model
        heading = travel_heading(self.directions[k])
        out = np.zeros((len(came), len(goes)))
        if heading is not None:
            out += direction_loglik(
                self.xy, self.nodes[k], heading, came, goes,
                steepness=model.direction_steepness, floor=model.direction_floor,
            )  # fmt: skip
        u_turn = (came[:, None] == goes[None, :]) & (came[:, None] >= 0)
        return out + np.where(u_turn, model.u_turn_loglik, 0.0)


_NONE = np.array([-1], np.int64)  # the side of a passage no candidate reaches
_NONE.setflags(write=False)


def viterbi(segs: list[Segment], evidence: PassageEvidence) -> list[Candidate | None]:
    """The jointly most probable candidate of every segment (None where it has none)."""
    best: list[Candidate | None] = [None] * len(segs)
    back: list[NDArray[np.intp]] = [np.empty(0, np.intp)] * len(segs)
    delta = np.empty(0)
    for i, seg in enumerate(segs):
        if not seg.cands:
            delta = _close(segs, delta, i - 1, evidence)
            _backtrack(segs, back, delta, i - 1, best)
            delta = np.empty(0)
            continue
        first_hop = _hops(seg, last=False)
        if delta.size == 0:  # a chain starts: only this side of passage i is known
            delta = evidence.at(i, _NONE, first_hop)[0] + seg.loglik
            back[i] = np.full(len(seg.cands), -1, np.intp)
            continue
        total = delta[:, None] + evidence.at(i, _hops(segs[i - 1], last=True), first_hop)
        back[i] = np.argmax(total, axis=0)
        delta = total[back[i], np.arange(len(seg.cands))] + seg.loglik
    delta = _close(segs, delta, len(segs) - 1, evidence)
    _backtrack(segs, back, delta, len(segs) - 1, best)
    return best


def marginals(segs: list[Segment], evidence: PassageEvidence) -> list[NDArray[np.float64]]:
    """Log posterior of every candidate of every segment (forward-backward over chains)."""
    out: list[NDArray[np.float64]] = [np.empty(0)] * len(segs)
    i = 0
    while i < len(segs):
        if not segs[i].cands:
            i += 1
            continue
        j = i
        while j < len(segs) and segs[j].cands:
            j += 1
        _chain_marginals(segs, i, j, evidence, out)
        i = j
    return out


def _chain_marginals(
    segs: list[Segment],
    i0: int,
    i1: int,
    evidence: PassageEvidence,
    out: list[NDArray[np.float64]],
) -> None:
    """Fill ``out[i0:i1]`` for the chain of segments ``i0 .. i1 - 1`` (all with candidates)."""
    trans = {
        i: evidence.at(i, _hops(segs[i - 1], last=True), _hops(segs[i], last=False))
        for i in range(i0 + 1, i1)
    }
    entry = evidence.at(i0, _NONE, _hops(segs[i0], last=False))[0]
    exit_ = evidence.at(i1, _hops(segs[i1 - 1], last=True), _NONE)[:, 0]
    fwd = {i0: entry + segs[i0].loglik}
    for i in range(i0 + 1, i1):
        fwd[i] = _logsumexp(fwd[i - 1][:, None] + trans[i], axis=0) + segs[i].loglik
    bwd = {i1 - 1: exit_}
    for i in range(i1 - 1, i0, -1):
        bwd[i - 1] = _logsumexp(trans[i] + (segs[i].loglik + bwd[i])[None, :], axis=1)
    for i in range(i0, i1):
        total = fwd[i] + bwd[i]
        out[i] = total - _logsumexp(total[:, None], axis=0)[0]


def _close(
    segs: list[Segment], delta: NDArray[np.float64], last: int, evidence: PassageEvidence
) -> NDArray[np.float64]:
    """Add the evidence at the passage that ends a chain (only its arrival is known)."""
    if delta.size == 0 or last < 0:
        return delta
    return delta + evidence.at(last + 1, _hops(segs[last], last=True), _NONE)[:, 0]


def _backtrack(
    segs: list[Segment],
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


def _hops(seg: Segment, *, last: bool) -> NDArray[np.int64]:
    """Each candidate's node next to its end (``last``) or start passage; -1 for none."""
    return np.array([_hop(c.last_hop if last else c.first_hop) for c in seg.cands], np.int64)


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
