"""The day's population before any path is planned: bikes and owners, trip intentions, thefts.

:func:`plan_day` draws everything that couples bikes to each other or is cheap to draw for the
whole city at once, from one generator seeded with ``seed``:

- the fleet (tags, plates, owners, homes and workplaces; ``active_fraction`` of the bikes carry
  an active 2.4 GHz tag; ``clones`` bikes carry a copy of another bike's tag, and *ride*: see
  :func:`_ride_clones`);
- trip *intentions* per bike: start times from a time-of-day rate (morning and evening peaks,
  local time UTC+8, by thinning a Poisson process) and destinations (home -> work in the
  morning, work -> home in the evening, errands nearby otherwise), each trip starting where
  the previous one ended; computed for all bikes at once, one trip rank per step;
- each trip's route variant and each rider's speed; the thefts' victims, times and dice.

Everything after that (paths, timing, positions, reads) is planned per chunk of bikes by
:mod:`simulators.bike_days` from keyed draws, so it does not depend on the chunk size.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from citymap.network import City
from simulators import people
from simulators.habits import Habits, habit_intentions
from simulators.preferences import RoutePreferences

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LOCAL_UTC_OFFSET_H = 8.0
_LAMBDA_MAX_PER_H = 0.7


@dataclass(frozen=True)
class Bike:
    """A registered e-bike and its owner. ``plate`` is ASCII; ``plate_display`` as painted."""

    bike_id: int
    tag_id: str
    plate: str
    plate_display: str
    frame_number: str
    owner_name: str
    owner_phone: str
    home_node: int
    work_node: int
    brand: str
    colour: str
    tag_active: bool = False  # an active 2.4 GHz tag (16 hex digits) instead of a UHF EPC


@dataclass(frozen=True)
class Theft:
    """A theft: when and where, where the bike is taken, and whether the tag is torn off."""

    bike_id: int
    stolen_at: datetime
    from_node: int
    fence_node: int
    by_van: bool
    tag_removed_at: datetime | None
    pickup_node: int | None = None


@dataclass(frozen=True, eq=False)
class Population:
    """Bikes, thefts and trips, plus every trip's true node path and times (``visits``).

    ``trips`` columns: trip_id (int32), bike_id (int32), kind ("commute" | "errand" | "theft" |
    "van"), start_at, end_at (datetime64[us, UTC]), start_us, end_us (int64), from_node,
    to_node (int32), length_m (float64). ``visits``: see
    :func:`simulators.riders.trip_node_times`.
    """

    bikes: list[Bike]
    thefts: list[Theft]
    trips: pd.DataFrame
    visits: pd.DataFrame


def to_us(at: datetime) -> int:
    """Aware datetime to UTC microseconds since the epoch (exact, no float rounding)."""
    if at.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC datetime")
    return (at - EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    """UTC microseconds since the epoch to an aware UTC datetime."""
    return EPOCH + timedelta(microseconds=int(us))


def _trip_rate_per_h(t_us: NDArray[np.int64]) -> NDArray[np.float64]:
    """Trips per bike per hour at UTC time ``t_us``: morning, noon and evening peaks."""
    h = (t_us / 3.6e9 + LOCAL_UTC_OFFSET_H) % 24.0

    def peak(mu: float, sd: float, amp: float) -> NDArray[np.float64]:
        return amp * np.exp(-0.5 * ((h - mu) / sd) ** 2)

    return 0.04 + peak(7.8, 0.7, 0.55) + peak(12.2, 0.8, 0.15) + peak(17.8, 0.9, 0.45)


def _local_hour(t_us: int) -> float:
    return (t_us / 3.6e9 + LOCAL_UTC_OFFSET_H) % 24.0


def _make_bikes(
    city: City, rng: np.random.Generator, count: int, active_fraction: float = 0.0
) -> list[Bike]:
    kinds = city.node_kind
    estates = np.flatnonzero(kinds == "estate")
    campuses = np.flatnonzero(kinds == "campus")
    junctions = np.flatnonzero(kinds == "junction")
    tags = people.tag_ids(rng, count)
    active = np.zeros(count, bool)
    if active_fraction > 0:  # drawn only when asked for, so older seeds keep their bikes
        active = rng.random(count) < active_fraction
        new_ids = people.active_tag_ids(rng, int(active.sum()))
        for i, tag in zip(np.flatnonzero(active).tolist(), new_ids, strict=True):
            tags[i] = tag
    plate, display = people.plates(rng, count)
    frames = people.frame_numbers(rng, count)
    names, phones = people.owners(rng, count)
    brands = people.pick(rng, people.BRANDS, count)
    colours = people.pick(rng, people.COLOURS, count)
    in_estate = (rng.random(count) < 0.7) & (len(estates) > 0)
    home = np.where(
        in_estate,
        rng.choice(estates if len(estates) else junctions, size=count),
        rng.choice(junctions, size=count),
    )
    at_campus = (rng.random(count) < 0.25) & (len(campuses) > 0)
    work = np.where(
        at_campus,
        rng.choice(campuses if len(campuses) else junctions, size=count),
        rng.choice(junctions, size=count),
    )
    return [
        Bike(k, tags[k], plate[k], display[k], frames[k], names[k], phones[k],
             int(home[k]), int(work[k]), brands[k], colours[k], bool(active[k]))
        for k in range(count)
    ]  # fmt: skip


@dataclass(frozen=True, eq=False)
class TheftDice:
    """Per theft (sorted by victim): the victim, when, and the uniforms its legs are drawn from.

    Where the thief goes depends on where the owner left the bike, which is only known once
    the owner's trips are timed (per chunk), so the theft keeps its dice, not its places.
    """

    bike_id: NDArray[np.int64]
    stolen_us: NDArray[np.int64]
    by_van: NDArray[np.bool_]
    u_fence: NDArray[np.float64]
    u_pickup: NDArray[np.float64]
    thief_mps: NDArray[np.float64]
    van_mps: NDArray[np.float64]
    pause_s: NDArray[np.float64]  # (theft, leg)
    tag_removed: NDArray[np.bool_]
    removal_delay_s: NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class DayPlan:
    """What :func:`plan_day` decides for the whole city; ``want_*`` rows sorted by (bike, time)."""

    seed: int
    start_us: int
    end_us: int
    bikes: list[Bike]
    tag_names: NDArray[np.object_]  # sorted distinct tag ids
    tag_code: NDArray[np.int32]  # per bike, index into tag_names
    tag_active: NDArray[np.bool_]  # per bike
    initial_node: NDArray[np.int64]  # per bike: where it is when the window opens
    speed_mps: NDArray[np.float64]  # per rider
    want_bike: NDArray[np.int64]
    want_us: NDArray[np.int64]
    want_from: NDArray[np.int64]
    want_to: NDArray[np.int64]
    want_kind: NDArray[np.object_]
    want_variant: NDArray[np.int64]
    thefts: TheftDice
    router_seed: int
    # Keys of the theft legs' random streams start here: the intentions planned before the
    # copies' extra ones (_ride_clones), so adding those never changes a theft.
    theft_key_base: int = -1
    # After the fence the thief keeps riding the bike this long from the theft (0: parked at
    # the fence). A stolen e-bike is often the thief's own transport for days afterwards.
    ride_on_s: float = 0.0
    # What the day's router needs besides its seed: see :func:`simulators.bike_days.router_for`.
    route_variants: int = 4
    route_preferences: RoutePreferences | None = None

    def intentions_of(self, b0: int, b1: int) -> NDArray[np.int64]:
        """Row indices of the intentions of bikes ``b0 <= bike < b1``."""
        lo, hi = np.searchsorted(self.want_bike, [b0, b1])
        return np.arange(lo, hi, dtype=np.int64)


def plan_day(
    city: City,
    *,
    seed: int,
    bikes: int,
    start: datetime,
    hours: float,
    thefts: int = 1,
    theft_window: tuple[float, float] = (0.03, 0.2),
    van_prob: float = 0.3,
    tag_removal_prob: float = 0.3,
    clones: int = 0,
    trip_rate_scale: float = 1.0,
    active_fraction: float = 0.0,
    route_variants: int = 4,
    thief_ride_on_s: float = 0.0,
    habits: Habits | None = None,
) -> DayPlan:
    """Plan the fleet, its trip intentions and its thefts over ``[start, start + hours]``.

    With ``habits`` the intentions follow :mod:`simulators.habits` (personal routes, working
    days and weekends) and the router takes the shared route preferences; without, each trip
    draws its own variant as it always did, so existing seeds keep their output.

    Each theft happens at ``start + f * hours`` with ``f`` uniform in ``theft_window``; a
    thief not loading the bike on a van rides on from the fence until ``thief_ride_on_s``
    after the theft.
    """
    if bikes < 1 or hours <= 0 or not 0 <= thefts <= bikes:
        raise ValueError("need bikes >= 1, hours > 0 and 0 <= thefts <= bikes")
    rng = np.random.default_rng(seed)
    start_us = to_us(start)
    end_us = start_us + round(hours * 3.6e9)
    fleet = _make_bikes(city, rng, bikes, active_fraction)  # copies' tags: _ride_clones
    router_seed = int(rng.integers(2**31))
    if habits is None:
        want, initial = _intentions(city, fleet, rng, start_us, end_us, trip_rate_scale)
        variant = rng.integers(0, route_variants, size=len(want.bike))
    else:
        want, variant, initial = _habit_intentions(city, fleet, seed, start_us, end_us,
                                                   habits, route_variants)  # fmt: skip
    speed = rng.uniform(2.8, 6.9, size=bikes)  # 10-25 km/h, per rider
    victims = np.sort(rng.choice(bikes, size=thefts, replace=False))
    lo, hi = theft_window
    dice = TheftDice(
        bike_id=victims.astype(np.int64),
        stolen_us=start_us
        + np.round(rng.uniform(lo, hi, thefts) * (end_us - start_us)).astype(np.int64),
        by_van=rng.random(thefts) < van_prob,
        u_fence=rng.random(thefts),
        u_pickup=rng.random(thefts),
        thief_mps=rng.uniform(7.0, 9.0, thefts),  # 25-32 km/h
        van_mps=rng.uniform(11.1, 16.7, thefts),  # 40-60 km/h
        pause_s=rng.uniform(60.0, 180.0, (thefts, 2)),
        tag_removed=rng.random(thefts) < tag_removal_prob,
        removal_delay_s=rng.uniform(600.0, 2400.0, thefts),
    )
    key_base = len(want.bike)
    fleet, want, variant = _ride_clones(
        city, fleet, want, variant, initial, clones=clones, seed=seed, start_us=start_us,
        end_us=end_us, speed_mps=speed, victims=victims, route_variants=route_variants,
    )  # fmt: skip
    tags = [b.tag_id for b in fleet]
    names = np.array(sorted(set(tags)), dtype=object)
    code = np.searchsorted(names.astype(str), np.array(tags, dtype=str)).astype(np.int32)
    return DayPlan(
        seed=seed, start_us=start_us, end_us=end_us, bikes=fleet, tag_names=names,
        tag_code=code, tag_active=np.array([b.tag_active for b in fleet], bool),
        initial_node=initial, speed_mps=speed, want_bike=want.bike, want_us=want.t,
        want_from=want.src, want_to=want.dst, want_kind=want.kind,
        want_variant=variant.astype(np.int64), thefts=dice, router_seed=router_seed,
        theft_key_base=key_base, ride_on_s=thief_ride_on_s, route_variants=route_variants,
        route_preferences=habits.preferences if habits is not None else None,
    )  # fmt: skip


def _habit_intentions(
    city: City,
    fleet: list[Bike],
    seed: int,
    start_us: int,
    end_us: int,
    habits: Habits,
    variants: int,
) -> tuple[_Wanted, NDArray[np.int64], NDArray[np.int64]]:
    """Intentions, variants and start nodes of riders with habits."""
    home = np.array([b.home_node for b in fleet], dtype=np.int64)
    work = np.array([b.work_node for b in fleet], dtype=np.int64)
    got = habit_intentions(
        city, home, work, seed=seed, start_us=start_us, end_us=end_us, habits=habits,
        variants=variants, offset_h=LOCAL_UTC_OFFSET_H,
    )  # fmt: skip
    return _Wanted(got.bike, got.t, got.src, got.dst, got.kind), got.variant, got.initial


def trip_rate_scale_for(start: datetime, hours: float, trips_per_bike_per_h: float) -> float:
    """The ``trip_rate_scale`` giving at least ``trips_per_bike_per_h`` on average over the
    window (never below 1): the live demo's city keeps its traffic at 3 a.m. too."""
    t_us = to_us(start) + np.linspace(0.0, hours * 3.6e9, 61).astype(np.int64)
    return max(1.0, trips_per_bike_per_h / float(np.mean(_trip_rate_per_h(t_us))))


@dataclass(frozen=True)
class _Wanted:
    bike: NDArray[np.int64]
    t: NDArray[np.int64]
    src: NDArray[np.int64]
    dst: NDArray[np.int64]
    kind: NDArray[np.object_]


def _intentions(
    city: City,
    bikes: list[Bike],
    rng: np.random.Generator,
    start_us: int,
    end_us: int,
    rate_scale: float,
) -> tuple[_Wanted, NDArray[np.int64]]:
    """Candidate trips (bike, wanted start, src, dst, kind) and each bike's start node."""
    n = len(bikes)
    hours = (end_us - start_us) / 3.6e9
    counts = rng.poisson(_LAMBDA_MAX_PER_H * rate_scale * hours, size=n)
    bike = np.repeat(np.arange(n), counts)
    t = start_us + (rng.random(len(bike)) * (end_us - start_us)).astype(np.int64)
    accept = rng.random(len(bike)) * _LAMBDA_MAX_PER_H < _trip_rate_per_h(t)
    bike, t = bike[accept], t[accept]
    order = np.lexsort((t, bike))
    bike, t = bike[order], t[order]

    errand_nodes = np.flatnonzero(city.node_kind == "junction")
    tree = cKDTree(city.node_xy_m[errand_nodes])
    home = np.array([b.home_node for b in bikes], dtype=np.int64)
    work = np.array([b.work_node for b in bikes], dtype=np.int64)
    h0 = _local_hour(start_us)
    at_work = (rng.random(n) < 0.7) & (9.0 <= h0 < 16.5)
    where = np.where(at_work, work, home)
    initial = where.copy()
    u = rng.random((len(bike), 3))
    hour = (t / 3.6e9 + LOCAL_UTC_OFFSET_H) % 24.0
    dst = np.full(len(bike), -1, np.int64)
    src = np.full(len(bike), -1, np.int64)
    commute = np.zeros(len(bike), bool)
    # Each trip starts where the bike's previous one ended, so trips are decided one rank
    # (first trip of every bike, second trip of every bike, ...) at a time, vectorized.
    rank = np.arange(len(bike)) - np.searchsorted(bike, bike)
    by_rank = np.argsort(rank, kind="stable")
    bounds = np.searchsorted(rank[by_rank], np.arange(int(rank.max(initial=-1)) + 2))
    for r in range(len(bounds) - 1):
        rows = by_rank[bounds[r] : bounds[r + 1]]
        b, h, u0 = bike[rows], hour[rows], u[rows, 0]
        s = where[b]
        to_work = (s == home[b]) & (h >= 5.0) & (h < 11.0) & (u0 < 0.8)
        to_home = ~to_work & (s == work[b]) & (h >= 15.0) & (u0 < 0.85)
        back = ~to_work & ~to_home & (s != home[b]) & (s != work[b]) & (u0 < 0.6)
        d = np.where(to_work, work[b], home[b])
        other = ~(to_work | to_home | back)
        if other.any():
            dist = 300.0 + 2200.0 * u[rows[other], 1]
            ang = 2.0 * np.pi * u[rows[other], 2]
            aim = city.node_xy_m[s[other]] + dist[:, None] * np.stack([np.sin(ang), np.cos(ang)], 1)
            d[other] = errand_nodes[tree.query(aim)[1]]
        src[rows], dst[rows], commute[rows] = s, d, to_work | to_home
        moved = d != s
        where[b[moved]] = d[moved]
    keep = dst != src
    kind = np.where(commute, "commute", "errand").astype(object)
    return _Wanted(bike[keep], t[keep], src[keep], dst[keep], kind[keep]), initial


# Copies whose first ride starts after their original's first ride has ended: one in four.
_PARKED_EVERY = 4
_CLONE_STREAM = 0xC10E
# A copy rides "elsewhere in the city": at least this far from its original's ride.
_ELSEWHERE_M = 1500.0


def _ride_clones(
    city: City,
    fleet: list[Bike],
    want: _Wanted,
    variant: NDArray[np.int64],
    initial: NDArray[np.int64],
    *,
    clones: int,
    seed: int,
    start_us: int,
    end_us: int,
    speed_mps: NDArray[np.float64],
    victims: NDArray[np.int64],
    route_variants: int,
) -> tuple[list[Bike], _Wanted, NDArray[np.int64]]:
    """Give the last ``clones`` bikes copies of other bikes' tags, and make the copies ride.

    A cloned tag is only visible as one when both bikes ride: so each copy's original is the
    first bike that has a trip in the window (and is not a theft victim) starting at least
    ``_ELSEWHERE_M`` from the copy (the farthest such bike when none is that far), and the
    copy's trips are retimed to start with its original's first trip (within -1..+2 min) —
    except every ``_PARKED_EVERY``-th copy, whose original is chosen by where its first ride
    ends and which starts 0.5-3 min after that ride should have ended (the original parked;
    with the original's if that is past the window).
    A copy with no trip of its own gets one errand 1.5-2.5 km long.

    Draws come from a generator of their own and the copies are the last bikes (their
    intentions the last rows), so every other bike's day, and every theft, stays the same.
    """
    count = len(fleet)
    clones = min(clones, count - 1)
    if clones <= 0:
        return fleet, want, variant
    rng = np.random.default_rng([seed, _CLONE_STREAM])
    copies = list(range(count - 1, count - 1 - clones, -1))
    has_trip = np.bincount(want.bike, minlength=count) > 0
    stolen = set(victims.tolist())
    pool = [b for b in range(count) if has_trip[b] and b not in stolen and b not in copies]
    pool += [b for b in range(count) if b not in pool and b not in copies]  # none ride: any
    bike, t, src, dst = want.bike.copy(), want.t.copy(), want.src.copy(), want.dst.copy()
    kind, var = want.kind.copy(), variant.astype(np.int64).copy()
    add: list[tuple[int, int, int, int, int]] = []  # bike, t, src, dst, variant
    junctions = np.flatnonzero(city.node_kind == "junction")
    tree = cKDTree(city.node_xy_m[junctions])
    fleet = list(fleet)
    first_of = {b: int(np.flatnonzero(want.bike == b)[np.argmin(want.t[want.bike == b])])
                for b in pool if has_trip[b]}  # fmt: skip
    for k, copy in enumerate(copies):
        parked = k % _PARKED_EVERY == _PARKED_EVERY - 1
        original = _original_for(city, pool, first_of, want, int(initial[copy]), parked)
        if original is None:
            break
        pool.remove(original)
        source = fleet[original]
        fleet[copy] = replace(fleet[copy], tag_id=source.tag_id, tag_active=source.tag_active)
        if original not in first_of:
            continue
        first = first_of[original]
        begin = int(want.t[first]) + round(rng.uniform(-60.0, 120.0) * 1e6)
        if parked:  # after the original's first ride, estimated from its length and speed
            d_m = float(np.hypot(*(city.node_xy_m[want.dst[first]]
                                   - city.node_xy_m[want.src[first]])))  # fmt: skip
            # Roads are ~1.3x the straight line; stops at junctions and slower streets add
            # more: a generous bound, so that the original has parked.
            ride_s = 1.6 * d_m / float(speed_mps[original]) + 60.0
            after = int(want.t[first]) + round((ride_s + rng.uniform(30.0, 180.0)) * 1e6)
            # Past the window the copy would not ride at all: then it rides with the original.
            begin = after if after < end_us - 60_000_000 else begin
        begin = int(np.clip(begin, start_us, end_us - 60_000_000))
        mine = np.flatnonzero(bike == copy)
        if mine.size:
            t[mine] += begin - int(t[mine].min())
            continue
        here = int(initial[copy])
        dist, ang = rng.uniform(1500.0, 2500.0), rng.uniform(0.0, 2.0 * np.pi)
        aim = city.node_xy_m[here] + dist * np.array([np.sin(ang), np.cos(ang)])
        there = int(junctions[tree.query(aim)[1]])
        if there != here:
            add.append((copy, begin, here, there, int(rng.integers(0, route_variants))))
    if add:
        extra = np.array(add, dtype=np.int64)
        bike = np.concatenate([bike, extra[:, 0]])
        t = np.concatenate([t, extra[:, 1]])
        src = np.concatenate([src, extra[:, 2]])
        dst = np.concatenate([dst, extra[:, 3]])
        var = np.concatenate([var, extra[:, 4]])
        kind = np.concatenate([kind, np.full(len(add), "errand", dtype=object)])
    order = np.lexsort((t, bike))  # the copies are the last bikes: other rows keep their place
    return (
        fleet,
        _Wanted(bike[order], t[order], src[order], dst[order], kind[order]),
        var[order],
    )


def _original_for(
    city: City,
    pool: list[int],
    first_of: dict[int, int],
    want: _Wanted,
    copy_at: int,
    parked: bool,
) -> int | None:
    """The first bike of ``pool`` whose first ride starts (``parked``: ends) at least
    ``_ELSEWHERE_M`` from where the copy is; the farthest of them when none does."""
    if not pool:
        return None
    here = city.node_xy_m[copy_at]
    best, best_m = pool[0], -1.0
    for b in pool:
        if b not in first_of:
            continue
        row = first_of[b]
        there = int(want.dst[row] if parked else want.src[row])
        d_m = float(np.hypot(*(city.node_xy_m[there] - here)))
        if d_m >= _ELSEWHERE_M:
            return b
        if d_m > best_m:
            best, best_m = b, d_m
    return best
