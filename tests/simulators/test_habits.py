"""Riders with habits: personal routes on working days, weekends, determinism, preferences."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from citymap.network import City
from simulators.fleet import LOCAL_UTC_OFFSET_H
from simulators.habits import Habits
from simulators.preferences import RoutePreferences, busy_junctions, favoured_bridge_edges
from simulators.riders import Population, generate_population
from simulators.routing import Router
from simulators.scenario import DEFAULT_START, SimOptions, run

MONDAY = DEFAULT_START  # 2025-03-03 00:00 local
FRIDAY = DEFAULT_START + timedelta(days=4)


@pytest.fixture(scope="module")
def week(city: City) -> Population:
    """Monday to Friday, with habits, no thefts."""
    return generate_population(city, seed=13, bikes=80, start=MONDAY, hours=120, thefts=0,
                               habits=Habits())  # fmt: skip


def usual_path_shares(pop: Population) -> list[float]:
    """Per rider with 3+ morning commutes: the share of them on the rider's most ridden path."""
    paths = pop.visits.groupby("trip_id")["node"].apply(tuple)
    commutes = pop.trips[pop.trips["kind"] == "commute"]
    shares = []
    for b, mine in commutes.groupby("bike_id"):
        bike = pop.bikes[int(b)]
        out = mine[(mine["from_node"] == bike.home_node) & (mine["to_node"] == bike.work_node)]
        if len(out) >= 3:
            counts = pd.Series(paths.loc[out["trip_id"]].tolist()).value_counts()
            shares.append(float(counts.iloc[0]) / len(out))
    return shares


def local_days(trips: pd.DataFrame) -> pd.Series:
    offset_us = LOCAL_UTC_OFFSET_H * 3.6e9
    return ((trips["start_us"] + offset_us) // 86_400_000_000).astype(int)


def test_a_rider_takes_the_same_path_most_working_days(city: City, week: Population) -> None:
    shares = usual_path_shares(week)
    assert len(shares) >= 40  # most of the 80 riders commute 3+ mornings out of 5
    assert np.mean(shares) >= 0.85
    assert np.median(shares) == 1.0
    # Without habits every trip draws its own variant: the same riders vary much more.
    plain = generate_population(city, seed=13, bikes=80, start=MONDAY, hours=120, thefts=0)
    assert np.mean(usual_path_shares(plain)) < np.mean(shares) - 0.1


def test_commutes_vary_sometimes(week: Population) -> None:
    shares = usual_path_shares(week)
    assert min(shares) < 1.0  # vary_prob > 0: some rider took another way at least once
    assert (week.trips["kind"] == "errand").any()


def test_working_days_commute_at_the_usual_hour(week: Population) -> None:
    trips = week.trips[week.trips["kind"] == "commute"]
    hour = ((trips["start_us"] / 3.6e9 + LOCAL_UTC_OFFSET_H) % 24.0).to_numpy()
    assert ((hour >= 5.5) & (hour <= 11.0) | (hour >= 15.0)).all()
    assert local_days(trips).nunique() == 5


def test_three_days_with_a_weekend() -> None:
    options = SimOptions(seed=5, bikes=60, size_m=1500, coverage=0.25, start=FRIDAY, days=3,
                         thefts=1, clones=0, habits=Habits())  # fmt: skip
    result = run(options)
    trips = result.population.trips
    day = local_days(trips)
    per_day = trips.assign(day=day - day.min()).groupby("day")["kind"]
    kinds = {int(d): set(k) for d, k in per_day}
    assert sorted(kinds) == [0, 1, 2]
    assert "commute" in kinds[0]
    assert "commute" not in kinds[1] | kinds[2]  # Saturday and Sunday: errands only
    counts = per_day.size()
    assert counts[1] < counts[0]
    assert counts[2] < counts[0]
    assert len(result.passages) > 0
    assert len(result.reads) > 0


def test_same_seed_same_week(city: City, week: Population) -> None:
    again = generate_population(city, seed=13, bikes=80, start=MONDAY, hours=120, thefts=0,
                                habits=Habits())  # fmt: skip
    pd.testing.assert_frame_equal(again.trips, week.trips)
    pd.testing.assert_frame_equal(again.visits, week.visits)
    other = generate_population(city, seed=14, bikes=80, start=MONDAY, hours=120, thefts=0,
                                habits=Habits())  # fmt: skip
    assert not other.trips["start_us"].equals(week.trips["start_us"])


def test_a_day_is_the_same_in_a_longer_window(city: City, week: Population) -> None:
    # Draws are keyed by (bike, day): Wednesday's commutes take the same paths whether the
    # run starts on Monday or on Wednesday.
    wednesday = generate_population(city, seed=13, bikes=80, start=MONDAY + timedelta(days=2),
                                    hours=24, thefts=0, habits=Habits())  # fmt: skip

    def commute_paths(pop: Population, day: int) -> dict[tuple[int, int, int], tuple[int, ...]]:
        paths = pop.visits.groupby("trip_id")["node"].apply(tuple)
        trips = pop.trips[(pop.trips["kind"] == "commute") & (local_days(pop.trips) == day)]
        return {(int(t.bike_id), int(t.from_node), int(t.to_node)): paths.loc[t.trip_id]
                for t in trips.itertuples()}  # fmt: skip

    day = int(local_days(wednesday.trips).min())
    mine = commute_paths(wednesday, day)
    assert len(mine) > 50
    assert mine == commute_paths(week, day)


def _ridden(city: City, prefs: RoutePreferences | None) -> tuple[np.ndarray, np.ndarray]:
    """Edges ridden on 300 random trips (variant 0), and their lengths."""
    rng = np.random.default_rng(5)
    src, dst = rng.choice(city.n_nodes, 300), rng.choice(city.n_nodes, 300)
    src, dst = src[src != dst], dst[src != dst]
    paths = Router(city, seed=3, preferences=prefs).paths(np.zeros(len(src), int), src, dst)
    edges = np.concatenate(
        [city.edge_index(p[:-1], p[1:]) for p in map(paths.path, range(len(paths)))]
    )
    return edges, city.edge_length_m[edges]


def test_preferences_shift_route_choice(city: City) -> None:
    plain, plain_m = _ridden(city, None)
    felt, felt_m = _ridden(city, RoutePreferences(arterial=0.7))

    def km_share(edges: np.ndarray, length: np.ndarray, cls: str) -> float:
        return float(length[city.edge_class[edges] == cls].sum() / length.sum())

    assert km_share(felt, felt_m, "arterial") > km_share(plain, plain_m, "arterial") + 0.05
    assert km_share(felt, felt_m, "lane") > km_share(plain, plain_m, "lane")
    favoured = favoured_bridge_edges(city)
    assert len(favoured) > 0  # the generated city has a river

    def favoured_share(edges: np.ndarray) -> float:
        crossings = city.edge_class[edges] == "bridge"
        return float(np.isin(edges[crossings], favoured).sum() / crossings.sum())

    assert favoured_share(felt) > favoured_share(plain) + 0.2
    busy = busy_junctions(city, 3)
    assert np.isin(city.edge_dst[felt], busy).sum() < np.isin(city.edge_dst[plain], busy).sum() / 3


def test_neutral_preferences_change_nothing(city: City) -> None:
    neutral = RoutePreferences(lane=1, arterial=1, favoured_bridge=1, other_bridges=1,
                               busy_junction=1)  # fmt: skip
    plain, _ = _ridden(city, None)
    same, _ = _ridden(city, neutral)
    assert np.array_equal(plain, same)


def test_bad_habits_and_preferences_are_refused() -> None:
    with pytest.raises(ValueError, match="probabilities"):
        Habits(vary_prob=1.5)
    with pytest.raises(ValueError, match="factors"):
        RoutePreferences(lane=0.0)
