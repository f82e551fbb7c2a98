"""Timing of node paths and sampling of positions along the road, vectorized over all trips.

:func:`time_paths` turns node paths into per-node arrival and departure times (relative to each
trip's start) from a speed per trip, a random speed factor per edge, slower lanes, and short
stops at intermediate junctions (traffic lights, gate barriers).

:func:`sample_trajectories` samples positions on a fixed absolute time grid (multiples of
``1/hz`` seconds since the epoch): a trip is a time-ordered run of "moving along edge e" and
"stopped at node n" segments, each segment gets the grid times up to the next segment's start
(counted, not searched, so the cost is linear in positions). Riders keep to the right: every
trip has a lateral offset to the right of the road's centre line (0.5-2.5 m, drawn in
:func:`simulators.riders.trajectories`).

All randomness is keyed (:mod:`simulators.keyed_random`) by trip and node index, so a trip
comes out the same whichever chunk of bikes it is planned with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from citymap.network import City
from simulators.keyed_random import KeyedRandom
from simulators.routing import FlatPaths

# (lane speed factor, stop probability at junctions, at gates, stop seconds low, high)
_MODES: dict[str, tuple[float, float, float, float, float]] = {
    "rider": (0.6, 0.30, 0.5, 3.0, 30.0),
    "thief": (0.8, 0.10, 0.2, 1.0, 8.0),
    "van": (0.4, 0.35, 0.5, 3.0, 30.0),
}
_S_JITTER, _S_STOP, _S_STOP_LEN = 11, 12, 13  # keyed-random streams (simulators.keyed_random)


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
    paths: FlatPaths,
    speed_mps: NDArray[np.float64],
    mode: str,
    rand: KeyedRandom,
    trip_key: NDArray[np.int64],
) -> TimedPaths:
    """Arrival/departure time at every node of every path, relative to the path's start.

    The random speed factor and stops of node ``k`` of a path are keyed by (``trip_key`` of the
    path, ``k``), so a trip is timed the same whichever batch of trips it is planned with.
    """
    lane_factor, p_junction, p_gate, stop_lo, stop_hi = _MODES[mode]
    lens = paths.lens
    node = paths.node
    trip = np.repeat(np.arange(len(lens)), lens)
    first_row = np.cumsum(lens) - lens
    seq = np.arange(len(node)) - first_row[trip]
    key = trip_key[trip]
    is_first = seq == 0
    is_last = np.zeros(len(node), bool)
    is_last[(first_row + lens - 1)[lens > 0]] = True
    prev = np.concatenate([[0], node[:-1]]).astype(np.int32)
    edge_in = np.where(is_first, -1, city.edge_index(prev, node)).astype(np.int32)
    if np.any(edge_in[~is_first] < 0):
        raise ValueError("a path uses a pair of nodes with no directed edge between them")
    e = np.maximum(edge_in, 0)
    factor = np.where(_edge_is_lane(city)[e], lane_factor, 1.0)
    jitter = 0.85 + 0.25 * rand.uniform(_S_JITTER, key, seq)
    speed = speed_mps[trip] * jitter * factor
    edge_s = np.where(is_first, 0.0, city.edge_length_m[e] / speed)
    # Riders stop at junctions (lights, give way) and gates, never at a bend of a road: an
    # imported street has a bend point every few meters.
    p_stop = np.where(_node_is_gate(city)[node], p_gate, p_junction)
    p_stop = np.where(city.node_kind[node] == "shape", 0.0, p_stop)
    stops = rand.uniform(_S_STOP, key, seq) < p_stop
    stop_len = stop_lo + (stop_hi - stop_lo) * rand.uniform(_S_STOP_LEN, key, seq)
    stop_s = np.where(stops & ~is_first & ~is_last, stop_len, 0.0)
    stop_prev = np.where(is_first, 0.0, np.concatenate([[0.0], stop_s[:-1]]))
    cum = np.cumsum(edge_s + stop_prev)
    arrive_s = cum - cum[first_row][trip] if len(node) else cum
    arrive_us = np.round(arrive_s * 1e6).astype(np.int64)
    depart_us = np.round((arrive_s + stop_s) * 1e6).astype(np.int64)
    duration = np.zeros(len(lens), np.int64)
    duration[lens > 0] = arrive_us[is_last]
    weights = np.where(is_first, 0.0, city.edge_length_m[e])
    length = np.bincount(trip, weights=weights, minlength=len(lens)).astype(np.float64)
    return TimedPaths(trip, node, edge_in, arrive_us, depart_us, duration, length)


def _edge_is_lane(city: City) -> NDArray[np.bool_]:
    # Comparing the object column once per call, not once per visited node (26 M at 100k bikes).
    return np.asarray(city.edge_class == "lane", bool)


def _node_is_gate(city: City) -> NDArray[np.bool_]:
    kind = city.node_kind
    return np.asarray((kind == "estate_gate") | (kind == "campus_gate"), bool)


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
    # Segments in time order without a sort: visit k is "stopped at node k" (if it stopped),
    # then "moving from node k to node k + 1" (unless it is the trip's last node).
    n = len(trip)
    has_next = np.zeros(n, bool)
    has_next[:-1] = trip[:-1] == trip[1:]
    nxt = np.minimum(np.arange(n) + 1, max(n - 1, 0))
    slot_ok = np.stack([depart > arrive, has_next], 1).ravel()
    v = np.repeat(np.arange(n), 2)[slot_ok]
    moving = np.tile([False, True], n)[slot_ok]
    seg_trip = trip[v]
    seg_t0 = np.where(moving, depart[v], arrive[v])
    seg_t1 = np.where(moving, arrive[nxt[v]], depart[v])
    seg_a = node[v]
    seg_b = np.where(moving, node[nxt[v]], node[v])
    seg_edge = np.where(moving, edge_in[nxt[v]], edge_in[v])
    # Grid samples in [t0 of this segment, t0 of the next one); the trip's last segment also
    # takes a sample at exactly the trip's end.
    last_of_trip = np.ones(len(v), bool)
    last_of_trip[:-1] = seg_trip[:-1] != seg_trip[1:]
    bound = np.where(last_of_trip, trip_end_us[seg_trip] + 1, np.roll(seg_t0, -1))
    lo = -(-np.maximum(seg_t0, trip_start_us[seg_trip]) // step)
    count = np.maximum(-(-bound // step) - lo, 0)
    # Everything that is constant along a segment is computed per segment, then expanded to
    # its samples with np.repeat (sequential, unlike a gather by segment index).
    xy = city.node_xy_m
    dur = np.maximum(seg_t1 - seg_t0, 1).astype(np.float64)
    edge = seg_edge
    d = xy[city.edge_dst[edge]] - xy[city.edge_src[edge]]
    unit = d / np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-9)[:, None]
    lat = lateral_m[seg_trip]
    pa, pb = xy[seg_a], xy[seg_b]
    vel = (pb - pa) / dur[:, None]  # m/µs; zero while stopped
    t_ref = int(seg_t0.min(initial=0))  # times relative to it keep the sums exact to ~1e-9 m
    right = np.stack([unit[:, 1], -unit[:, 0]], axis=1)
    base = pa + lat[:, None] * right - vel * (seg_t0 - t_ref).astype(np.float64)[:, None]
    speed = np.where(seg_a != seg_b, city.edge_length_m[edge] / dur * 1e6, 0.0)
    first = np.cumsum(count) - count
    t = np.repeat((lo - first) * step, count) + np.arange(int(count.sum()), dtype=np.int64) * step
    tf = (t - t_ref).astype(np.float64)
    bike_of_trip = np.zeros(len(trip_start_us), np.int32)
    bike_of_trip[trip] = bike
    return pd.DataFrame(
        {
            "bike_id": np.repeat(bike_of_trip[seg_trip], count),
            "trip_id": np.repeat(seg_trip.astype(np.int32), count),
            "t_us": t,
            "x_m": np.repeat(base[:, 0], count) + np.repeat(vel[:, 0], count) * tf,
            "y_m": np.repeat(base[:, 1], count) + np.repeat(vel[:, 1], count) * tf,
            "edge": np.repeat(edge.astype(np.int32), count),
            "speed_mps": np.repeat(speed, count),
        }
    )
