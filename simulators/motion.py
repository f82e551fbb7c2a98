"""Timing of node paths and sampling of positions along the road, vectorized over all trips.

:func:`time_paths` turns node paths into per-node arrival and departure times (relative to each
trip's start) from a speed per trip, a random speed factor per edge, slower lanes, and short
stops at intermediate junctions (traffic lights, gate barriers).

:func:`sample_trajectories` samples positions on a fixed absolute time grid (multiples of
``1/hz`` seconds since the epoch) by locating every sample time in its trip's sorted list of
"moving along edge e" and "stopped at node n" segments with one ``searchsorted``. Riders keep
to the right: every trip has a lateral offset
to the right of the road's centre line (0.5-2.5 m, drawn in :func:`simulators.riders.trajectories`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from simulators.city import City

# (lane speed factor, stop probability at junctions, at gates, stop seconds low, high)
_MODES: dict[str, tuple[float, float, float, float, float]] = {
    "rider": (0.6, 0.30, 0.5, 3.0, 30.0),
    "thief": (0.8, 0.10, 0.2, 1.0, 8.0),
    "van": (0.4, 0.35, 0.5, 3.0, 30.0),
}


@dataclass(frozen=True)
class TimedPaths:
    """Per-visit arrays for a list of paths (``trip`` indexes the list); times relative, µs."""

    trip: NDArray[np.int64]
    node: NDArray[np.int32]
    edge_in: NDArray[np.int32]
    arrive_us: NDArray[np.int64]
    depart_us: NDArray[np.int64]
    duration_us: NDArray[np.int64]
    length_m: NDArray[np.float64]


def time_paths(
    city: City,
    paths: list[NDArray[np.int32]],
    speed_mps: NDArray[np.float64],
    mode: str,
    rng: np.random.Generator,
) -> TimedPaths:
    """Arrival/departure time at every node of every path, relative to the path's start."""
    lane_factor, p_junction, p_gate, stop_lo, stop_hi = _MODES[mode]
    lens = np.fromiter((len(p) for p in paths), dtype=np.int64, count=len(paths))
    node = np.concatenate(paths).astype(np.int32) if paths else np.empty(0, np.int32)
    trip = np.repeat(np.arange(len(paths)), lens)
    first_row = np.cumsum(lens) - lens
    is_first = np.zeros(len(node), bool)
    is_first[first_row[lens > 0]] = True
    is_last = np.zeros(len(node), bool)
    is_last[(first_row + lens - 1)[lens > 0]] = True
    prev = np.concatenate([[0], node[:-1]]).astype(np.int32)
    edge_in = np.where(is_first, -1, city.edge_index(prev, node)).astype(np.int32)
    if np.any(edge_in[~is_first] < 0):
        raise ValueError("a path uses a pair of nodes with no directed edge between them")
    e = np.maximum(edge_in, 0)
    factor = np.where(city.edge_class[e] == "lane", lane_factor, 1.0)
    speed = speed_mps[trip] * rng.uniform(0.85, 1.1, size=len(node)) * factor
    edge_s = np.where(is_first, 0.0, city.edge_length_m[e] / speed)
    kind = city.node_kind[node]
    gate = (kind == "estate_gate") | (kind == "campus_gate")
    p_stop = np.where(gate, p_gate, p_junction)
    stops = rng.random(len(node)) < p_stop
    stop_s = np.where(stops & ~is_first & ~is_last, rng.uniform(stop_lo, stop_hi, len(node)), 0.0)
    stop_prev = np.where(is_first, 0.0, np.concatenate([[0.0], stop_s[:-1]]))
    cum = np.cumsum(edge_s + stop_prev)
    arrive_s = cum - cum[first_row][trip] if len(node) else cum
    arrive_us = np.round(arrive_s * 1e6).astype(np.int64)
    depart_us = np.round((arrive_s + stop_s) * 1e6).astype(np.int64)
    duration = np.zeros(len(paths), np.int64)
    duration[lens > 0] = arrive_us[is_last]
    weights = np.where(is_first, 0.0, city.edge_length_m[e])
    length = np.bincount(trip, weights=weights, minlength=len(paths)).astype(np.float64)
    return TimedPaths(trip, node, edge_in, arrive_us, depart_us, duration, length)


def sample_trajectories(
    city: City,
    visits: pd.DataFrame,
    trip_start_us: NDArray[np.int64],
    trip_end_us: NDArray[np.int64],
    lateral_m: NDArray[np.float64],
    hz: float,
) -> pd.DataFrame:
    """Positions at every multiple of ``1/hz`` s within each trip.

    ``visits`` is sorted by (trip_id, seq) with dense trip ids ``0..T-1`` (columns trip_id,
    bike_id, node, edge_in, arrive_us, depart_us, absolute µs); ``trip_start_us``,
    ``trip_end_us`` and ``lateral_m`` are per trip. Returns bike_id, trip_id, t_us, x_m, y_m,
    edge, speed_mps sorted by (trip_id, t_us).
    """
    step = round(1e6 / hz)
    if step <= 0:
        raise ValueError("hz must be positive and at most 1 MHz")
    trip = visits["trip_id"].to_numpy().astype(np.int64)
    node = visits["node"].to_numpy()
    edge_in = visits["edge_in"].to_numpy()
    arrive = visits["arrive_us"].to_numpy()
    depart = visits["depart_us"].to_numpy()
    bike = visits["bike_id"].to_numpy()
    moving = np.flatnonzero(trip[:-1] == trip[1:])
    stopped = np.flatnonzero(depart > arrive)
    seg_trip = np.concatenate([trip[moving], trip[stopped]])
    seg_t0 = np.concatenate([depart[moving], arrive[stopped]])
    seg_t1 = np.concatenate([arrive[moving + 1], depart[stopped]])
    seg_a = np.concatenate([node[moving], node[stopped]])
    seg_b = np.concatenate([node[moving + 1], node[stopped]])
    seg_edge = np.concatenate([edge_in[moving + 1], edge_in[stopped]])
    span = int(np.max(trip_end_us - trip_start_us, initial=0)) + 1
    seg_key = seg_trip * span + (seg_t0 - trip_start_us[seg_trip])
    order = np.argsort(seg_key, kind="stable")
    seg_key, seg_trip, seg_t0, seg_t1 = (
        seg_key[order],
        seg_trip[order],
        seg_t0[order],
        seg_t1[order],
    )
    seg_a, seg_b, seg_edge = seg_a[order], seg_b[order], seg_edge[order]

    first = -(-trip_start_us // step) * step
    last = trip_end_us // step * step
    count = np.maximum((last - first) // step + 1, 0)
    s_trip = np.repeat(np.arange(len(count)), count)
    offset = np.arange(len(s_trip)) - np.repeat(np.cumsum(count) - count, count)
    t = first[s_trip] + offset * step
    key = s_trip * span + (t - trip_start_us[s_trip])
    seg = np.clip(np.searchsorted(seg_key, key, side="right") - 1, 0, None)

    dur = (seg_t1 - seg_t0)[seg]
    frac = np.where(dur > 0, (t - seg_t0[seg]) / np.maximum(dur, 1), 0.0).clip(0.0, 1.0)
    xy = city.node_xy_m
    pa, pb = xy[seg_a[seg]], xy[seg_b[seg]]
    pos = pa + frac[:, None] * (pb - pa)
    edge = seg_edge[seg]
    d = xy[city.edge_dst[edge]] - xy[city.edge_src[edge]]
    unit = d / np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-9)[:, None]
    right = np.stack([unit[:, 1], -unit[:, 0]], axis=1)
    pos += lateral_m[s_trip][:, None] * right
    is_move = seg_a[seg] != seg_b[seg]
    speed = np.where(is_move, city.edge_length_m[edge] / np.maximum(dur, 1) * 1e6, 0.0)
    bike_of_trip = np.zeros(len(count), np.int32)
    bike_of_trip[trip] = bike
    return pd.DataFrame(
        {
            "bike_id": bike_of_trip[s_trip].astype(np.int32),
            "trip_id": s_trip.astype(np.int32),
            "t_us": t.astype(np.int64),
            "x_m": pos[:, 0].astype(np.float64),
            "y_m": pos[:, 1].astype(np.float64),
            "edge": edge.astype(np.int32),
            "speed_mps": speed.astype(np.float64),
        }
    )
