from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from sim_helpers import reader_at, straight_city, straight_traj

from simulators.readers import in_outage, outage_schedule
from simulators.rf import RfParams, simulate_reads

ACTIVE = RfParams(duplicate_prob=0.0, beacon_loss=0.2, active_sensitivity_dbm=-200.0)


def _active_scene(bikes: int, **reader: float) -> tuple[pd.DataFrame, object]:
    traj = straight_traj(bikes, length_m=600.0).assign(tag_active=True)
    traj["tag_id"] = [f"A7{b:014X}" for b in traj["bike_id"]]
    r = dataclasses.replace(reader_at(300.0, 5.0, **reader), protocol="tagtrail-active")
    return traj, r


def test_active_reads_per_passage_follow_beacon_period_and_loss() -> None:
    traj, reader = _active_scene(400, range_m=50.0)
    reads, passages = simulate_reads(straight_city(600.0), [reader], traj, seed=1, params=ACTIVE)
    in_range_s = (passages["exit_at_us"] - passages["enter_at_us"]) / 1e6
    expected = in_range_s.sum() / ACTIVE.beacon_period_s * (1 - ACTIVE.beacon_loss)
    assert len(reads) == pytest.approx(expected, rel=0.03)
    assert in_range_s.mean() == pytest.approx(2 * np.sqrt(50**2 - 1.5**2 - 5**2) / 5.0, rel=0.02)


def test_active_miss_rate_and_uhf_readers_do_not_hear_active_tags() -> None:
    traj, reader = _active_scene(1500, range_m=40.0, miss_rate=0.35)
    uhf = dataclasses.replace(reader_at(300.0, 2.0), reader_id="R0002")
    _reads, passages = simulate_reads(straight_city(600.0), [reader, uhf], traj, seed=2)
    assert set(passages["reader_id"]) == {"R0001"}
    missed = 1 - passages["heard"].mean()
    assert missed == pytest.approx(0.35, abs=4 * np.sqrt(0.35 * 0.65 / 1500))


def test_active_rssi_curve() -> None:
    traj, reader = _active_scene(300, range_m=80.0)
    params = dataclasses.replace(ACTIVE, offaxis_loss_db=0.0)
    reads, _ = simulate_reads(straight_city(600.0), [reader], traj, seed=3, params=params)
    x = (reads["true_at_us"] % 600_000_000) / 1e6 * 5.0
    dist = np.sqrt((x - 300.0) ** 2 + 5.0**2 + 1.5**2)
    slope, at_1m = np.polyfit(np.log10(dist), reads["rssi_dbm"].astype(float), 1)
    assert slope == pytest.approx(-10 * params.active_path_loss_exponent, rel=0.1)
    assert at_1m == pytest.approx(params.active_rssi_at_1m_dbm, abs=2.0)
    resid = reads["rssi_dbm"] - (at_1m + slope * np.log10(dist))
    assert resid.std() == pytest.approx(params.active_shadowing_sigma_db, rel=0.1)


def test_outages_silence_a_reader() -> None:
    traj = straight_traj(40)
    reader = reader_at(200.0, 2.0)
    t0 = int(traj["t_us"].min())
    outages = pd.DataFrame(
        {
            "reader_id": ["R0001"],
            "start_us": [t0 + 5 * 600_000_000],
            "end_us": [t0 + 10 * 600_000_000],
        }
    )
    reads, passages = simulate_reads(straight_city(), [reader], traj, seed=4, outages=outages)
    dark = (passages["bike_id"] >= 5) & (passages["bike_id"] < 10)
    assert not passages.loc[dark, "heard"].any()
    assert passages.loc[~dark, "heard"].mean() > 0.8
    assert not in_outage(
        outages, ["R0001"], np.zeros(len(reads), np.int64), reads["true_at_us"].to_numpy()
    ).any()


def test_outage_schedule_is_seeded_and_disjoint(readers: list) -> None:
    a = outage_schedule(readers, seed=1, start_us=0, end_us=86_400_000_000 * 7, per_reader_day=2)
    b = outage_schedule(readers, seed=1, start_us=0, end_us=86_400_000_000 * 7, per_reader_day=2)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) > len(readers)
    for _, g in a.groupby("reader_id"):
        assert (g["start_us"].to_numpy()[1:] > g["end_us"].to_numpy()[:-1]).all()
