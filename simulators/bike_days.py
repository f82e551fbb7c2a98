"""A chunk of bikes' day: their routed and timed trips, thefts, and positions every second.

:func:`plan_bikes` takes the intentions of bikes ``b0 <= bike < b1`` from a
:class:`simulators.day_plan.DayPlan` and

1. routes them (unless the plan carries paths already) and times them
   (:func:`simulators.motion.time_paths`: per-rider speed, per-edge jitter, junction stops);
2. delays a trip that would start before the bike's previous one ended (plus parking time)
   and drops trips pushed past the end of the window;
3. plays each theft of these bikes: at ``stolen_at`` the bike is wherever its owner left it
   (often inside an estate or campus, so the thief leaves through a gate); the thief rides it
   fast to a fence, or to a van pickup nearby, and the van drives at 40-60 km/h to the fence.
   With ``DayPlan.ride_on_s`` a riding thief keeps using the bike after the fence (rides from
   junction to junction with short stops). The owner's later trips are gone with the bike.

Every random number is keyed by intention, node or trip (:mod:`simulators.keyed_random`), and
steps 2 and 3 only look at one bike's own trips, so a bike's day is the same in any chunk.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from citymap.network import City
from simulators.day_plan import DayPlan
from simulators.fleet import Bike, Population, Theft, from_us, to_us
from simulators.keyed_random import KeyedRandom
from simulators.motion import TimedPaths, sample_trajectories, time_paths
from simulators.routing import VAN_VARIANT, FlatPaths, Router
from simulators.trip_tables import subset_paths, trip_tables

PARKING_S = 120.0
_S_LATERAL = 21  # keyed-random stream of a trip's lateral offset
# Keys of ride-on legs' random streams: far above any intention or theft leg's key.
_RIDE_ON_KEY_BASE = 1 << 40
_RIDE_ON_MAX_LEGS = 500


def router_for(city: City, plan: DayPlan) -> Router:
    """The router of ``plan``: its seed, variant count and shared route preferences."""
    return Router(city, seed=plan.router_seed, variants=plan.route_variants,
                  preferences=plan.route_preferences)  # fmt: skip


def plan_bikes(
    city: City, router: Router, plan: DayPlan, b0: int, b1: int, *, paths: FlatPaths | None = None
) -> Population:
    """Trips, node visits and thefts of bikes ``b0 <= bike < b1`` (trip ids from 0, in
    (bike, start) order; ``bikes`` is the whole fleet). ``paths`` are these bikes'
    intentions' paths when the caller routed them already."""
    rand = KeyedRandom(plan.seed)
    rows = plan.intentions_of(b0, b1)
    if paths is None:
        paths = router.paths(plan.want_variant[rows], plan.want_from[rows], plan.want_to[rows])
    bike_of = plan.want_bike[rows]
    timed = time_paths(city, paths, plan.speed_mps[bike_of], "rider", rand, rows)
    start_at, keep = _sequential_starts(bike_of, plan.want_us[rows], timed.duration_us,
                                        plan.end_us)  # fmt: skip
    theft_parts: list[tuple[pd.DataFrame, TimedPaths]] = []
    thefts: list[Theft] = []
    dice = plan.thefts
    end_at = start_at + timed.duration_us
    for i in np.flatnonzero((dice.bike_id >= b0) & (dice.bike_id < b1)):
        b, stolen = int(dice.bike_id[i]), int(dice.stolen_us[i])
        own = np.flatnonzero(keep & (bike_of == b))
        left = own[end_at[own] <= stolen - 60_000_000]
        keep[np.setdiff1d(own, left)] = False  # the owner's trips after the theft never happen
        src = int(plan.want_to[rows[left[-1]]]) if len(left) else int(plan.initial_node[b])
        fence = _fence_for(city, float(dice.u_fence[i]), src)
        by_van = bool(dice.by_van[i])
        pickup = _pickup_for(city, float(dice.u_pickup[i]), src) if by_van else fence
        legs = [(src, pickup, "theft", float(dice.thief_mps[i]))]
        if by_van:
            legs.append((pickup, fence, "van", float(dice.van_mps[i])))
        begin = stolen
        for leg, (leg_src, leg_dst, kind, v) in enumerate(legs):
            if leg_src == leg_dst:
                continue
            variant = np.array([VAN_VARIANT if kind == "van" else 0])
            path = router.paths(variant, np.array([leg_src]), np.array([leg_dst]))
            base = plan.theft_key_base if plan.theft_key_base >= 0 else len(plan.want_bike)
            key = np.array([base + 2 * i + leg], np.int64)
            mode = "van" if kind == "van" else "thief"
            tp = time_paths(city, path, np.array([v]), mode, rand, key)
            row = {"bike_id": [b], "kind": [kind], "from_node": [leg_src], "to_node": [leg_dst]}
            theft_parts.append((pd.DataFrame(row).assign(start_us=begin), tp))
            begin += int(tp.duration_us[0]) + int(dice.pause_s[i, leg] * 1e6)
        if plan.ride_on_s > 0 and not by_van:
            ride_on = _RideOn(city, router, rand, plan, int(i), b)
            theft_parts.extend(ride_on.legs(fence, begin, stolen + int(plan.ride_on_s * 1e6)))
        removed = None  # at the fence (plus a loading pause, which is harmless here)
        if dice.tag_removed[i]:
            removed = from_us(begin + int(dice.removal_delay_s[i] * 1e6))
        thefts.append(Theft(b, from_us(stolen), src, fence, by_van, removed,
                            pickup if by_van else None))  # fmt: skip
    kept = np.flatnonzero(keep)
    meta = pd.DataFrame({
        "bike_id": bike_of[kept], "kind": plan.want_kind[rows[kept]],
        "from_node": plan.want_from[rows[kept]], "to_node": plan.want_to[rows[kept]],
        "start_us": start_at[kept],
    })  # fmt: skip
    trips, visits = trip_tables([(meta, subset_paths(timed, kept)), *theft_parts])
    return Population(plan.bikes, thefts, trips, visits)


def _sequential_starts(
    bike: NDArray[np.int64], want_us: NDArray[np.int64], dur_us: NDArray[np.int64], end_us: int
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Start times after each bike's previous trip (plus parking); False past the window."""
    start_at = want_us.copy()
    keep = np.ones(len(bike), bool)
    parking = int(PARKING_S * 1e6)
    prev_bike, prev_end = -1, 0  # rows are sorted by (bike, wanted start)
    for k in range(len(bike)):
        b = int(bike[k])
        if b == prev_bike:
            if prev_end < 0:
                keep[k] = False
                continue
            start_at[k] = max(int(start_at[k]), prev_end + parking)
        prev_bike = b
        if start_at[k] > end_us:
            keep[k], prev_end = False, -1
            continue
        prev_end = int(start_at[k] + dur_us[k])
    return start_at, keep


class _RideOn:
    """The thief's own rides on the stolen bike after the fence: junction to junction at the
    thief's speed, 30-120 s stops between, until a given time."""

    def __init__(
        self, city: City, router: Router, rand: KeyedRandom, plan: DayPlan, theft: int, bike: int
    ) -> None:
        self.city, self.router, self.rand = city, router, rand
        self.speed = float(plan.thefts.thief_mps[theft])
        self.bike = bike
        self.key0 = _RIDE_ON_KEY_BASE + theft * _RIDE_ON_MAX_LEGS
        self.pick = np.random.default_rng([plan.seed, theft, 7919])
        self.junctions = np.flatnonzero(city.node_kind == "junction")

    def legs(self, at: int, begin: int, until_us: int) -> list[tuple[pd.DataFrame, TimedPaths]]:
        """Legs from node ``at`` starting at ``begin`` (UTC µs) while before ``until_us``."""
        parts: list[tuple[pd.DataFrame, TimedPaths]] = []
        for leg in range(_RIDE_ON_MAX_LEGS):
            if begin >= until_us:
                break
            dst = int(self.junctions[self.pick.integers(len(self.junctions))])
            if dst == at:
                continue
            path = self.router.paths(np.array([0]), np.array([at]), np.array([dst]))
            key = np.array([self.key0 + leg], np.int64)
            tp = time_paths(self.city, path, np.array([self.speed]), "thief", self.rand, key)
            row = {"bike_id": [self.bike], "kind": ["theft"], "from_node": [at], "to_node": [dst]}
            parts.append((pd.DataFrame(row).assign(start_us=begin), tp))
            begin += int(tp.duration_us[0]) + int(self.pick.uniform(30.0, 120.0) * 1e6)
            at = dst
        return parts


def _fence_for(city: City, u: float, src: int) -> int:
    """A fence far from ``src``, across the river when there is one (``u`` picks which)."""
    cand = np.flatnonzero(city.node_kind == "junction")
    d = np.hypot(*(city.node_xy_m[cand] - city.node_xy_m[src]).T)
    far = cand[d >= np.quantile(d, 0.6)]
    if city.river_y_m is not None:
        side = city.node_xy_m[src, 1] > city.river_y_m
        across = far[(city.node_xy_m[far, 1] > city.river_y_m) != side]
        far = across if len(across) else far
    return int(far[int(u * len(far))])


def _pickup_for(city: City, u: float, src: int) -> int:
    """A van pickup point on an arterial 300-900 m from ``src`` (or the nearest such node)."""
    art = np.unique(city.edge_src[city.edge_class == "arterial"])
    pool = art if len(art) else np.flatnonzero(city.node_kind == "junction")
    d = np.hypot(*(city.node_xy_m[pool] - city.node_xy_m[src]).T)
    ok = pool[(d >= 300.0) & (d <= 900.0)]
    return int(ok[int(u * len(ok))]) if len(ok) else int(pool[np.argmin(np.abs(d - 600.0))])


def tag_columns(bikes: list[Bike]) -> tuple[NDArray[np.object_], NDArray[np.int32]]:
    """Sorted distinct tag ids and each bike's index into them."""
    tags = [b.tag_id for b in bikes]
    names = np.array(sorted(set(tags)), dtype=object)
    return names, np.searchsorted(names.astype(str), np.array(tags, str)).astype(np.int32)


def trajectories(
    city: City,
    population: Population,
    *,
    seed: int,
    hz: float = 1.0,
    bike_range: tuple[int, int] | None = None,
    tags: tuple[NDArray[np.object_], NDArray[np.int32]] | None = None,
) -> pd.DataFrame:
    """Ground-truth positions of every bike while it moves (and while stopped at junctions).

    Columns: bike_id (int32), trip_id (int32), t_us (int64, UTC µs, multiples of 1/hz s),
    x_m, y_m (float64, meters, 0.5-2.5 m to the right of the centre line, keyed by ``seed``,
    bike and trip start), edge (int32, directed edge being ridden or just ridden), speed_mps
    (float64, 0 when stopped), tag_id (categorical: the tag the bike carries), tag_active
    (bool: an active 2.4 GHz tag), tag_present (False once a thief has torn the tag off).
    Sorted by (bike_id, t_us). ``bike_range`` keeps only bikes ``b0 <= bike < b1``; ``tags``
    is :func:`tag_columns` of the fleet, when the caller has it already.
    """
    trips, visits = population.trips, population.visits
    trip_ids = trips["trip_id"].to_numpy()
    if bike_range is not None:  # sample_trajectories wants dense trip ids: renumber, map back
        trip_ids = trip_ids[
            ((trips["bike_id"] >= bike_range[0]) & (trips["bike_id"] < bike_range[1])).to_numpy()
        ]
        b0, b1 = bike_range
        mine = ((trips["bike_id"] >= b0) & (trips["bike_id"] < b1)).to_numpy()
        renumber = np.cumsum(mine) - 1
        trips = trips[mine].assign(trip_id=np.arange(int(mine.sum()), dtype=np.int32))
        v_mine = mine[visits["trip_id"].to_numpy()]
        visits = visits[v_mine].assign(trip_id=renumber[visits["trip_id"].to_numpy()[v_mine]])
    rand = KeyedRandom(seed)
    lateral = 0.5 + 2.0 * rand.uniform(_S_LATERAL, trips["bike_id"].to_numpy(),
                                       trips["start_us"].to_numpy())  # fmt: skip
    traj = sample_trajectories(city, visits, trips["start_us"].to_numpy(),
                               trips["end_us"].to_numpy(), lateral, hz)  # fmt: skip
    names, codes = tags if tags is not None else tag_columns(population.bikes)
    traj["trip_id"] = trip_ids[traj["trip_id"].to_numpy()].astype(np.int32)
    bike = traj["bike_id"].to_numpy()
    traj["tag_id"] = pd.Categorical.from_codes(codes[bike], pd.Index(names, dtype=str))
    active = np.array([b.tag_active for b in population.bikes], dtype=bool)
    traj["tag_active"] = active[bike]
    removed_after = np.full(len(population.bikes), np.iinfo(np.int64).max, np.int64)
    for theft in population.thefts:
        if theft.tag_removed_at is not None:
            removed_after[theft.bike_id] = to_us(theft.tag_removed_at)
    traj["tag_present"] = traj["t_us"].to_numpy() < removed_after[bike]
    return traj
