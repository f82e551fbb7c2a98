"""Hand-built scenes for the read-model tests: a straight road, riders on it, one reader."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from citymap.network import City
from simulators.readers import SimReader

START = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)  # 08:00 local time, morning peak


def straight_city(length_m: float = 400.0) -> City:
    """Two nodes joined by a two-way road along the x axis (edge 0 east, edge 1 west)."""
    xy = np.array([[0.0, 0.0], [length_m, 0.0]])
    return City(
        origin_lat=30.05,
        origin_lon=121.15,
        node_xy_m=xy,
        node_lonlat=np.array([[121.15, 30.05], [121.154, 30.05]]),
        edge_src=np.array([0, 1], np.int32),
        edge_dst=np.array([1, 0], np.int32),
        edge_length_m=np.array([length_m, length_m]),
        edge_class=np.array(["street", "street"], dtype=object),
        edge_oneway=np.array([False, False]),
        node_kind=np.array(["junction", "junction"], dtype=object),
    )


def straight_traj(
    bikes: int, *, speed_mps: float = 5.0, lateral_m: float = 0.0, length_m: float = 400.0
) -> pd.DataFrame:
    """``bikes`` bikes each riding east along the straight road once, 1 Hz, 10 min apart."""
    steps = int(length_m / speed_mps)
    t_rel = np.arange(steps + 1) * 1_000_000
    base = 1_740_960_000_000_000 + np.arange(bikes) * 600_000_000
    n = len(t_rel)
    bike = np.repeat(np.arange(bikes), n)
    return pd.DataFrame(
        {
            "bike_id": bike.astype(np.int32),
            "trip_id": bike.astype(np.int32),
            "t_us": (base[bike] + np.tile(t_rel, bikes)).astype(np.int64),
            "x_m": np.tile(t_rel / 1e6 * speed_mps, bikes),
            "y_m": np.full(bikes * n, -lateral_m),
            "edge": np.zeros(bikes * n, np.int32),
            "speed_mps": np.full(bikes * n, speed_mps),
            "tag_id": [f"E28011{b:018X}" for b in bike],
        }
    )


def reader_at(
    x_m: float, y_m: float, *, miss_rate: float = 0.0, antennas: int = 1, **kw: float
) -> SimReader:
    """A reader at (x, y) facing east (antenna 1) and west (antenna 2 if present)."""
    headings = (90.0, 270.0)[:antennas]
    fields: dict[str, float] = {"range_m": 6.0, "clock_offset_s": 0.0, "clock_drift_ppm": 0.0}
    fields.update(kw)
    return SimReader(
        reader_id="R0001", node=0, x_m=x_m, y_m=y_m, lat=30.05, lon=121.15, antennas=antennas,
        antenna_heading_deg=headings, protocol="impinj-iot", range_m=fields["range_m"],
        miss_rate=miss_rate, clock_offset_s=fields["clock_offset_s"],
        clock_drift_ppm=fields["clock_drift_ppm"],
    )  # fmt: skip
