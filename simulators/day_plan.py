"""The day's population before any path is planned: bikes and owners, trip intentions, thefts.

:func:`plan_day` draws everything that couples bikes to each other or is cheap to draw for the
whole city at once, from one generator seeded with ``seed``:

- the fleet (tags, plates, owners, homes and workplaces; ``active_fraction`` of the bikes carry
  an active 2.4 GHz tag; ``clones`` bikes carry a copy of another bike's tag, and *ride*: see
  :mod:`simulators.clone_rides`);
- trip *intentions* per bike (:mod:`simulators.intentions`): start times from a time-of-day
  rate (morning and evening peaks, local time UTC+8) and destinations, each trip starting
  where the previous one ended, or the riders' habits;
- each trip's route variant and each rider's speed; the thefts' victims, times and dice.

Everything after that (paths, timing, positions, reads) is planned per chunk of bikes by
:mod:`simulators.bike_days` from keyed draws, so it does not depend on the chunk size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from citymap.network import City
from simulators.clone_rides import ride_clones
from simulators.fleet import Bike, make_bikes, to_us
from simulators.habits import Habits
from simulators.intentions import intentions, intentions_with_habits
from simulators.preferences import RoutePreferences


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
    # copies' extra ones (ride_clones), so adding those never changes a theft.
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
    fleet = make_bikes(city, rng, bikes, active_fraction)  # copies' tags: ride_clones
    router_seed = int(rng.integers(2**31))
    if habits is None:
        want, initial = intentions(city, fleet, rng, start_us, end_us, trip_rate_scale)
        variant = rng.integers(0, route_variants, size=len(want.bike))
    else:
        want, variant, initial = intentions_with_habits(city, fleet, seed, start_us, end_us,
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
    fleet, want, variant = ride_clones(
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
