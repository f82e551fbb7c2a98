"""Bikes, their owners' trips and thefts, with ground truth: the whole-population entry points.

A population is planned in two stages (see :mod:`simulators.day_plan` and
:mod:`simulators.bike_days`): the fleet, trip intentions and theft dice for the whole city
from one seeded generator, then per chunk of bikes the paths (:class:`simulators.routing.
Router`), timing (per-rider speed 10-25 km/h, per-edge jitter, junction stops), trips
delayed behind the previous one, and thefts (at night or from estates and campuses, ridden
fast to a fence, sometimes loaded on a van at 40-60 km/h, sometimes the tag torn off).
:func:`generate_population` runs both stages for every bike at once; the simulator's chunked
run (:mod:`simulators.chunks`) gets the same bikes and trips chunk by chunk.

Ground truth per trip (node path and per-node arrival/departure times) is in
``Population.visits`` (see :func:`trip_node_times`); positions per second come from
:func:`trajectories`.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from citymap.network import City
from simulators.bike_days import PARKING_S, plan_bikes, router_for, trajectories
from simulators.day_plan import plan_day
from simulators.fleet import EPOCH, Bike, Population, Theft, from_us, to_us
from simulators.habits import Habits

__all__ = [
    "EPOCH", "PARKING_S", "Bike", "Population", "Theft", "from_us", "generate_population",
    "to_us", "trajectories", "trip_node_times",
]  # fmt: skip


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
    active_fraction: float = 0.0,
    thief_ride_on_s: float = 0.0,
    habits: Habits | None = None,
    route_variants: int = 4,
) -> Population:
    """Generate ``bikes`` bikes, their trips over ``[start, start + hours]`` and ``thefts`` thefts.

    Each theft happens at ``start + f * hours`` with ``f`` uniform in ``theft_window``
    (fractions of the window). ``clones`` bikes carry a copy of another bike's tag;
    ``active_fraction`` of the bikes carry an active 2.4 GHz tag instead of a UHF one.
    A thief who rides (no van) keeps riding the bike until ``thief_ride_on_s`` after the theft.
    ``habits``: riders keep personal routes and shared preferences (:mod:`simulators.habits`).
    ``route_variants``: the city-wide route variants riders choose among (the router's).
    """
    plan = plan_day(
        city, seed=seed, bikes=bikes, start=start, hours=hours, thefts=thefts,
        theft_window=theft_window, van_prob=van_prob, tag_removal_prob=tag_removal_prob,
        clones=clones, trip_rate_scale=trip_rate_scale, active_fraction=active_fraction,
        thief_ride_on_s=thief_ride_on_s, habits=habits, route_variants=route_variants,
    )  # fmt: skip
    return plan_bikes(city, router_for(city, plan), plan, 0, bikes)


def trip_node_times(population: Population) -> pd.DataFrame:
    """Each trip's true node path with per-node times, for scoring.

    Columns: trip_id, bike_id, seq (0-based position along the path), node, edge_in (the
    directed edge used to reach the node, -1 at the start), arrive_us, depart_us (UTC µs; they
    differ where the rider stopped). Sorted by (trip_id, seq).
    """
    return population.visits
