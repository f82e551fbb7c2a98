"""Cloned tags that ride: the last bikes of a fleet carry copies of other bikes' tags.

A cloned tag is only visible as one when both bikes ride, so each copy's trips are timed
against its original's first ride (:func:`ride_clones`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from citymap.network import City
from simulators.fleet import Bike
from simulators.intentions import Wanted

# Copies whose first ride starts after their original's first ride has ended: one in four.
_PARKED_EVERY = 4
_CLONE_STREAM = 0xC10E
# A copy rides "elsewhere in the city": at least this far from its original's ride.
_ELSEWHERE_M = 1500.0


def ride_clones(
    city: City,
    fleet: list[Bike],
    want: Wanted,
    variant: NDArray[np.int64],
    initial: NDArray[np.int64],
    *,
    clones: int,
    seed: int,
    start_us: int,
    end_us: int,
    speed_mps: NDArray[np.float64],
    victims: NDArray[np.int64],
    route_variants: int,
) -> tuple[list[Bike], Wanted, NDArray[np.int64]]:
    """Give the last ``clones`` bikes copies of other bikes' tags, and make the copies ride.

    A cloned tag is only visible as one when both bikes ride: so each copy's original is the
    first bike that has a trip in the window (and is not a theft victim) starting at least
    ``_ELSEWHERE_M`` from the copy (the farthest such bike when none is that far), and the
    copy's trips are retimed to start with its original's first trip (within -1..+2 min) —
    except every ``_PARKED_EVERY``-th copy, whose original is chosen by where its first ride
    ends and which starts 0.5-3 min after that ride should have ended (the original parked;
    with the original's if that is past the window).
    A copy with no trip of its own gets one errand 1.5-2.5 km long.

    Draws come from a generator of their own and the copies are the last bikes (their
    intentions the last rows), so every other bike's day, and every theft, stays the same.
    """
    count = len(fleet)
    clones = min(clones, count - 1)
    if clones <= 0:
        return fleet, want, variant
    rng = np.random.default_rng([seed, _CLONE_STREAM])
    copies = list(range(count - 1, count - 1 - clones, -1))
    has_trip = np.bincount(want.bike, minlength=count) > 0
    stolen = set(victims.tolist())
    pool = [b for b in range(count) if has_trip[b] and b not in stolen and b not in copies]
    pool += [b for b in range(count) if b not in pool and b not in copies]  # none ride: any
    bike, t, src, dst = want.bike.copy(), want.t.copy(), want.src.copy(), want.dst.copy()
    kind, var = want.kind.copy(), variant.astype(np.int64).copy()
    add: list[tuple[int, int, int, int, int]] = []  # bike, t, src, dst, variant
    junctions = np.flatnonzero(city.node_kind == "junction")
    tree = cKDTree(city.node_xy_m[junctions])
    fleet = list(fleet)
    first_of = {b: int(np.flatnonzero(want.bike == b)[np.argmin(want.t[want.bike == b])])
                for b in pool if has_trip[b]}  # fmt: skip
    for k, copy in enumerate(copies):
        parked = k % _PARKED_EVERY == _PARKED_EVERY - 1
        original = _original_for(city, pool, first_of, want, int(initial[copy]), parked)
        if original is None:
            break
        pool.remove(original)
        source = fleet[original]
        fleet[copy] = replace(fleet[copy], tag_id=source.tag_id, tag_active=source.tag_active)
        if original not in first_of:
            continue
        first = first_of[original]
        begin = int(want.t[first]) + round(rng.uniform(-60.0, 120.0) * 1e6)
        if parked:  # after the original's first ride, estimated from its length and speed
            d_m = float(np.hypot(*(city.node_xy_m[want.dst[first]]
                                   - city.node_xy_m[want.src[first]])))  # fmt: skip
            # Roads are ~1.3x the straight line; stops at junctions and slower streets add
            # more: a generous bound, so that the original has parked.
            ride_s = 1.6 * d_m / float(speed_mps[original]) + 60.0
            after = int(want.t[first]) + round((ride_s + rng.uniform(30.0, 180.0)) * 1e6)
            # Past the window the copy would not ride at all: then it rides with the original.
            begin = after if after < end_us - 60_000_000 else begin
        begin = int(np.clip(begin, start_us, end_us - 60_000_000))
        mine = np.flatnonzero(bike == copy)
        if mine.size:
            t[mine] += begin - int(t[mine].min())
            continue
        here = int(initial[copy])
        dist, ang = rng.uniform(1500.0, 2500.0), rng.uniform(0.0, 2.0 * np.pi)
        aim = city.node_xy_m[here] + dist * np.array([np.sin(ang), np.cos(ang)])
        there = int(junctions[tree.query(aim)[1]])
        if there != here:
            add.append((copy, begin, here, there, int(rng.integers(0, route_variants))))
    if add:
        extra = np.array(add, dtype=np.int64)
        bike = np.concatenate([bike, extra[:, 0]])
        t = np.concatenate([t, extra[:, 1]])
        src = np.concatenate([src, extra[:, 2]])
        dst = np.concatenate([dst, extra[:, 3]])
        var = np.concatenate([var, extra[:, 4]])
        kind = np.concatenate([kind, np.full(len(add), "errand", dtype=object)])
    order = np.lexsort((t, bike))  # the copies are the last bikes: other rows keep their place
    return (
        fleet,
        Wanted(bike[order], t[order], src[order], dst[order], kind[order]),
        var[order],
    )


def _original_for(
    city: City,
    pool: list[int],
    first_of: dict[int, int],
    want: Wanted,
    copy_at: int,
    parked: bool,
) -> int | None:
    """The first bike of ``pool`` whose first ride starts (``parked``: ends) at least
    ``_ELSEWHERE_M`` from where the copy is; the farthest of them when none does."""
    if not pool:
        return None
    here = city.node_xy_m[copy_at]
    best, best_m = pool[0], -1.0
    for b in pool:
        if b not in first_of:
            continue
        row = first_of[b]
        there = int(want.dst[row] if parked else want.src[row])
        d_m = float(np.hypot(*(city.node_xy_m[there] - here)))
        if d_m >= _ELSEWHERE_M:
            return b
        if d_m > best_m:
            best, best_m = b, d_m
    return best
