"""The next-readers answer: the road model blended with the fleet's transitions, and ETA
windows from the fleet's travel times (pure: the counts come from the caller, no SQL).

The probabilities are a chain of Dirichlet-smoothed estimates, each the prior of the next:

1. the road model given the heading (:func:`track_engine.intercept.next_readers_by_model`);
2. where tags that passed this reader went next: ``(n(x) + a1 p1(x)) / (N + a1)``;
3. where tags that came from the same previous reader went next (the bike's heading as the
   fleet rides it), smoothed towards 2 by ``a2``;
4. where this tag itself went next from here (its habits), smoothed towards 3 by ``a3``.

A level with no counts leaves its prior as it is, so a new reader is the road model and a busy
one its history. The ETA window of a pair ridden often enough is the fleet's 10th to 90th
percentile of travel time, widened; otherwise the road distance at the e-bike speed range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from track_engine.intercept import Intercept
from track_engine.where_now import SpeedModel


@dataclass(frozen=True, slots=True)
class TravelTimes:
    """The fleet's travel times from this reader to one next reader (seconds)."""

    count: int
    p10_s: float
    p50_s: float
    p90_s: float


@dataclass(frozen=True)
class Departures:
    """What the history says about leaving one reader: ``fleet`` (next reader -> departures
    of every tag), ``heading`` (the same, of tags that came from ``previous_reader``, the
    bike's previous one: "" when unknown), ``own`` (the same, of the bike's own tag) and the
    fleet's ``travel`` times by next reader."""

    previous_reader: str = ""
    fleet: Mapping[str, int] = field(default_factory=dict)
    heading: Mapping[str, int] = field(default_factory=dict)
    own: Mapping[str, int] = field(default_factory=dict)
    travel: Mapping[str, TravelTimes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Blend:
    """Pseudo-counts of each level's prior (see the module docstring); 0 turns a level off."""

    road: float = 3.0
    fleet: float = 10.0
    own: float = 3.0
    # With the bike's previous reader known, leave the fleet's departures of every heading
    # out: those that came the same way are smoothed towards the road model given the heading
    # (measured: the departures of every heading pulled the answer towards the way back).
    heading_only: bool = True


@dataclass(frozen=True, slots=True)
class EtaWindow:
    """How ETA windows are drawn: from ``min_count`` rides of the pair on, the fleet's
    10th-90th percentile scaled by ``widen_low`` / ``widen_high``; else the road distance at
    the speed range; ``slack_s`` more either side. The typical travel time is the fleet's
    median, else the distance at ``typical_mps``. The defaults were chosen on the accuracy
    bench (docs/accuracy.md, "Intercept"): the narrowest window compared that held 80%."""

    min_count: int = 10
    widen_low: float = 0.9
    widen_high: float = 1.1
    speeds: SpeedModel = field(default_factory=SpeedModel)
    typical_mps: float = 4.5  # the simulator's riders' 10-25 km/h, as the earlier answer
    # Seconds added either side: a stop at a junction or a passage time's error matters most
    # between readers close together.
    slack_s: float = 10.0

    def window_s(self, distance_m: float, travel: TravelTimes | None) -> tuple[float, float]:
        """(earliest, latest) seconds after the sighting (the fleet's, however few, when the
        road distance is unknown)."""
        known = math.isfinite(distance_m)
        if travel is not None and (travel.count >= self.min_count or not known):
            lo, hi = travel.p10_s * self.widen_low, travel.p90_s * self.widen_high
        else:
            lo = distance_m / (self.speeds.max_kmh / 3.6)
            hi = distance_m / (self.speeds.min_kmh / 3.6)
        return max(lo - self.slack_s, 0.0), hi + self.slack_s


@dataclass(frozen=True, slots=True)
class Predicted:
    """One reader of the answer: probability, road distance, the ETA window (seconds after
    the sighting), a typical travel time, and what the probability rests on (``history``:
    departures seen to it, more of them in all than the road's pseudo-count; ``road``: the
    road model)."""

    reader_id: str
    probability: float
    distance_m: float
    eta_from_s: float
    eta_to_s: float
    travel_s: float
    source: str


def blend_next_readers(
    road: list[Intercept],
    history: Departures,
    distance_m: Mapping[str, float],
    *,
    blend: Blend | None = None,
    window: EtaWindow | None = None,
    limit: int | None = 3,
) -> list[Predicted]:
    """The likeliest next readers, most probable first. ``road``: the road model's full list
    (``limit=None``); ``distance_m``: road distance to each reader the history names (NaN or
    missing when unknown)."""
    mix = blend or Blend()
    win = window or EtaWindow()
    p = {i.reader_id: i.probability for i in road}
    levels = [(history.fleet, mix.road), (history.heading, mix.fleet), (history.own, mix.own)]
    if mix.heading_only and history.previous_reader:
        levels = levels[1:]
    for counts, strength in levels:
        p = _smooth(counts, p, strength)
    # The history outweighs the road model once the levels used hold more departures than the
    # road's pseudo-count: then a reader they name rests on it.
    counted = sum(sum(c.values()) for c, _ in levels) >= mix.road
    named = {r for c, _ in levels for r, n in c.items() if n > 0}
    dist = {i.reader_id: i.distance_m for i in road} | dict(distance_m)
    ranked = sorted(p.items(), key=lambda kv: (-kv[1], dist.get(kv[0], float("inf"))))
    out: list[Predicted] = []
    for reader, prob in ranked if limit is None else ranked[:limit]:
        d = float(dist.get(reader, float("nan")))
        travel = history.travel.get(reader)
        lo, hi = win.window_s(d, travel)
        typical = travel.p50_s if travel is not None else d / win.typical_mps
        if not (math.isfinite(lo) and math.isfinite(hi)):
            continue  # neither a road distance nor a ride: no time to give
        source = "history" if counted and reader in named else "road"
        out.append(Predicted(reader, float(prob), d, float(lo), float(hi), float(typical), source))
    return out


def _smooth(
    counts: Mapping[str, int], prior: Mapping[str, float], strength: float
) -> dict[str, float]:
    """``(n(x) + strength * prior(x)) / (N + strength)``; the prior alone without counts."""
    total = float(sum(counts.values()))
    if total <= 0:
        return dict(prior)
    if strength <= 0 or not prior:
        return {r: n / total for r, n in counts.items()}
    keys = set(prior) | set(counts)
    return {r: (counts.get(r, 0) + strength * prior.get(r, 0.0)) / (total + strength) for r in keys}
