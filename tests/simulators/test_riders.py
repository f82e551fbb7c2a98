from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sim_helpers import START

from citymap.network import City
from simulators.riders import Population, generate_population, to_us, trajectories, trip_node_times


def test_same_seed_identical(city: City, population: Population, traj: pd.DataFrame) -> None:
    again = generate_population(city, seed=13, bikes=150, start=START, hours=1.5)
    assert again.bikes == population.bikes
    assert again.thefts == population.thefts
    pd.testing.assert_frame_equal(again.trips, population.trips)
    pd.testing.assert_frame_equal(again.visits, population.visits)
    traj2 = trajectories(city, again, seed=14)
    pd.testing.assert_frame_equal(traj2, traj)
    assert (pd.util.hash_pandas_object(traj2).to_numpy() == pd.util.hash_pandas_object(traj)).all()


def test_bikes_are_registrable(population: Population) -> None:
    bikes = population.bikes
    assert len({b.tag_id for b in bikes}) == len(bikes)
    assert all(len(b.tag_id) == 24 and b.tag_id == b.tag_id.upper() for b in bikes)
    assert len({b.plate for b in bikes}) == len(bikes)
    assert all(b.plate.isascii() and b.plate.startswith("ZB") for b in bikes)
    assert [b.bike_id for b in bikes] == list(range(len(bikes)))


def test_clones_share_a_tag(city: City) -> None:
    pop = generate_population(city, seed=1, bikes=20, start=START, hours=0.5, clones=2)
    assert len({b.tag_id for b in pop.bikes}) == 18


def test_cloned_tags_ride_at_the_same_time_as_their_originals(city: City) -> None:
    # Four copies: the first three start with their original's ride, the fourth once the
    # original's first ride is over (parked). Every other bike's day is unchanged.
    pop = generate_population(city, seed=1, bikes=60, start=START, hours=1.0, clones=4)
    plain = generate_population(city, seed=1, bikes=60, start=START, hours=1.0, clones=0)
    trips = pop.trips
    for k, copy in enumerate(range(59, 55, -1)):
        (original,) = [b.bike_id for b in pop.bikes[:56] if b.tag_id == pop.bikes[copy].tag_id]
        mine = trips[trips["bike_id"] == copy].sort_values("start_us").iloc[0]
        theirs = trips[trips["bike_id"] == original].sort_values("start_us").iloc[0]
        if k < 3:  # riding at the same time
            assert mine["start_us"] < theirs["end_us"]
            assert theirs["start_us"] < mine["end_us"]
        else:  # this seed's original ends its ride early enough for the copy to follow
            assert mine["start_us"] > theirs["end_us"]
    honest = trips[trips["bike_id"] < 56].reset_index(drop=True)
    before = plain.trips[plain.trips["bike_id"] < 56].reset_index(drop=True)
    pd.testing.assert_frame_equal(honest.drop(columns="trip_id"), before.drop(columns="trip_id"))


def test_theft_early_in_window(city: City, population: Population) -> None:
    (theft,) = population.thefts
    end = START + timedelta(hours=1.5)
    assert START <= theft.stolen_at <= START + timedelta(hours=1.5 * 0.2)
    trips = population.trips[population.trips["bike_id"] == theft.bike_id]
    ride = trips[trips["kind"] == "theft"].iloc[0]
    assert ride["start_us"] == to_us(theft.stolen_at)
    assert ride["from_node"] == theft.from_node
    assert trips["end_at"].iloc[-1] < end + timedelta(hours=1)
    # the owner does not ride the bike after the theft
    owner = trips[trips["kind"].isin(["commute", "errand"])]
    assert (owner["end_us"] < to_us(theft.stolen_at)).all()


@pytest.mark.parametrize("seed", range(6))
def test_van_thefts_reach_the_fence(city: City, seed: int) -> None:
    pop = generate_population(
        city, seed=seed, bikes=30, start=START, hours=1.0, thefts=2, van_prob=0.5
    )
    for theft in pop.thefts:
        trips = pop.trips[pop.trips["bike_id"] == theft.bike_id]
        kinds = trips["kind"].tolist()
        assert kinds[-1] in ("theft", "van")
        assert trips["to_node"].iloc[-1] == theft.fence_node
        assert theft.by_van == ("van" in kinds)


def test_trips_are_sequential_and_paths_follow_edges(city: City, population: Population) -> None:
    trips = population.trips
    assert str(trips["start_at"].dtype).endswith("UTC]")
    same_bike = trips["bike_id"].to_numpy()[1:] == trips["bike_id"].to_numpy()[:-1]
    gap = trips["start_us"].to_numpy()[1:] - trips["end_us"].to_numpy()[:-1]
    assert (gap[same_bike] > 0).all()
    cont = trips["from_node"].to_numpy()[1:] == trips["to_node"].to_numpy()[:-1]
    assert cont[same_bike].all()
    v = trip_node_times(population)
    inner = v["seq"].to_numpy() > 0
    e = v["edge_in"].to_numpy()[inner]
    assert np.array_equal(city.edge_dst[e], v["node"].to_numpy()[inner])
    prev = v["node"].to_numpy()[np.flatnonzero(inner) - 1]
    assert np.array_equal(city.edge_src[e], prev)
    assert (v["depart_us"] >= v["arrive_us"]).all()
    assert (np.diff(v["arrive_us"].to_numpy())[inner[1:]] > 0).all()


def test_trajectory_speeds_and_steps(traj: pd.DataFrame, population: Population) -> None:
    assert list(traj.columns[:7]) == [
        "bike_id", "trip_id", "t_us", "x_m", "y_m", "edge", "speed_mps",
    ]  # fmt: skip
    assert traj["t_us"].dtype == np.int64
    assert traj["edge"].dtype == np.int32
    assert (traj["t_us"] % 1_000_000 == 0).all()
    same = traj["trip_id"].to_numpy()[1:] == traj["trip_id"].to_numpy()[:-1]
    step = np.hypot(np.diff(traj["x_m"].to_numpy()), np.diff(traj["y_m"].to_numpy()))[same]
    dt = np.diff(traj["t_us"].to_numpy())[same]
    assert (dt == 1_000_000).all()
    assert step.max() < 17.0  # nothing faster than a van at 60 km/h (plus the lane offset)
    rider = traj[traj["bike_id"] != population.thefts[0].bike_id]
    assert rider["speed_mps"].max() < 25 / 3.6 * 1.15
    assert (rider["speed_mps"] == 0).mean() > 0.02  # stops at junctions


def test_naive_start_rejected(city: City) -> None:
    with pytest.raises(ValueError, match="naive"):
        generate_population(city, seed=1, bikes=5, start=datetime(2025, 1, 1), hours=1)
