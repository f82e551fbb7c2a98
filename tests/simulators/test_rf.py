from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from sim_helpers import reader_at, straight_city, straight_traj

from citymap.network import City
from simulators.readers import SimReader
from simulators.rf import RfParams, simulate_reads
from simulators.riders import Population

CLEAN = RfParams(duplicate_prob=0.0, sensitivity_dbm=-200.0)


def test_same_seed_identical(city: City, readers: list[SimReader], traj: pd.DataFrame) -> None:
    reads, passages = simulate_reads(city, readers, traj, seed=7)
    reads2, passages2 = simulate_reads(city, readers, traj, seed=7)
    pd.testing.assert_frame_equal(reads, reads2)
    pd.testing.assert_frame_equal(passages, passages2)
    assert (pd.util.hash_pandas_object(reads) == pd.util.hash_pandas_object(reads2)).all()
    other, _ = simulate_reads(city, readers, traj, seed=8)
    assert not reads.equals(other)


def test_columns_and_order(city: City, readers: list[SimReader], traj: pd.DataFrame) -> None:
    reads, passages = simulate_reads(city, readers, traj, seed=7)
    assert len(reads) > 1000
    assert len(passages) > 50
    assert list(reads.columns) == [
        "reader_id", "antenna", "tag_id", "rssi_dbm", "read_at_us", "true_at_us",
    ]  # fmt: skip
    assert reads["antenna"].dtype == np.int16
    assert reads["rssi_dbm"].dtype == np.float32
    assert reads["read_at_us"].is_monotonic_increasing
    assert set(reads["tag_id"]) <= set(traj["tag_id"].astype(str))
    assert {
        "tag_id",
        "bike_id",
        "reader_id",
        "closest_at_us",
        "closest_distance_m",
        "heard",
    } <= set(passages.columns)
    ranges = {r.reader_id: r.range_m for r in readers}
    assert (passages["closest_distance_m"] <= passages["reader_id"].map(ranges)).all()
    assert (passages.loc[~passages["heard"], "reads"] == 0).all()


def test_theft_route_is_heard(
    city: City, readers: list[SimReader], traj: pd.DataFrame, population: Population
) -> None:
    _, passages = simulate_reads(city, readers, traj, seed=7)
    thief = population.thefts[0].bike_id
    assert passages[(passages["bike_id"] == thief) & passages["heard"]].shape[0] >= 3


def test_miss_rate_over_many_passages() -> None:
    road = straight_city()
    reader = reader_at(200.0, 2.0, miss_rate=0.2)
    _, passages = simulate_reads(road, [reader], straight_traj(2000), seed=1, params=CLEAN)
    assert len(passages) == 2000
    missed = 1.0 - passages["heard"].mean()
    assert missed == pytest.approx(0.2, abs=4 * np.sqrt(0.2 * 0.8 / 2000))


def test_reads_per_passage_match_rate_times_time_in_range() -> None:
    road = straight_city()
    reader = reader_at(200.0, 2.0)
    params = dataclasses.replace(CLEAN, read_rate_hz=8.0)
    reads, passages = simulate_reads(road, [reader], straight_traj(300), seed=2, params=params)
    in_range_s = (passages["exit_at_us"] - passages["enter_at_us"]).sum() / 1e6
    assert len(reads) == pytest.approx(8.0 * in_range_s, rel=0.03)
    # geometry: slant range 6 m, antenna 1.5 m above the tag, 2 m beside the road
    half_chord = np.sqrt(6.0**2 - 1.5**2 - 2.0**2)
    assert in_range_s / 300 == pytest.approx(2 * half_chord / 5.0, abs=0.15)


def test_rssi_falls_with_distance() -> None:
    road = straight_city()
    reader = reader_at(200.0, 1.0, range_m=8.0)
    params = dataclasses.replace(CLEAN, offaxis_loss_db=0.0)
    reads, _ = simulate_reads(road, [reader], straight_traj(200), seed=3, params=params)
    x = (reads["true_at_us"] % 600_000_000) / 1e6 * 5.0  # the riders ride at 5 m/s from x=0
    dist = np.sqrt((x - 200.0) ** 2 + 1.0**2 + 1.5**2)
    slope = np.polyfit(np.log10(dist), reads["rssi_dbm"].astype(float), 1)[0]
    assert slope == pytest.approx(-10 * params.path_loss_exponent, rel=0.1)
    near = reads["rssi_dbm"][dist < 3].mean()
    far = reads["rssi_dbm"][dist > 6].mean()
    assert near > far + 5


def test_sensitivity_and_duplicates() -> None:
    road = straight_city()
    reader = reader_at(200.0, 2.0)
    params = RfParams(sensitivity_dbm=-55.0, duplicate_prob=0.1)
    reads, _ = simulate_reads(road, [reader], straight_traj(100), seed=4, params=params)
    assert reads["rssi_dbm"].min() >= -55.0
    dup = reads.duplicated().mean()
    assert dup == pytest.approx(0.1 / 1.1, abs=0.03)


def test_two_antennas_tell_direction() -> None:
    road = straight_city()
    reader = reader_at(200.0, 2.0, antennas=2)
    reads, _ = simulate_reads(road, [reader], straight_traj(50), seed=5, params=CLEAN)
    x = (reads["true_at_us"] % 600_000_000) / 1e6 * 5.0
    # antenna 1 faces east (heading 90): it hears the tag once it is east of the reader
    assert (reads["antenna"][x > 201] == 1).all()
    assert (reads["antenna"][x < 199] == 2).all()


def test_reader_clock_offset_and_drift() -> None:
    road = straight_city()
    reader = reader_at(200.0, 2.0, clock_offset_s=1.5, clock_drift_ppm=20.0)
    params = dataclasses.replace(CLEAN, clock_ref_us=1_740_960_000_000_000)
    reads, _ = simulate_reads(road, [reader], straight_traj(20), seed=6, params=params)
    elapsed = reads["true_at_us"] - 1_740_960_000_000_000
    expected = 1_500_000 + 20e-6 * elapsed
    assert np.abs(reads["read_at_us"] - reads["true_at_us"] - expected).max() <= 1


def test_removed_tag_is_silent() -> None:
    road = straight_city()
    traj = straight_traj(10).assign(tag_present=True)
    traj.loc[traj["bike_id"] >= 5, "tag_present"] = False
    reads, passages = simulate_reads(road, [reader_at(200.0, 2.0)], traj, seed=7)
    assert passages["bike_id"].max() < 5
    assert reads["tag_id"].nunique() == 5
