"""Learn each reader's miss rate from the passages themselves (no ground truth needed).

Path choice weighs every reader a candidate path passes without hearing the tag by that
reader's miss rate (:mod:`track_engine.paths`). The registry's figure is a survey or a default,
and readers change: an antenna is knocked askew, a bus shelter goes up, a reader goes deaf and
still sends heartbeats. A reader that misses 90% of tags while the registry says 30% makes
the engine route every bike *around* it, wrongly.

The passages say how well each reader hears. On a continuous ride (consecutive passages close
enough in time for the road between them), every reader the bike passed in between either
heard it — an *interior* passage — or missed it. Which readers were passed silently is not
known, only probable: each segment's candidate paths have posterior probabilities
(:meth:`track_engine.paths.NegativeEvidenceChooser.posteriors`), so a reader's expected silent
passes are the summed probabilities of the candidates that cross it.

Per reader, two hypotheses are weighed by how well they explain its ``heard`` and ``silent``
counts (Beta-binomial evidence): *as registered* — its rate is near the registry's figure
(a Beta prior worth ``prior_passes`` passes there) — or *changed* (a uniform prior), which is
believed of ``changed_share`` of readers before any evidence. The learned rate is the
posterior mean under the more probable of the two. A reader that hears about as registered
keeps about its registry figure (the sampling noise of a few dozen passes does not move it),
while one whose counts the registry cannot explain — a deaf reader — gets what its counts
say. The posteriors themselves depend on the rates, so this is iterated
(expectation-maximisation; four rounds settle it).

Both counts are over the same kind of pass — one strictly inside a continuous ride — so they
are comparable: passes at a ride's first or last passage are not counted, because a miss there
could not be seen. Segments across a pause (parking, a long gap) are left out: the bike may
have gone anywhere. That test is made per observed segment, whose time allowance grows with
its length, so a ride with a stop stays "continuous" a little more often when a reader in it
was missed: measured in review on a straight road with stops of 0–600 s, a true 0.30 was
learned as 0.29–0.34 (slightly high, never enough to look deaf).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import betaln, expit

from track_engine.paths import NegativeEvidenceChooser
from track_engine.roads import NoPathError, ReaderPaths

__all__ = ["ReaderMissRate", "Track", "learn_miss_rates", "tracks_from_passages"]

_US_PER_S = 1_000_000
# The learned rate is kept inside these bounds: 0 would make a reader's silence proof, and 1
# would make it no evidence at all even when it comes back to life.
_MIN_RATE = 0.01
_MAX_RATE = 0.99


@dataclass(frozen=True, slots=True)
class Track:
    """One tag's passages in time order: readers, closest-approach times, directions."""

    readers: tuple[str, ...]
    times_us: tuple[int, ...]
    directions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReaderMissRate:
    """What the passages say about one reader.

    ``heard``: interior passages (the tag was heard here with a continuous ride on both
    sides); ``silent``: expected passes without a passage (a sum of posterior
    probabilities); ``miss_rate``: the posterior mean, ``prior`` (the registry's figure)
    when there is no evidence; ``p_changed``: the posterior probability that the reader no
    longer hears as registered.
    """

    reader_id: str
    miss_rate: float
    heard: int
    silent: float
    prior: float
    p_changed: float

    @property
    def passes(self) -> float:
        """Expected passes of a tag during a continuous ride (heard or not)."""
        return self.heard + self.silent


def tracks_from_passages(passages: pd.DataFrame) -> list[Track]:
    """Every tag's passages (``track_engine.passages.PASSAGE_COLUMNS``) as a Track."""
    if passages.empty:
        return []
    ordered = passages.sort_values(["tag_id", "closest_at_us", "reader_id"], kind="mergesort")
    directions = ordered["direction"].fillna("").astype(str)
    out: list[Track] = []
    for _, idx in ordered.groupby("tag_id", sort=False).indices.items():
        out.append(
            Track(
                readers=tuple(ordered["reader_id"].iloc[idx].astype(str)),
                times_us=tuple(int(t) for t in ordered["closest_at_us"].iloc[idx]),
                directions=tuple(directions.iloc[idx]),
            )
        )
    return out


def learn_miss_rates(
    tracks: Iterable[Track],
    reader_paths: ReaderPaths,
    *,
    chooser: NegativeEvidenceChooser | None = None,
    prior_passes: float = 50.0,
    changed_share: float = 0.05,
    iterations: int = 4,
    min_speed_mps: float = 1.5,
    max_pause_s: float = 120.0,
) -> dict[str, ReaderMissRate]:
    """Every reader's miss rate learned from ``tracks``, starting from ``reader_paths``'s.

    ``reader_paths.miss_rate`` is the prior (the registry's figures). A segment counts as a
    continuous ride when its time is at most the shortest road distance at ``min_speed_mps``
    plus ``max_pause_s`` (a red light or two). Returns an entry for every reader of
    ``reader_paths``.
    """
    chooser = chooser or NegativeEvidenceChooser()
    if iterations < 1:
        raise ValueError("iterations must be at least 1")
    if prior_passes <= 0.0 or not 0.0 <= changed_share <= 1.0:
        raise ValueError("prior_passes must be positive and changed_share within [0, 1]")
    tracks = list(tracks)
    prior = {r: reader_paths.miss_rate_of(r) for r in reader_paths.reader_ids}
    current = reader_paths
    learned: dict[str, ReaderMissRate] = {}
    for _ in range(iterations):
        heard, silent = _expected_passes(
            tracks, current, chooser, min_speed_mps=min_speed_mps, max_pause_s=max_pause_s
        )
        learned = {
            r: _posterior(r, heard.get(r, 0), silent.get(r, 0.0), p, prior_passes, changed_share)
            for r, p in prior.items()
        }
        current = dataclasses.replace(
            reader_paths, miss_rate={r: e.miss_rate for r, e in learned.items()}
        )
    return learned


def _posterior(
    reader: str,
    heard: int,
    silent: float,
    prior: float,
    prior_passes: float,
    changed_share: float,
) -> ReaderMissRate:
    """The rate under the more probable of "as registered" and "changed" (module docstring)."""
    p = min(max(prior, _MIN_RATE), _MAX_RATE)
    a, b = prior_passes * p, prior_passes * (1.0 - p)
    as_registered = (silent + a) / (silent + heard + prior_passes)
    changed = (silent + 1.0) / (silent + heard + 2.0)
    if changed_share in (0.0, 1.0):
        w = changed_share
    else:
        # Log evidence of each hypothesis for the counts (the binomial coefficient cancels).
        log_registered = betaln(silent + a, heard + b) - betaln(a, b)
        log_changed = betaln(silent + 1.0, heard + 1.0)
        odds = math.log(changed_share / (1.0 - changed_share)) + log_changed - log_registered
        w = float(expit(odds))
    # The more probable hypothesis decides (averaging would pull every reader without
    # evidence a little towards 50%).
    rate = changed if w > 0.5 else as_registered
    return ReaderMissRate(
        reader, min(max(rate, _MIN_RATE), _MAX_RATE), heard, silent, prior, round(w, 4)
    )


def _expected_passes(
    tracks: Sequence[Track],
    reader_paths: ReaderPaths,
    chooser: NegativeEvidenceChooser,
    *,
    min_speed_mps: float,
    max_pause_s: float,
) -> tuple[dict[str, int], dict[str, float]]:
    """Interior passages heard, and expected silent passes, per reader."""
    max_speed = chooser.model.max_speed_mps
    heard: dict[str, int] = defaultdict(int)
    silent: dict[str, float] = defaultdict(float)
    rides: list[tuple[Track, list[bool]]] = []
    co_located: dict[int, list[str]] = defaultdict(list)  # node -> the readers standing there
    for reader, node in reader_paths.reader_node.items():
        co_located[node].append(reader)
    for track in tracks:
        n = len(track.readers)
        if n < 2:
            continue
        continuous = [
            _continuous(reader_paths, track, i, min_speed_mps, max_pause_s, max_speed)
            for i in range(n - 1)
        ]
        _count_visits(track, continuous, reader_paths, co_located, heard, silent)
        if not any(continuous):
            continue
        rides.append((track, continuous))
    _build_candidates_by_source(rides, reader_paths, chooser)
    for track, continuous in rides:
        posteriors = chooser.posteriors(
            track.readers, track.times_us, track.directions, reader_paths
        )
        for (cands, prob), ok in zip(posteriors, continuous, strict=True):
            if not ok or not cands:
                continue
            for cand, p in zip(cands, prob.tolist(), strict=True):
                for reader in cand.missed_readers:
                    silent[reader] += p
    return heard, silent


def _count_visits(
    track: Track,
    continuous: list[bool],
    reader_paths: ReaderPaths,
    co_located: dict[int, list[str]],
    heard: dict[str, int],
    silent: dict[str, float],
) -> None:
    """Count the passes at the track's interior visits of reader nodes.

    A visit is a run of consecutive passages at one node: a long stop folded into two
    passages of one reader, or the passages of several readers standing on the same node. A
    visit inside a continuous ride is one pass for every reader on that node: heard by those
    with a passage in it, missed by the others (path candidates leave the readers on a
    segment's end nodes out, so those misses are counted here).
    """
    node_of = reader_paths.reader_node
    n = len(track.readers)
    start = 0
    while start < n:
        node = node_of[track.readers[start]]
        end = start
        while end + 1 < n and node_of[track.readers[end + 1]] == node:
            end += 1
        inside = start > 0 and end < n - 1 and all(continuous[start - 1 : end + 1])
        if inside:
            present = set(track.readers[start : end + 1])
            for reader in co_located[node]:
                if reader in present:
                    heard[reader] += 1
                else:
                    silent[reader] += 1.0
        start = end + 1


def _build_candidates_by_source(
    rides: Sequence[tuple[Track, list[bool]]],
    reader_paths: ReaderPaths,
    chooser: NegativeEvidenceChooser,
) -> None:
    """Build the candidate paths of every reader pair the rides need, source by source.

    A city's shortest-path trees do not all fit the candidate index's cache; taken in track
    order, pairs from many sources would evict and recompute each other's trees. Sorted by
    source, each source's trees are computed once per round.
    """
    index = chooser.candidates_for(reader_paths)
    # Every segment of a ride's track, not only the continuous ones: its posteriors are
    # computed over the whole track.
    pairs = {
        (track.readers[i], track.readers[i + 1])
        for track, _ in rides
        for i in range(len(track.readers) - 1)
    }
    node = reader_paths.reader_node
    for a, b in sorted(pairs, key=lambda p: (node[p[0]], p[1])):
        with contextlib.suppress(NoPathError):  # the route shows such a segment as undrawn
            index.candidates(a, b)


def _continuous(
    reader_paths: ReaderPaths,
    track: Track,
    i: int,
    min_speed_mps: float,
    max_pause_s: float,
    max_speed_mps: float,
) -> bool:
    """Whether segment ``i`` of ``track`` is a ride without a pause (or an impossible move)."""
    dt_s = (track.times_us[i + 1] - track.times_us[i]) / _US_PER_S
    distance = reader_paths.distance_m(track.readers[i], track.readers[i + 1])
    if not np.isfinite(distance) or dt_s <= 0.0:
        return False
    return distance / dt_s <= max_speed_mps and dt_s <= distance / min_speed_mps + max_pause_s
