"""Trip intentions: when each bike's rider wants to go where, before any path is planned.

Without habits (:func:`intentions`) start times come from a time-of-day rate (morning and
evening peaks, local time UTC+8, by thinning a Poisson process) and destinations follow the
hour (home -> work in the morning, work -> home in the evening, errands nearby otherwise), each
trip starting where the previous one ended; computed for all bikes at once, one trip rank per
step. With habits (:func:`intentions_with_habits`) they come from :mod:`simulators.habits`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from citymap.network import City
from simulators.fleet import LOCAL_UTC_OFFSET_H, Bike, to_us
from simulators.habits import Habits, habit_intentions

_LAMBDA_MAX_PER_H = 0.7


def _trip_rate_per_h(t_us: NDArray[np.int64]) -> NDArray[np.float64]:
    """Trips per bike per hour at UTC time ``t_us``: morning, noon and evening peaks."""
    h = (t_us / 3.6e9 + LOCAL_UTC_OFFSET_H) % 24.0

    def peak(mu: float, sd: float, amp: float) -> NDArray[np.float64]:
        return amp * np.exp(-0.5 * ((h - mu) / sd) ** 2)

    return 0.04 + peak(7.8, 0.7, 0.55) + peak(12.2, 0.8, 0.15) + peak(17.8, 0.9, 0.45)


def _local_hour(t_us: int) -> float:
    return (t_us / 3.6e9 + LOCAL_UTC_OFFSET_H) % 24.0


@dataclass(frozen=True)
class Wanted:
    """Trip intentions, one row per trip: bike, wanted start (us), from and to node, kind."""

    bike: NDArray[np.int64]
    t: NDArray[np.int64]
    src: NDArray[np.int64]
    dst: NDArray[np.int64]
    kind: NDArray[np.object_]


def intentions(
    city: City,
    bikes: list[Bike],
    rng: np.random.Generator,
    start_us: int,
    end_us: int,
    rate_scale: float,
) -> tuple[Wanted, NDArray[np.int64]]:
    """Candidate trips (bike, wanted start, src, dst, kind) and each bike's start node."""
    n = len(bikes)
    hours = (end_us - start_us) / 3.6e9
    counts = rng.poisson(_LAMBDA_MAX_PER_H * rate_scale * hours, size=n)
    bike = np.repeat(np.arange(n), counts)
    t = start_us + (rng.random(len(bike)) * (end_us - start_us)).astype(np.int64)
    accept = rng.random(len(bike)) * _LAMBDA_MAX_PER_H < _trip_rate_per_h(t)
    bike, t = bike[accept], t[accept]
    order = np.lexsort((t, bike))
    bike, t = bike[order], t[order]

    errand_nodes = np.flatnonzero(city.node_kind == "junction")
    tree = cKDTree(city.node_xy_m[errand_nodes])
    home = np.array([b.home_node for b in bikes], dtype=np.int64)
    work = np.array([b.work_node for b in bikes], dtype=np.int64)
    h0 = _local_hour(start_us)
    at_work = (rng.random(n) < 0.7) & (9.0 <= h0 < 16.5)
    where = np.where(at_work, work, home)
    initial = where.copy()
    u = rng.random((len(bike), 3))
    hour = (t / 3.6e9 + LOCAL_UTC_OFFSET_H) % 24.0
    dst = np.full(len(bike), -1, np.int64)
    src = np.full(len(bike), -1, np.int64)
    commute = np.zeros(len(bike), bool)
    # Each trip starts where the bike's previous one ended, so trips are decided one rank
    # (first trip of every bike, second trip of every bike, ...) at a time, vectorized.
    rank = np.arange(len(bike)) - np.searchsorted(bike, bike)
    by_rank = np.argsort(rank, kind="stable")
    bounds = np.searchsorted(rank[by_rank], np.arange(int(rank.max(initial=-1)) + 2))
    for r in range(len(bounds) - 1):
        rows = by_rank[bounds[r] : bounds[r + 1]]
        b, h, u0 = bike[rows], hour[rows], u[rows, 0]
        s = where[b]
        to_work = (s == home[b]) & (h >= 5.0) & (h < 11.0) & (u0 < 0.8)
        to_home = ~to_work & (s == work[b]) & (h >= 15.0) & (u0 < 0.85)
        back = ~to_work & ~to_home & (s != home[b]) & (s != work[b]) & (u0 < 0.6)
        d = np.where(to_work, work[b], home[b])
        other = ~(to_work | to_home | back)
        if other.any():
            dist = 300.0 + 2200.0 * u[rows[other], 1]
            ang = 2.0 * np.pi * u[rows[other], 2]
            aim = city.node_xy_m[s[other]] + dist[:, None] * np.stack([np.sin(ang), np.cos(ang)], 1)
            d[other] = errand_nodes[tree.query(aim)[1]]
        src[rows], dst[rows], commute[rows] = s, d, to_work | to_home
        moved = d != s
        where[b[moved]] = d[moved]
    keep = dst != src
    kind = np.where(commute, "commute", "errand").astype(object)
    return Wanted(bike[keep], t[keep], src[keep], dst[keep], kind[keep]), initial


def intentions_with_habits(
    city: City,
    fleet: list[Bike],
    seed: int,
    start_us: int,
    end_us: int,
    habits: Habits,
    variants: int,
) -> tuple[Wanted, NDArray[np.int64], NDArray[np.int64]]:
    """Intentions, variants and start nodes of riders with habits."""
    home = np.array([b.home_node for b in fleet], dtype=np.int64)
    work = np.array([b.work_node for b in fleet], dtype=np.int64)
    got = habit_intentions(
        city, home, work, seed=seed, start_us=start_us, end_us=end_us, habits=habits,
        variants=variants, offset_h=LOCAL_UTC_OFFSET_H,
    )  # fmt: skip
    return Wanted(got.bike, got.t, got.src, got.dst, got.kind), got.variant, got.initial


def trip_rate_scale_for(start: datetime, hours: float, trips_per_bike_per_h: float) -> float:
    """The ``trip_rate_scale`` giving at least ``trips_per_bike_per_h`` on average over the
    window (never below 1): the live demo's city keeps its traffic at 3 a.m. too."""
    t_us = to_us(start) + np.linspace(0.0, hours * 3.6e9, 61).astype(np.int64)
    return max(1.0, trips_per_bike_per_h / float(np.mean(_trip_rate_per_h(t_us))))
