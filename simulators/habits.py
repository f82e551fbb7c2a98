"""Riders with habits: the same commute most working days, errands at the weekend.

Without habits every trip draws its own route variant (:mod:`simulators.intentions`). With
:class:`Habits` each rider keeps personal routes: a usual route variant from home to work and
one back, ridden at about the same time every working day (Monday to Friday, local time),
with occasional variation — another variant (``vary_prob``), an errand stop on the way home
(``detour_prob``), a day off (``skip_prob``). Riders who do not commute, and everyone at the
weekend, make a few errand outings from home instead. All riders also share
:class:`simulators.preferences.RoutePreferences`, applied by the router.

Every draw is keyed by (bike, local day, slot) through :mod:`simulators.keyed_random`, so a
rider's week is the same whatever the window, chunking or fleet size around it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from citymap.network import City
from simulators.keyed_random import KeyedRandom
from simulators.preferences import RoutePreferences

_DAY_US = 86_400_000_000
_H_US = 3_600_000_000
_MAX_OUTINGS = 4  # errand outings a day at most (one per 3-hour slot from 09:00)
# Keyed-random streams, one per draw site.
_S_COMMUTER, _S_DEPART, _S_RETURN, _S_USUAL_OUT, _S_USUAL_BACK = 401, 402, 403, 404, 405
_S_SKIP, _S_JITTER, _S_VARY, _S_OTHER, _S_DETOUR = 406, 407, 408, 409, 410
_S_OUTINGS, _S_OUT_AT, _S_STAY, _S_AIM_D, _S_AIM_A, _S_ERRAND_VAR = 411, 412, 413, 414, 415, 416
_S_EVENING = 417
_SLOT_OUT, _SLOT_BACK, _SLOT_STOP = 100, 101, 102  # slot keys of the commute's draws


@dataclass(frozen=True)
class Habits:
    """How riders keep to their routes (probabilities per rider and working day)."""

    commuter_share: float = 0.85  # riders who ride to work on working days
    vary_prob: float = 0.1  # a commute leg takes another route variant than the usual
    detour_prob: float = 0.08  # the way home makes an errand stop
    skip_prob: float = 0.05  # a working day without the commute
    evening_errand_prob: float = 0.25  # a commuter goes out again in the evening
    weekend_outings: float = 0.8  # mean errand outings a weekend day (and a non-commuter's day)
    preferences: RoutePreferences | None = field(default_factory=RoutePreferences)

    def __post_init__(self) -> None:
        probs = (self.commuter_share, self.vary_prob, self.detour_prob, self.skip_prob,
                 self.evening_errand_prob)  # fmt: skip
        if not all(0.0 <= p <= 1.0 for p in probs) or self.weekend_outings < 0:
            raise ValueError("habit probabilities must be in [0, 1], weekend_outings >= 0")


@dataclass(frozen=True, eq=False)
class HabitTrips:
    """Trip intentions sorted by (bike, wanted start) and each bike's start node."""

    bike: NDArray[np.int64]
    t: NDArray[np.int64]
    src: NDArray[np.int64]
    dst: NDArray[np.int64]
    kind: NDArray[np.object_]
    variant: NDArray[np.int64]
    initial: NDArray[np.int64]


def local_day(t_us: int | NDArray[np.int64], offset_h: float) -> NDArray[np.int64]:
    """Local day number (days since 1970-01-01 local) of UTC microseconds ``t_us``."""
    return np.asarray((np.asarray(t_us) + round(offset_h * _H_US)) // _DAY_US, np.int64)


def is_weekend(day: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Saturday or Sunday (day 0, 1970-01-01, was a Thursday)."""
    return np.asarray((day + 3) % 7 >= 5, bool)


class _Trips:
    """Rows collected day by day, concatenated once."""

    def __init__(self) -> None:
        self.parts: list[tuple[NDArray[np.int64], ...]] = []
        self.kinds: list[NDArray[np.object_]] = []

    def add(self, kind: str, *cols: NDArray[np.int64]) -> None:
        b = cols[0]
        self.parts.append(tuple(np.asarray(c, np.int64) for c in cols))
        self.kinds.append(np.full(len(b), kind, dtype=object))


def habit_intentions(
    city: City,
    home: NDArray[np.int64],
    work: NDArray[np.int64],
    *,
    seed: int,
    start_us: int,
    end_us: int,
    habits: Habits,
    variants: int,
    offset_h: float,
) -> HabitTrips:
    """Every rider's trips over ``[start_us, end_us)`` following ``habits`` (see module)."""
    rand = KeyedRandom(seed)
    n = len(home)
    bikes = np.arange(n, dtype=np.int64)
    rider = _Riders(city, rand, home, work, habits, variants)
    trips = _Trips()
    first, last = int(local_day(start_us, offset_h)), int(local_day(end_us, offset_h))
    for day in range(first, last + 1):
        midnight = day * _DAY_US - round(offset_h * _H_US)
        works = ~is_weekend(np.array(day)) & rider.commuter
        if works.any():
            rider.commute(trips, bikes[works], day, midnight)
        rider.outings(trips, bikes[~works], day, midnight, habits.weekend_outings)
    return _assemble(trips, home, start_us, end_us)


class _Riders:
    """Per-rider constants (keyed by bike) and the day's trips drawn from them."""

    def __init__(
        self,
        city: City,
        rand: KeyedRandom,
        home: NDArray[np.int64],
        work: NDArray[np.int64],
        habits: Habits,
        variants: int,
    ) -> None:
        self.city, self.rand, self.home, self.work = city, rand, home, work
        self.habits, self.variants = habits, variants
        b = np.arange(len(home), dtype=np.int64)
        self.commuter = rand.uniform(_S_COMMUTER, b) < habits.commuter_share
        self.depart_h = np.clip(7.8 + 0.5 * rand.normal(_S_DEPART, b), 6.0, 10.0)
        self.return_h = np.clip(17.8 + 0.7 * rand.normal(_S_RETURN, b), 15.5, 21.0)
        self.usual_out = rand.integers(_S_USUAL_OUT, 0, variants, b)
        self.usual_back = rand.integers(_S_USUAL_BACK, 0, variants, b)
        self.errand_nodes = np.flatnonzero(city.node_kind == "junction")
        self.tree = cKDTree(city.node_xy_m[self.errand_nodes])

    def _variant(
        self, usual: NDArray[np.int64], b: NDArray[np.int64], day: int, slot: int
    ) -> NDArray[np.int64]:
        """The usual variant, or (``vary_prob``) one of the others."""
        vary = self.rand.uniform(_S_VARY, b, day, slot) < self.habits.vary_prob
        if self.variants < 2:
            return usual
        other = (usual + 1 + self.rand.integers(_S_OTHER, 0, self.variants - 1, b, day, slot)) % (
            self.variants
        )
        return np.where(vary, other, usual)

    def _errand_near(
        self, at: NDArray[np.float64], b: NDArray[np.int64], day: int, slot: int
    ) -> NDArray[np.int64]:
        """A junction 300-2500 m from ``at`` in a keyed direction."""
        dist = 300.0 + 2200.0 * self.rand.uniform(_S_AIM_D, b, day, slot)
        ang = 2.0 * np.pi * self.rand.uniform(_S_AIM_A, b, day, slot)
        aim = at + dist[:, None] * np.stack([np.sin(ang), np.cos(ang)], 1)
        nearest: NDArray[np.int64] = np.asarray(self.tree.query(aim)[1], np.int64)
        return np.asarray(self.errand_nodes[nearest], np.int64)

    def _at(self, midnight: int, hours: NDArray[np.float64]) -> NDArray[np.int64]:
        return midnight + np.round(hours * _H_US).astype(np.int64)

    def commute(self, trips: _Trips, b: NDArray[np.int64], day: int, midnight: int) -> None:
        """Home to work and back (unless skipped), sometimes with an errand stop, plus an
        occasional evening outing."""
        r = self.rand
        b = b[r.uniform(_S_SKIP, b, day) >= self.habits.skip_prob]
        home, work = self.home[b], self.work[b]
        jitter = 0.12 * r.normal(_S_JITTER, b, day, _SLOT_OUT)
        out_at = self._at(midnight, self.depart_h[b] + jitter)
        trips.add("commute", b, out_at, home, work,
                  self._variant(self.usual_out[b], b, day, _SLOT_OUT))  # fmt: skip
        back_h = self.return_h[b] + 0.15 * r.normal(_S_JITTER, b, day, _SLOT_BACK)
        back_at = self._at(midnight, back_h)
        stop = r.uniform(_S_DETOUR, b, day) < self.habits.detour_prob
        straight = ~stop
        trips.add("commute", b[straight], back_at[straight], work[straight], home[straight],
                  self._variant(self.usual_back[b], b, day, _SLOT_BACK)[straight])  # fmt: skip
        if stop.any():
            s = b[stop]
            mid = (self.city.node_xy_m[work[stop]] + self.city.node_xy_m[home[stop]]) / 2.0
            shop = self._errand_near(mid, s, day, _SLOT_STOP)
            var = r.integers(_S_ERRAND_VAR, 0, self.variants, s, day, _SLOT_STOP)
            trips.add("errand", s, back_at[stop], work[stop], shop, var)
            trips.add("errand", s, back_at[stop] + 1, shop, home[stop], var)  # right after
        evening = b[r.uniform(_S_EVENING, b, day) < self.habits.evening_errand_prob]
        later = self.return_h[evening] + 1.0 + 1.5 * r.uniform(_S_OUT_AT, evening, day, 0)
        self._outing(trips, evening, day, 0, self._at(midnight, later))

    def outings(
        self, trips: _Trips, b: NDArray[np.int64], day: int, midnight: int, mean: float
    ) -> None:
        """Errand outings from home, one per 3-hour slot from 09:00, ``mean`` a day."""
        count = self.rand.poisson(_S_OUTINGS, mean, b, day)
        for slot in range(1, _MAX_OUTINGS + 1):
            go = b[count >= slot]
            hour = 9.0 + 3.0 * (slot - 1) + 2.0 * self.rand.uniform(_S_OUT_AT, go, day, slot)
            self._outing(trips, go, day, slot, self._at(midnight, hour))

    def _outing(
        self, trips: _Trips, b: NDArray[np.int64], day: int, slot: int, at: NDArray[np.int64]
    ) -> None:
        """Home to an errand and back after a 20-60 minute stay."""
        if not len(b):
            return
        home = self.home[b]
        shop = self._errand_near(self.city.node_xy_m[home], b, day, slot)
        stay = np.round((20.0 + 40.0 * self.rand.uniform(_S_STAY, b, day, slot)) * 60e6)
        var = self.rand.integers(_S_ERRAND_VAR, 0, self.variants, b, day, slot)
        trips.add("errand", b, at, home, shop, var)
        trips.add("errand", b, at + stay.astype(np.int64), shop, home, var)


def _assemble(trips: _Trips, home: NDArray[np.int64], start_us: int, end_us: int) -> HabitTrips:
    """Rows inside the window, sorted by (bike, time), and where each bike starts."""
    if trips.parts:
        b, t, src, dst, var = (np.concatenate(c) for c in zip(*trips.parts, strict=True))
        kind = np.concatenate(trips.kinds)
    else:
        b = t = src = dst = var = np.empty(0, np.int64)
        kind = np.empty(0, object)
    keep = (t >= start_us) & (t < end_us) & (src != dst)
    b, t, src, dst, var, kind = b[keep], t[keep], src[keep], dst[keep], var[keep], kind[keep]
    order = np.lexsort((t, b))
    b, t, src, dst, var, kind = (c[order] for c in (b, t, src, dst, var, kind))
    initial = home.astype(np.int64).copy()
    firsts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]]) if len(b) else np.empty(0, np.int64)
    initial[b[firsts]] = src[firsts]  # a window opening mid-day finds the bike where it is
    return HabitTrips(b, t, src, dst, kind, var, initial)
