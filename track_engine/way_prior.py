"""How the ways between two readers are ridden: a prior for path choice, learned from passages.

Between two consecutive sightings at readers ``a`` and ``b`` several ways often fit the evidence
equally well. The fleet rides them unequally (the cycleway, the better bridge), and tags heard
at *more* readers on the way say which: a ride heard at ``a``, ``x``, ``y``, ``b`` went from
``a`` to ``b`` by a way passing ``x`` then ``y``. A way is known here by that sequence of readers
it passes between its ends (its *via*, :attr:`track_engine.path_candidates.Candidate.missed_readers`
for a candidate): the readers are what pins a way down; two ways passing the same readers (or
none) are one class to this prior and are told apart by the other terms of the path model.

Learning (:func:`learn_way_prior`) counts, for every ride and every pair of its passages at most
``max_via + 1`` apart, the readers heard in between. Those counts are biased: a reader on the
way misses the tag with its miss rate, so a ride by ``x`` is sometimes seen as a ride by no
reader at all. Per reader pair, the way frequencies are therefore the maximum-likelihood mixture
(EM) in which a ride by via ``S`` is seen as via ``V`` (a subsequence of ``S``) with probability
``prod(1 - m, V) * prod(m, S - V)``.

Use (:meth:`WayPrior.loglik`): each candidate's score gets ``weight * log p(via)``, with
``p(via) = (rides(via) + pseudo) / (rides(pair) + pseudo * ways)`` over the ``ways`` distinct
vias among that pair's candidates. A pair the prior has never seen gets 0 for every candidate,
so path choice is then exactly what it is without a prior.

A *personal* prior is the same learning over one tag's own rides
(:func:`learn_personal_prior`, bounded: only a tag with ``MIN_PERSONAL_RIDES`` rides in the
window, only pairs it rode ``MIN_PAIR_RIDES`` times); path choice adds it to the fleet's,
one own ride weighing ``PERSONAL_SHARE`` of the fleet's (:meth:`WayPrior.combined`).

Pure: no database; the jobs that learn and store them are :mod:`track_engine.db.way_priors`
and :mod:`track_engine.db.personal_priors`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "MIN_PAIR_RIDES",
    "MIN_PERSONAL_RIDES",
    "PERSONAL_SHARE",
    "Ride",
    "WayPrior",
    "learn_personal_prior",
    "learn_way_prior",
    "observed_ways",
    "rides_of",
]

Via = tuple[str, ...]
Pair = tuple[str, str]

PERSONAL_SHARE = 5.0  # one of the tag's own rides weighs like this many of the fleet's
MIN_PERSONAL_RIDES = 3  # fewer rides in the window: no personal prior (not a habit yet)
# Pairs kept per tag: 1 keeps every pair of a tag with enough rides. Measured: requiring 2
# lost 0.004-0.007 of recall (docs/accuracy.md, "Priors"); the window bounds the storage.
MIN_PAIR_RIDES = 1


@dataclass(frozen=True)
class Ride:
    """One tag's passages in time order (readers and closest-approach times, UTC µs)."""

    readers: tuple[str, ...]
    times_us: tuple[int, ...]


@dataclass(frozen=True)
class WayPrior:
    """Estimated rides of each way (by via) between each ordered reader pair.

    ``weight`` scales the log prior (1: a plain Bayesian prior); ``pseudo`` is the rides every
    way of a seen pair is granted (smoothing: a way never ridden stays possible).
    """

    rides: Mapping[Pair, Mapping[Via, float]] = field(default_factory=dict)
    weight: float = 1.0
    pseudo: float = 1.0

    def __bool__(self) -> bool:
        return bool(self.rides)

    def loglik(self, a: str, b: str, via: Via, vias: Iterable[Via]) -> float:
        """Log prior of the way by ``via`` from ``a`` to ``b`` among the ways ``vias`` (the
        vias of every candidate of the pair); 0 when the pair was never seen."""
        seen = self.rides.get((a, b))
        if not seen:
            return 0.0
        ways = set(vias) | {via}
        total = sum(seen.get(v, 0.0) for v in ways)
        if total <= 0.0:
            return 0.0
        p = (seen.get(via, 0.0) + self.pseudo) / (total + self.pseudo * len(ways))
        return self.weight * math.log(p)

    def logliks(self, a: str, b: str, vias: Sequence[Via]) -> list[float]:
        """:meth:`loglik` of every way of ``vias`` (one per candidate of the pair), at once."""
        seen = self.rides.get((a, b))
        if not seen:
            return [0.0] * len(vias)
        ways = set(vias)
        total = sum(seen.get(v, 0.0) for v in ways)
        if total <= 0.0:
            return [0.0] * len(vias)
        norm = math.log(total + self.pseudo * len(ways))
        return [self.weight * (math.log(seen.get(v, 0.0) + self.pseudo) - norm) for v in vias]

    def combined(self, other: WayPrior, other_share: float = 1.0) -> WayPrior:
        """This prior's rides plus ``other_share`` times ``other``'s (e.g. fleet + personal).

        A view, not a copy: a route lookup combines the whole fleet's prior with one tag's
        few pairs, and only the pairs it looks up are summed."""
        if not other:
            return self
        return WayPrior(_SumOfRides(self.rides, other.rides, other_share), self.weight, self.pseudo)


class _SumOfRides(Mapping[Pair, Mapping[Via, float]]):
    """``base`` plus ``share`` times ``extra``, pair by pair, summed when looked up."""

    def __init__(
        self,
        base: Mapping[Pair, Mapping[Via, float]],
        extra: Mapping[Pair, Mapping[Via, float]],
        share: float,
    ) -> None:
        self._base, self._extra, self._share = base, extra, share

    def __getitem__(self, pair: Pair) -> Mapping[Via, float]:
        mine = self._extra.get(pair)
        if mine is None:
            return self._base[pair]
        out = dict(self._base.get(pair, {}))
        for via, n in mine.items():
            out[via] = out.get(via, 0.0) + self._share * n
        return out

    def __iter__(self) -> Iterator[Pair]:
        yield from self._base
        yield from (p for p in self._extra if p not in self._base)

    def __len__(self) -> int:
        return len(self._base) + sum(1 for p in self._extra if p not in self._base)


def rides_of(
    readers: Sequence[str], times_us: Sequence[int], *, max_gap_s: float = 300.0
) -> list[Ride]:
    """One tag's passages cut into rides at silences longer than ``max_gap_s`` (parked), with
    repeated passages at the same reader folded into one."""
    out: list[Ride] = []
    cur_r: list[str] = []
    cur_t: list[int] = []
    for r, t in zip(readers, times_us, strict=True):
        if cur_t and (t - cur_t[-1]) / 1e6 > max_gap_s:
            if len(cur_r) > 1:
                out.append(Ride(tuple(cur_r), tuple(cur_t)))
            cur_r, cur_t = [], []
        if cur_r and cur_r[-1] == r:
            cur_t[-1] = t
            continue
        cur_r.append(r)
        cur_t.append(t)
    if len(cur_r) > 1:
        out.append(Ride(tuple(cur_r), tuple(cur_t)))
    return out


def observed_ways(rides: Iterable[Ride], *, max_via: int = 4) -> dict[Pair, dict[Via, int]]:
    """Per ordered reader pair, how many rides were heard at each sequence of readers between
    (pairs of passages at most ``max_via + 1`` apart within a ride; a pair whose readers
    repeat inside the span is not a way between two readers and is skipped)."""
    out: dict[Pair, dict[Via, int]] = defaultdict(lambda: defaultdict(int))
    for ride in rides:
        rs = ride.readers
        for i in range(len(rs) - 1):
            for j in range(i + 1, min(len(rs), i + max_via + 2)):
                span = rs[i : j + 1]
                if len(set(span)) != len(span):
                    break  # a loop back to a reader already in the span
                out[(rs[i], rs[j])][tuple(rs[i + 1 : j])] += 1
    return {p: dict(w) for p, w in out.items()}


def learn_way_prior(
    rides: Iterable[Ride],
    miss_rate_of: Callable[[str], float],
    *,
    max_via: int = 4,
    iterations: int = 30,
    weight: float = 1.0,
    pseudo: float = 1.0,
) -> WayPrior:
    """The way frequencies of every reader pair, corrected for readers that missed the tag
    (see the module docstring)."""
    observed = observed_ways(rides, max_via=max_via)
    rides_by_pair = {
        pair: _unmix(seen, miss_rate_of, iterations) for pair, seen in observed.items()
    }
    return WayPrior(rides_by_pair, weight=weight, pseudo=pseudo)


def learn_personal_prior(
    rides: Sequence[Ride],
    miss_rate_of: Callable[[str], float],
    *,
    min_rides: int = MIN_PERSONAL_RIDES,
    min_pair_rides: int = MIN_PAIR_RIDES,
    max_via: int = 4,
    iterations: int = 30,
) -> WayPrior:
    """One tag's way prior from its own ``rides``: empty with fewer than ``min_rides`` rides;
    only the pairs it was heard riding ``min_pair_rides`` times or more are kept (a habit,
    and a bound on what is stored per tag)."""
    if len(rides) < min_rides:
        return WayPrior()
    observed = observed_ways(rides, max_via=max_via)
    return WayPrior(
        {
            pair: _unmix(seen, miss_rate_of, iterations)
            for pair, seen in observed.items()
            if sum(seen.values()) >= min_pair_rides
        }
    )


def _unmix(
    seen: Mapping[Via, int], miss_rate_of: Callable[[str], float], iterations: int
) -> dict[Via, float]:
    """EM estimate of the true rides of each via from the vias heard (one reader pair)."""
    ways = list(seen)
    total = float(sum(seen.values()))
    if len(ways) == 1:
        return {ways[0]: total}
    # like[v][s]: probability that a ride by way s is heard as via v.
    like = [[_heard_as(v, s, miss_rate_of) for s in ways] for v in ways]
    share = [1.0 / len(ways)] * len(ways)
    for _ in range(iterations):
        acc = [0.0] * len(ways)
        for vi, v in enumerate(ways):
            row = [share[si] * like[vi][si] for si in range(len(ways))]
            norm = sum(row)
            if norm <= 0.0:
                continue
            for si, x in enumerate(row):
                acc[si] += seen[v] * x / norm
        norm = sum(acc)
        share = [x / norm for x in acc] if norm > 0 else share
    return {s: total * share[si] for si, s in enumerate(ways) if share[si] * total > 1e-6}


def _heard_as(v: Via, s: Via, miss_rate_of: Callable[[str], float]) -> float:
    """Probability that a ride by way ``s`` is heard as ``v`` (0 unless ``v`` is a
    subsequence of ``s``)."""
    p = 1.0
    k = 0
    for r in s:
        m = min(max(miss_rate_of(r), 1e-6), 1.0)
        if k < len(v) and v[k] == r:
            p *= 1.0 - m
            k += 1
        else:
            p *= m
    return p if k == len(v) else 0.0
