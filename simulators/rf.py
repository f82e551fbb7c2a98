"""Passive-UHF read model: which tags each reader hears, when, on which antenna, how loud.

Steps (all vectorized over positions, never a Python loop per read):

1. Candidate trajectory segments near readers: a grid lookup (:mod:`simulators.rf_near`) finds
   the points within a reader's range plus a step's reach (at least 25 m, so the candidates do
   not depend on which bikes share a chunk); of the segments touching them, only those whose
   path can come within range (an exact ellipse bound) are kept.
2. Those segments are resampled at ``hz`` along the road: when two samples lie on different
   edges the bike went round the junction corner (the mitred corner of its lane), so the fine
   positions follow the corner instead of cutting it, which matters because readers stand at
   junctions.
3. A *passage* is one run of in-range fine samples of one bike at one reader (slant distance,
   antenna above tag, at most ``range_m``; runs closer than ``passage_gap_s`` merge). Each
   passage is missed entirely with the reader's ``miss_rate`` (tag detuned by a body or
   shopping bag, reader busy).
4. A heard passage yields reads as a Poisson process at ``read_rate_hz`` while in range, with
   RSSI = rssi_at_1m - 10 n log10(d) - off-axis loss + N(0, sigma); reads below
   ``sensitivity_dbm`` are dropped and a few are reported twice (``duplicate_prob``).
5. Two-antenna readers report the antenna on whose side of the reader (along the road) the
   tag is. Reader time is true time + offset + drift * (true - ``clock_ref_us``).

Active 2.4 GHz tags (``tag_active`` in the trajectory) are heard only by active readers
(:data:`simulators.readers.ACTIVE_PROTOCOLS`) and passive tags only by UHF readers. An active
tag beacons every ``beacon_period_s`` at a phase of its own (rounded to the 1/``hz`` grid);
each beacon in range is one read unless it is lost (``beacon_loss``: collisions, the rider's
body) or below the active sensitivity, with its own path-loss constants.

Every random draw is keyed by (bike, reader, time[, read number]) with
:mod:`simulators.keyed_random`, so a bike's reads do not depend on the other bikes simulated
with it.

Reads that fall in a reader's outage (``outages``, see
:func:`simulators.readers.outage_schedule`) are never reported, and a passage whose closest
approach falls in one is not heard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from citymap.network import City
from simulators.keyed_random import KeyedRandom
from simulators.readers import ACTIVE_PROTOCOLS, SimReader, in_outage
from simulators.rf_near import near_pairs

READ_COLUMNS = ("reader_id", "antenna", "tag_id", "rssi_dbm", "read_at_us", "true_at_us")
PASSAGE_COLUMNS = (
    "tag_id", "bike_id", "reader_id", "closest_at_us", "closest_distance_m", "heard",
    "enter_at_us", "exit_at_us", "reads",
)  # fmt: skip


_REACH_M = 25.0
_S_HEARD, _S_READS, _S_PHASE, _S_BEACON, _S_OFFSET, _S_RSSI, _S_DUP = range(31, 38)


@dataclass(frozen=True)
class RfParams:
    """Read-model parameters. Distances in meters, powers in dBm/dB, rates in Hz."""

    read_rate_hz: float = 8.0
    path_loss_exponent: float = 2.2
    rssi_at_1m_dbm: float = -40.0
    shadowing_sigma_db: float = 2.0
    sensitivity_dbm: float = -70.0
    duplicate_prob: float = 0.02
    antenna_height_m: float = 2.5
    tag_height_m: float = 1.0
    offaxis_loss_db: float = 3.0  # at 180 degrees from boresight, half of it at 90 degrees
    passage_gap_s: float = 3.0
    clock_ref_us: int | None = None  # when reader clocks were set; None: first trajectory time
    # Active 2.4 GHz tags and readers.
    beacon_period_s: float = 1.0
    beacon_loss: float = 0.1
    active_rssi_at_1m_dbm: float = -40.0
    active_path_loss_exponent: float = 2.5
    active_shadowing_sigma_db: float = 4.0
    active_sensitivity_dbm: float = -95.0


def _empty_reads() -> pd.DataFrame:
    return pd.DataFrame({
        "reader_id": pd.Series([], dtype=str), "antenna": pd.Series([], dtype=np.int16),
        "tag_id": pd.Series([], dtype=str), "rssi_dbm": pd.Series([], dtype=np.float32),
        "read_at_us": pd.Series([], dtype=np.int64), "true_at_us": pd.Series([], dtype=np.int64),
    })  # fmt: skip


@dataclass(frozen=True)
class _Traj:
    """Trajectory columns as typed arrays."""

    x: NDArray[np.float64]
    y: NDArray[np.float64]
    t: NDArray[np.int64]
    edge: NDArray[np.int64]
    trip: NDArray[np.int64]
    bike: NDArray[np.int64]
    tag: NDArray[np.int64]
    active: NDArray[np.bool_]


def _corners(
    city: City, traj: _Traj, seg: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Per segment (sample k -> k + 1): its start, the corner it goes round and its end, as
    ``(3, n, 2)`` points; a segment on one edge has its corner at its start."""
    xy = city.node_xy_m
    p0 = np.stack([traj.x[seg], traj.y[seg]], 1)
    p1 = np.stack([traj.x[seg + 1], traj.y[seg + 1]], 1)
    e0, e1 = traj.edge[seg], traj.edge[seg + 1]
    turn = (e0 != e1) & (city.edge_dst[e0] == city.edge_src[e1])

    def right_normal(e: NDArray[np.int64]) -> NDArray[np.float64]:
        d = xy[city.edge_dst[e]] - xy[city.edge_src[e]]
        u = d / np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-9)[:, None]
        return np.stack([u[:, 1], -u[:, 0]], 1)

    n0, n1 = right_normal(e0), right_normal(e1)
    offset = np.einsum("ij,ij->i", p0 - xy[city.edge_src[e0]], n0)
    denom = 1.0 + np.einsum("ij,ij->i", n0, n1)
    miter = np.where(denom[:, None] > 0.3, (n0 + n1) / np.maximum(denom, 0.3)[:, None], n0)
    corner = np.where(turn[:, None], xy[city.edge_dst[e0]] + offset[:, None] * miter, p0)
    return p0, corner, p1


def _fine_positions(
    p0: NDArray[np.float64],
    corner: NDArray[np.float64],
    p1: NDArray[np.float64],
    t0: NDArray[np.int64],
    t1: NDArray[np.int64],
    count: NDArray[np.int64],
    t: NDArray[np.int64],
) -> NDArray[np.float64]:
    """Positions at times ``t`` along each segment's path p0 -> corner -> p1 (``count``
    consecutive times per segment), at constant speed between the segment's sample times."""
    d1 = np.hypot(*(corner - p0).T)
    d2 = np.hypot(*(p1 - corner).T)
    rate = (d1 + d2) / np.maximum(t1 - t0, 1)
    along = (t - np.repeat(t0, count)) * np.repeat(rate, count)
    d1r = np.repeat(d1, count)
    first = along <= d1r
    # Unit steps per segment, expanded with repeat (segments' samples are consecutive).
    u1 = (corner - p0) / np.maximum(d1, 1e-9)[:, None]
    u2 = (p1 - corner) / np.maximum(d2, 1e-9)[:, None]
    start = np.where(first[:, None], np.repeat(p0, count, 0), np.repeat(corner, count, 0))
    unit = np.where(first[:, None], np.repeat(u1, count, 0), np.repeat(u2, count, 0))
    return np.asarray(start + np.where(first, along, along - d1r)[:, None] * unit, np.float64)


def simulate_reads(
    city: City,
    readers: Sequence[SimReader],
    traj: pd.DataFrame,
    *,
    seed: int,
    params: RfParams = RfParams(),  # frozen dataclass: a safe default
    hz: float = 10.0,
    outages: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reads every reader reports for the bikes in ``traj``, and the true passages.

    ``traj`` is :func:`simulators.riders.trajectories` output (bike_id, trip_id, t_us, x_m,
    y_m, edge, tag_id; rows with ``tag_present`` False are ignored). Returns ``(reads,
    passages)``: reads with columns reader_id (categorical), antenna (int16, 1-based), tag_id
    (categorical), rssi_dbm (float32), read_at_us (int64, reader clock), true_at_us (int64),
    sorted by read_at_us; passages with tag_id, bike_id, reader_id, closest_at_us (true time of
    closest approach), closest_distance_m (horizontal), heard, enter_at_us, exit_at_us, reads.
    """
    rand = KeyedRandom(seed)
    step = round(1e6 / hz)
    if "tag_present" in traj.columns:
        traj = traj[traj["tag_present"].to_numpy()]
    tags = traj["tag_id"].astype("category")
    tr = _Traj(
        x=traj["x_m"].to_numpy(np.float64),
        y=traj["y_m"].to_numpy(np.float64),
        t=traj["t_us"].to_numpy(np.int64),
        edge=traj["edge"].to_numpy(np.int64),
        trip=traj["trip_id"].to_numpy(np.int64),
        bike=traj["bike_id"].to_numpy(np.int64),
        tag=np.asarray(tags.cat.codes.to_numpy(), dtype=np.int64),
        active=(
            traj["tag_active"].to_numpy(bool)
            if "tag_active" in traj.columns
            else np.zeros(len(traj), bool)
        ),
    )
    tag_names = np.asarray(tags.cat.categories, dtype=object)
    n_pts = len(tr.t)
    if n_pts < 2 or not readers:
        return _empty_reads(), pd.DataFrame(columns=list(PASSAGE_COLUMNS))
    r_xy = np.array([[r.x_m, r.y_m] for r in readers], dtype=np.float64)
    r_range = np.array([r.range_m for r in readers], dtype=np.float64)
    dz = params.antenna_height_m - params.tag_height_m
    r_flat = np.sqrt(np.maximum(r_range**2 - dz**2, 0.0))
    pts = np.stack([tr.x, tr.y], 1).astype(np.float64)
    linked = (tr.trip[:-1] == tr.trip[1:]) & (tr.bike[:-1] == tr.bike[1:])
    step_len = np.hypot(*(pts[1:] - pts[:-1]).T)
    # The search radius must cover the longest along-road step of *any* chunk, or a chunk's
    # reads would depend on which bikes share it; 25 m is past a van's 60 km/h second.
    reach = max(_REACH_M, 1.5 * float(np.max(step_len[linked], initial=0.0)))
    r_active = np.array([r.protocol in ACTIVE_PROTOCOLS for r in readers])

    # 1. candidate (segment, reader) pairs; each technology hears only its own tags
    hit_pt, hit_rd = near_pairs(pts, tr.active, r_xy, r_flat + reach + 1.0, r_active)
    seg = np.concatenate([hit_pt - 1, hit_pt])
    rd = np.concatenate([hit_rd, hit_rd])
    ok = (seg >= 0) & (seg < n_pts - 1)
    seg, rd = seg[ok], rd[ok]
    ok = linked[seg]
    pair = np.unique(seg[ok] * len(readers) + rd[ok])
    seg, rd = pair // len(readers), pair % len(readers)

    # Only segments whose path can come within range: every point of a path of length L from
    # p0 to p1 is at least (|r - p0| + |r - p1| - L) / 2 from the reader r (an ellipse).
    p0, corner, p1 = _corners(city, tr, seg)
    length = np.hypot(*(corner - p0).T) + np.hypot(*(p1 - corner).T)
    lower = (np.hypot(*(p0 - r_xy[rd]).T) + np.hypot(*(p1 - r_xy[rd]).T) - length) / 2.0
    near = lower <= r_flat[rd] + 1e-6
    seg, rd, p0, corner, p1 = seg[near], rd[near], p0[near], corner[near], p1[near]

    # 2. fine samples on the absolute 1/hz grid within [t0, t1) of each segment
    t0, t1 = tr.t[seg], tr.t[seg + 1]
    first = -(-t0 // step) * step
    count = np.maximum(-(-(t1 - first) // step), 0)
    f_pair = np.repeat(np.arange(len(seg)), count)
    f_t = (
        first[f_pair] + (np.arange(len(f_pair)) - np.repeat(np.cumsum(count) - count, count)) * step
    )
    f_seg, f_rd = seg[f_pair], rd[f_pair]
    pos = _fine_positions(p0, corner, p1, t0, t1, count, f_t)
    rel = pos - r_xy[f_rd]
    d_flat = np.hypot(rel[:, 0], rel[:, 1])
    inside = np.sqrt(d_flat**2 + dz**2) <= r_range[f_rd]
    f_seg, f_rd, f_t, rel, d_flat = (
        f_seg[inside],
        f_rd[inside],
        f_t[inside],
        rel[inside],
        d_flat[inside],
    )
    f_bike = tr.bike[f_seg]

    # 3. passages: runs per (reader, bike) in time order
    order = np.lexsort((f_t, f_bike, f_rd))
    f_seg, f_rd, f_t, rel = f_seg[order], f_rd[order], f_t[order], rel[order]
    d_flat, f_bike = d_flat[order], f_bike[order]
    new = np.ones(len(f_t), bool)
    new[1:] = (
        (f_rd[1:] != f_rd[:-1])
        | (f_bike[1:] != f_bike[:-1])
        | (f_t[1:] - f_t[:-1] > params.passage_gap_s * 1e6)
    )
    passage = np.cumsum(new) - 1
    n_pass = int(passage[-1]) + 1 if len(passage) else 0
    starts = np.flatnonzero(new)
    closest = _group_argmin(d_flat, passage, n_pass)
    miss = np.array([r.miss_rate for r in readers], dtype=np.float64)
    heard = rand.uniform(_S_HEARD, f_bike[starts], f_rd[starts], f_t[starts]) >= miss[f_rd[starts]]
    reader_ids = np.array([r.reader_id for r in readers], dtype=object)
    if outages is not None:
        heard &= ~in_outage(outages, list(reader_ids), f_rd[closest], f_t[closest])

    # 4. reads of heard passages: Poisson reads for UHF, one read per beacon for active tags
    # Every draw is keyed by (bike, reader, time[, read]): a bike's reads do not depend on
    # which other bikes are simulated with it (simulators.keyed_random).
    lam = params.read_rate_hz * step / 1e6
    act = r_active[f_rd]
    heard_f = heard[passage]
    uhf = heard_f & ~act
    n_reads = np.zeros(len(f_t), np.int64)
    n_reads[uhf] = rand.poisson(_S_READS, lam, f_bike[uhf], f_rd[uhf], f_t[uhf])
    if act.any():
        period = max(1, round(params.beacon_period_s * 1e6 / step))
        heard_a = np.flatnonzero(heard_f & act)
        fb, fr, ft = f_bike[heard_a], f_rd[heard_a], f_t[heard_a]
        phase = rand.integers(_S_PHASE, 0, period, fb)  # the tag's own beacon phase
        beacon = (ft // step - phase) % period == 0
        kept = rand.uniform(_S_BEACON, fb, fr, ft) >= params.beacon_loss
        n_reads[heard_a] = beacon & kept
    r_i = np.repeat(np.arange(len(f_t)), n_reads)
    nth = np.arange(len(r_i)) - np.repeat(np.cumsum(n_reads) - n_reads, n_reads)
    keys = rand.key(f_bike[r_i], f_rd[r_i], f_t[r_i], nth)  # hashed once for four draws
    true_at = f_t[r_i] + rand.integers(_S_OFFSET, 0, step, keys)
    rd_i = f_rd[r_i]
    dist = np.maximum(np.sqrt(d_flat[r_i] ** 2 + dz**2), 0.3)
    noise = rand.normal(_S_RSSI, keys)
    rssi, antenna = _rssi_and_antenna(readers, params, rd_i, rel[r_i], dist, noise)
    audible = rssi >= np.where(
        r_active[rd_i], params.active_sensitivity_dbm, params.sensitivity_dbm
    )
    if outages is not None:
        audible &= ~in_outage(outages, list(reader_ids), rd_i, true_at)
    dup = rand.uniform(_S_DUP, keys) < params.duplicate_prob
    # Keep audible reads; a duplicated read is reported twice, back to back.
    idx = np.repeat(np.flatnonzero(audible), np.where(dup, 2, 1)[audible])
    r_i, true_at, rd_i, rssi, antenna = r_i[idx], true_at[idx], rd_i[idx], rssi[idx], antenna[idx]

    clock_ref = params.clock_ref_us if params.clock_ref_us is not None else int(tr.t.min())
    off = np.array([r.clock_offset_s for r in readers]) * 1e6
    drift = np.array([r.clock_drift_ppm for r in readers]) * 1e-6
    read_at = true_at + np.round(off[rd_i] + drift[rd_i] * (true_at - clock_ref)).astype(np.int64)
    tag_of_read = tr.tag[f_seg[r_i]]
    # Tag codes sort like the tag ids (categories are sorted): no string column until the end.
    sort = np.lexsort((tag_of_read, antenna, rd_i, read_at))
    rd_order = np.argsort(reader_ids.astype(str), kind="stable")
    rd_rank = np.empty(len(readers), np.int64)
    rd_rank[rd_order] = np.arange(len(readers))
    reads = pd.DataFrame({
        "reader_id": pd.Categorical.from_codes(
            rd_rank[rd_i][sort], pd.Index(reader_ids[rd_order].astype(str), dtype=str)
        ),
        "antenna": antenna[sort].astype(np.int16),
        "tag_id": pd.Categorical.from_codes(tag_of_read[sort], pd.Index(tag_names, dtype=str)),
        "rssi_dbm": rssi[sort].astype(np.float32),
        "read_at_us": read_at[sort].astype(np.int64),
        "true_at_us": true_at[sort].astype(np.int64),
    })  # fmt: skip
    per_passage = np.bincount(passage[r_i], minlength=n_pass)
    passages = pd.DataFrame({
        "tag_id": pd.Series(tag_names[tr.tag[f_seg[closest]]], dtype=str),
        "bike_id": f_bike[closest].astype(np.int32),
        "reader_id": pd.Series(reader_ids[f_rd[closest]], dtype=str),
        "closest_at_us": f_t[closest].astype(np.int64),
        "closest_distance_m": d_flat[closest].astype(np.float64),
        "heard": heard,
        "enter_at_us": f_t[starts].astype(np.int64),
        "exit_at_us": f_t[np.append(starts[1:], len(f_t)) - 1].astype(np.int64) + step,
        "reads": per_passage.astype(np.int32),
    })  # fmt: skip
    passages = passages.sort_values(["closest_at_us", "reader_id", "bike_id"], kind="stable")
    return reads, passages.reset_index(drop=True)


def _group_argmin(
    values: NDArray[np.float64], group: NDArray[np.int64], n: int
) -> NDArray[np.int64]:
    """Index of the smallest value in each group (groups are contiguous and numbered 0..n-1)."""
    if n == 0:
        return np.empty(0, np.int64)
    order = np.lexsort((values, group))
    first = np.ones(len(order), bool)
    first[1:] = group[order][1:] != group[order][:-1]
    return order[first]


def _rssi_and_antenna(
    readers: Sequence[SimReader],
    params: RfParams,
    rd: NDArray[np.int64],
    rel: NDArray[np.float64],
    dist: NDArray[np.float64],
    noise: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.int16]]:
    """RSSI per read and the antenna (1-based) that reports it."""
    heading = np.radians([r.antenna_heading_deg[0] for r in readers])
    two = np.array([r.antennas >= 2 for r in readers])
    boresight = np.stack([np.sin(heading), np.cos(heading)], 1)[rd]
    along = np.einsum("ij,ij->i", rel, boresight)
    antenna = np.where(two[rd] & (along < 0), 2, 1).astype(np.int16)
    flat = np.hypot(rel[:, 0], rel[:, 1])
    active = np.array([r.protocol in ACTIVE_PROTOCOLS for r in readers])[rd]
    # Angle off the reporting antenna's boresight (a two-antenna reader hears each side on the
    # antenna facing it); directly under the reader counts as on-axis.
    facing = np.where(two[rd], np.abs(along), along)
    cos_angle = np.where(flat > 1e-6, facing / np.maximum(flat, 1e-6), 1.0)
    offaxis = params.offaxis_loss_db * (1.0 - cos_angle) / 2.0
    at_1m = np.where(active, params.active_rssi_at_1m_dbm, params.rssi_at_1m_dbm)
    exponent = np.where(active, params.active_path_loss_exponent, params.path_loss_exponent)
    sigma = np.where(active, params.active_shadowing_sigma_db, params.shadowing_sigma_db)
    rssi = at_1m - 10.0 * exponent * np.log10(dist) - offaxis + noise * sigma
    return rssi, antenna
