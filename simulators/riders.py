"""Bikes, their owners' trips and thefts, with ground truth.

A population is planned in three passes so that paths can be computed in batches:

1. trip *intentions* per bike: start times from a time-of-day rate (morning and evening peaks,
   local time UTC+8, by thinning a Poisson process) and destinations (home -> work in the
   morning, work -> home in the evening, errands nearby otherwise), each trip starting where
   the previous one ended;
2. node paths for all trips at once (:class:`simulators.routing.Router`);
3. timing: per-rider speed (10-25 km/h), per-edge speed jitter, short stops at junctions; a
   trip that would start before the previous one ended (plus parking time) is delayed, and
   trips pushed past the end of the window are dropped.

Then each theft: at ``stolen_at`` (inside ``theft_window`` of the window, so that the demo sees
it) the bike is wherever its owner left it (often inside an estate or campus, so the thief
leaves through a gate); the thief rides it fast to a fence, or to a van pickup nearby, and the
van drives at 40-60 km/h to the fence. The owner's later trips are gone with the bike.

Ground truth per trip (node path and per-node arrival/departure times) is in
``Population.visits`` (see :func:`trip_node_times`); positions per second come from
:func:`trajectories`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from simulators import people
from simulators.city import City
from simulators.motion import TimedPaths, sample_trajectories, time_paths
from simulators.routing import VAN_VARIANT, Router
from simulators.trip_tables import subset_paths, trip_tables

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LOCAL_UTC_OFFSET_H = 8.0
PARKING_S = 120.0
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
    to_node (int32), length_m (float64). ``visits``: see :func:`trip_node_times`.
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


def _make_bikes(city: City, rng: np.random.Generator, count: int, clones: int) -> list[Bike]:
    kinds = city.node_kind
    estates = np.flatnonzero(kinds == "estate")
    campuses = np.flatnonzero(kinds == "campus")
    junctions = np.flatnonzero(kinds == "junction")
    tags = people.tag_ids(rng, count)
    for k in range(min(clones, count - 1)):  # the last bikes carry copies of the first tags
        tags[count - 1 - k] = tags[k]
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
             int(home[k]), int(work[k]), brands[k], colours[k])
        for k in range(count)
    ]  # fmt: skip


def _intentions(
    city: City,
    bikes: list[Bike],
    rng: np.random.Generator,
    start_us: int,
    end_us: int,
    rate_scale: float,
) -> tuple[pd.DataFrame, NDArray[np.int64]]:
    """Pass 1: candidate trips (bike, wanted start, src, dst, kind) and each bike's start node."""
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
    rows: list[tuple[int, int, int, int, str]] = []
    for k in range(len(bike)):
        b, now = int(bike[k]), int(t[k])
        h = _local_hour(now)
        src = int(where[b])
        if src == home[b] and 5.0 <= h < 11.0 and u[k, 0] < 0.8:
            dst, kind = int(work[b]), "commute"
        elif src == work[b] and h >= 15.0 and u[k, 0] < 0.85:
            dst, kind = int(home[b]), "commute"
        elif src not in (home[b], work[b]) and u[k, 0] < 0.6:
            dst, kind = int(home[b]), "errand"
        else:
            dist = 300.0 + 2200.0 * u[k, 1]
            ang = 2.0 * np.pi * u[k, 2]
            aim = city.node_xy_m[src] + dist * np.array([np.sin(ang), np.cos(ang)])
            dst, kind = int(errand_nodes[tree.query(aim)[1]]), "errand"
        if dst != src:
            rows.append((b, now, src, dst, kind))
            where[b] = dst
    cols = ["bike_id", "want_us", "from_node", "to_node", "kind"]
    return pd.DataFrame(rows, columns=cols), initial


def _fence_for(city: City, rng: np.random.Generator, src: int) -> int:
    """A fence far from ``src``, across the river when there is one."""
    cand = np.flatnonzero(city.node_kind == "junction")
    d = np.hypot(*(city.node_xy_m[cand] - city.node_xy_m[src]).T)
    far = cand[d >= np.quantile(d, 0.6)]
    if city.river_y_m is not None:
        side = city.node_xy_m[src, 1] > city.river_y_m
        across = far[(city.node_xy_m[far, 1] > city.river_y_m) != side]
        far = across if len(across) else far
    return int(rng.choice(far))


def _pickup_for(city: City, rng: np.random.Generator, src: int) -> int:
    """A van pickup point on an arterial 300-900 m from ``src`` (or the nearest such node)."""
    art = np.unique(city.edge_src[city.edge_class == "arterial"])
    pool = art if len(art) else np.flatnonzero(city.node_kind == "junction")
    d = np.hypot(*(city.node_xy_m[pool] - city.node_xy_m[src]).T)
    ok = pool[(d >= 300.0) & (d <= 900.0)]
    return int(rng.choice(ok)) if len(ok) else int(pool[np.argmin(np.abs(d - 600.0))])


def generate_population(
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
) -> Population:
    """Generate ``bikes`` bikes, their trips over ``[start, start + hours]`` and ``thefts`` thefts.

    Each theft happens at ``start + f * hours`` with ``f`` uniform in ``theft_window``
    (fractions of the window). ``clones`` bikes carry a copy of another bike's tag.
    """
    if bikes < 1 or hours <= 0 or not 0 <= thefts <= bikes:
        raise ValueError("need bikes >= 1, hours > 0 and 0 <= thefts <= bikes")
    rng = np.random.default_rng(seed)
    start_us = to_us(start)
    end_us = start_us + round(hours * 3.6e9)
    fleet = _make_bikes(city, rng, bikes, clones)
    router = Router(city, seed=int(rng.integers(2**31)))
    want, initial = _intentions(city, fleet, rng, start_us, end_us, trip_rate_scale)
    variant = rng.integers(0, router.variants, size=len(want))
    paths = router.paths(variant, want["from_node"].to_numpy(), want["to_node"].to_numpy())
    speed = rng.uniform(2.8, 6.9, size=bikes)  # 10-25 km/h, per rider
    timed = time_paths(city, paths, speed[want["bike_id"].to_numpy()], "rider", rng)

    # Pass 3: delay trips that would start before the previous one ended; drop overflow.
    dur_us = timed.duration_us
    start_at = want["want_us"].to_numpy().copy()
    keep = np.ones(len(want), bool)
    bike_of = want["bike_id"].to_numpy()
    prev_end: dict[int, int] = {}
    for k in range(len(want)):
        b = int(bike_of[k])
        if b in prev_end:
            if prev_end[b] < 0:
                keep[k] = False
                continue
            start_at[k] = max(start_at[k], prev_end[b] + int(PARKING_S * 1e6))
        if start_at[k] > end_us:
            keep[k], prev_end[b] = False, -1
            continue
        prev_end[b] = int(start_at[k] + dur_us[k])

    parts: list[tuple[pd.DataFrame, TimedPaths]] = []
    kept = np.flatnonzero(keep)
    meta = want.iloc[kept][["bike_id", "kind", "from_node", "to_node"]].assign(
        start_us=start_at[kept]
    )
    parts.append((meta, subset_paths(timed, kept)))
    victims = rng.choice(bikes, size=thefts, replace=False)
    theft_list: list[Theft] = []
    for b in (int(v) for v in victims):
        stolen = start_us + round(rng.uniform(*theft_window) * (end_us - start_us))
        mine = kept[bike_of[kept] == b]
        left = mine[start_at[mine] + dur_us[mine] <= stolen - 60_000_000]
        gone = np.setdiff1d(mine, left)
        if len(gone):  # the owner's trips after the theft never happen
            meta0, t0 = parts[0]
            stay = ~np.isin(kept, gone)
            parts[0] = (meta0[stay], subset_paths(t0, np.flatnonzero(stay)))
            kept = kept[stay]
        src = int(want["to_node"].to_numpy()[left[-1]]) if len(left) else int(initial[b])
        fence = _fence_for(city, rng, src)
        by_van = bool(rng.random() < van_prob)
        pickup = _pickup_for(city, rng, src) if by_van else fence
        legs = [(src, pickup, "theft", rng.uniform(7.0, 9.0))]  # 25-32 km/h
        if by_van:
            legs.append((pickup, fence, "van", rng.uniform(11.1, 16.7)))  # 40-60 km/h
        begin = stolen
        for leg_src, leg_dst, kind, v in legs:
            if leg_src == leg_dst:
                continue
            variant = np.array([VAN_VARIANT if kind == "van" else 0])
            path = router.paths(variant, np.array([leg_src]), np.array([leg_dst]))
            tp = time_paths(city, path, np.array([v]), "van" if kind == "van" else "thief", rng)
            row = {"bike_id": [b], "kind": [kind], "from_node": [leg_src], "to_node": [leg_dst]}
            parts.append((pd.DataFrame(row).assign(start_us=begin), tp))
            begin += int(tp.duration_us[0]) + int(rng.uniform(60.0, 180.0) * 1e6)
        arrival = begin  # at the fence (plus a loading pause, which is harmless here)
        removed = None
        if rng.random() < tag_removal_prob:
            removed = from_us(arrival + int(rng.uniform(600.0, 2400.0) * 1e6))
        theft_list.append(
            Theft(b, from_us(stolen), src, fence, by_van, removed, pickup if by_van else None)
        )
    trips, visits = trip_tables(parts)
    return Population(fleet, theft_list, trips, visits)


def trip_node_times(population: Population) -> pd.DataFrame:
    """Each trip's true node path with per-node times, for scoring.

    Columns: trip_id, bike_id, seq (0-based position along the path), node, edge_in (the
    directed edge used to reach the node, -1 at the start), arrive_us, depart_us (UTC µs; they
    differ where the rider stopped). Sorted by (trip_id, seq).
    """
    return population.visits


def trajectories(city: City, population: Population, *, seed: int, hz: float = 1.0) -> pd.DataFrame:
    """Ground-truth positions of every bike while it moves (and while stopped at junctions).

    Columns: bike_id (int32), trip_id (int32), t_us (int64, UTC µs, multiples of 1/hz s),
    x_m, y_m (float64, meters, ``seed``-drawn 0.5-2.5 m to the right of the centre line), edge
    (int32, directed edge being ridden or just ridden), speed_mps (float64, 0 when stopped),
    tag_id (categorical: the tag the bike carries), tag_present (False once a thief has torn
    the tag off). Sorted by (bike_id, t_us).
    """
    rng = np.random.default_rng(seed)
    trips = population.trips
    lateral = rng.uniform(0.5, 2.5, size=len(trips))
    traj = sample_trajectories(
        city,
        population.visits,
        trips["start_us"].to_numpy(),
        trips["end_us"].to_numpy(),
        lateral,
        hz,
    )
    tags = [b.tag_id for b in population.bikes]
    categories = sorted(set(tags))
    code_of = {t: k for k, t in enumerate(categories)}
    codes = np.array([code_of[t] for t in tags], dtype=np.int32)
    traj["tag_id"] = pd.Categorical.from_codes(
        codes[traj["bike_id"].to_numpy()], pd.Index(categories, dtype=str)
    )
    removed_after = np.full(len(tags), np.iinfo(np.int64).max, np.int64)
    for theft in population.thefts:
        if theft.tag_removed_at is not None:
            removed_after[theft.bike_id] = to_us(theft.tag_removed_at)
    traj["tag_present"] = traj["t_us"].to_numpy() < removed_after[traj["bike_id"].to_numpy()]
    return traj
