"""Ground-truth tables of a population: one row per trip, one row per node visited.

Trips are planned in parts (the owners' trips, then each theft's legs), each part a metadata
frame plus :class:`simulators.motion.TimedPaths`; :func:`trip_tables` merges the parts, numbers
trips in (bike_id, start) order and turns relative times into absolute UTC microseconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from simulators.motion import TimedPaths


def subset_paths(tp: TimedPaths, which: NDArray[np.int64]) -> TimedPaths:
    """The paths ``which`` of ``tp``, renumbered 0..len(which)-1."""
    new = np.full(len(tp.duration_us), -1, np.int64)
    new[which] = np.arange(len(which))
    rows = new[tp.trip] >= 0
    return TimedPaths(new[tp.trip][rows], tp.node[rows], tp.edge_in[rows], tp.arrive_us[rows],
                      tp.depart_us[rows], tp.duration_us[which], tp.length_m[which])  # fmt: skip


def trip_tables(parts: list[tuple[pd.DataFrame, TimedPaths]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Trips and visits tables, trips numbered in (bike_id, start) order."""
    base = 0
    metas, vis = [], []
    for meta, tp in parts:
        m = meta.reset_index(drop=True)
        m["start_us"] = m["start_us"].astype(np.int64)
        m["end_us"] = m["start_us"].to_numpy() + tp.duration_us
        m["length_m"] = tp.length_m
        m["part_trip"] = np.arange(len(m)) + base
        start = m["start_us"].to_numpy()[tp.trip]
        v = pd.DataFrame(
            {
                "part_trip": tp.trip + base,
                "node": tp.node,
                "edge_in": tp.edge_in,
                "arrive_us": start + tp.arrive_us,
                "depart_us": start + tp.depart_us,
            }
        )
        base += len(m)
        metas.append(m)
        vis.append(v)
    trips = pd.concat(metas, ignore_index=True)
    order = np.lexsort((trips["start_us"].to_numpy(), trips["bike_id"].to_numpy()))
    trips = trips.iloc[order].reset_index(drop=True)
    trip_id = np.empty(len(trips), np.int32)
    trip_id[trips["part_trip"].to_numpy()] = np.arange(len(trips), dtype=np.int32)
    visits = pd.concat(vis, ignore_index=True)
    visits["trip_id"] = trip_id[visits["part_trip"].to_numpy()]
    visits["bike_id"] = trips["bike_id"].to_numpy()[visits["trip_id"].to_numpy()]
    visits = visits.sort_values(["trip_id", "arrive_us"], kind="stable").reset_index(drop=True)
    visits["seq"] = visits.groupby("trip_id").cumcount().astype(np.int32)
    visits = visits[["trip_id", "bike_id", "seq", "node", "edge_in", "arrive_us", "depart_us"]]
    visits = visits.astype(
        {
            "trip_id": np.int32,
            "bike_id": np.int32,
            "node": np.int32,
            "edge_in": np.int32,
            "arrive_us": np.int64,
            "depart_us": np.int64,
        }
    )
    trips = pd.DataFrame({
        "trip_id": np.arange(len(trips), dtype=np.int32),
        "bike_id": trips["bike_id"].to_numpy().astype(np.int32),
        "kind": trips["kind"].astype(str).to_numpy(),
        "start_at": pd.to_datetime(trips["start_us"].to_numpy(), unit="us", utc=True),
        "end_at": pd.to_datetime(trips["end_us"].to_numpy(), unit="us", utc=True),
        "start_us": trips["start_us"].to_numpy().astype(np.int64),
        "end_us": trips["end_us"].to_numpy().astype(np.int64),
        "from_node": trips["from_node"].to_numpy().astype(np.int32),
        "to_node": trips["to_node"].to_numpy().astype(np.int32),
        "length_m": trips["length_m"].to_numpy().astype(np.float64),
    })  # fmt: skip
    return trips, visits
