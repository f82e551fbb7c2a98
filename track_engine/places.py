"""Places and sightings: neighbouring readers that hear one pass are one place, not a move.

A real complex junction (a dual carriageway, a roundabout, turn lanes) has several road nodes
15-40 m apart, and a reader on each. Their read zones overlap: one bike going through is heard
by two or three of them within a few seconds, in an order that the closest-approach fit cannot
always get right, and a reader may hear a bike on the *other* carriageway, whose node the bike
never crossed. Treated as moves, such passages draw zigzags (the one-way way round from one
node of the junction to the other) and impossible speeds — and the speed test used to call
honest tags clones.

So, before any path is chosen, consecutive passages at readers of one **place** (every pair
of them within ``PlaceModel.tolerance_m`` of each other, or within the sum of their read
ranges when those are known) whose read windows overlap (within ``gap_s``) are folded into one
**sighting**: one representative passage (the loudest: the bike came nearest to that reader)
carrying the union of the windows; the others are kept as *merged*, and the readers that
heard the bike are not counted as silent on the paths into and out of the sighting.

**Clone test.** A tag seen at two places that no e-bike could travel between is a cloned (or
misread) tag. The test works on sightings and on a *lower bound* of the distance — the
straight line between the two places' nearest readers, less each reader's reach — and on the
time between the read windows, plus a clock-error allowance: so the one-way streets, the
carriageway a reader hears across, and the order of passages inside a place never make an
honest tag look cloned. One sighting that teleports out of a route and back is reported once
(a copy heard once, or a misread: both are for an officer to look at) and skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "PROTOCOL_RANGE_M",
    "SURE_REACH_M",
    "PlaceModel",
    "Sightings",
    "clone_moves",
    "group_sightings",
    "move_speeds",
    "reach_m",
]

_US_PER_S = 1_000_000
# How far a reader of each protocol can hear a tag, where the registry says no more: active
# 2.4 GHz readers hear a beaconing tag 30-100 m away (UHF ones a few meters: reach_m covers it).
PROTOCOL_RANGE_M = {"tagtrail-active": 100.0}
# A reader's pole stands a few meters from its road node.
_POLE_OFFSET_M = 5.0
# How far from its road node a road lies *surely* inside any reader's read zone: as close as
# the reader's own pole. A bike there is heard as surely as one crossing the node, so the read
# cannot tell the two apart; further out the read itself favours the node. (A known range is
# the most a reader reaches, not the least, so it does not widen this.)
SURE_REACH_M = _POLE_OFFSET_M


@dataclass(frozen=True)
class PlaceModel:
    """When passages are one sighting, and when a move between sightings is impossible."""

    # Readers whose road nodes are this close may hear one pass (a complex junction).
    tolerance_m: float = 40.0
    # Read windows this far apart still count as overlapping (crossing the junction).
    gap_s: float = 10.0
    # How far from its road node a reader may hear a tag (range plus the pole's offset), at
    # least; a reader whose range is known (``ranges``) reaches that range plus its pole's offset.
    reach_m: float = 20.0
    # Reader clocks are corrected, but not perfectly: the slack of the clone test.
    clock_tolerance_s: float = 5.0
    max_speed_mps: float = 17.0


@dataclass(frozen=True)
class Sightings:
    """Passages (in time order) grouped into sightings.

    ``groups[k]`` are the passage indices of sighting ``k``; ``rep[k]`` its representative
    passage; ``first_us`` / ``last_us`` the union of its members' read windows.
    """

    groups: list[list[int]]
    rep: NDArray[np.intp]
    first_us: NDArray[np.int64]
    last_us: NDArray[np.int64]

    def merged(self) -> list[int]:
        """Passage indices folded into another passage's sighting, in time order."""
        return sorted(i for g, r in zip(self.groups, self.rep.tolist(), strict=True)
                      for i in g if i != r)  # fmt: skip

    def heard_with(self, readers: Sequence[str]) -> list[frozenset[str]]:
        """Per sighting, the readers of its merged passages (they heard the bike too)."""
        out = []
        for g, r in zip(self.groups, self.rep.tolist(), strict=True):
            out.append(frozenset(readers[i] for i in g if i != r) - {readers[r]})
        return out


def reach_m(reader: str, model: PlaceModel, ranges: Mapping[str, float] | None = None) -> float:
    """How far from its road node ``reader`` may hear a tag: its range plus its pole's offset
    where the range is known, never less than ``model.reach_m``."""
    known = (ranges or {}).get(reader, 0.0)
    return max(model.reach_m, known + _POLE_OFFSET_M)


def _place_distance_m(
    a: str, b: str, xy: Mapping[str, NDArray[np.float64]], model: PlaceModel,
    ranges: Mapping[str, float] | None,
) -> tuple[float, float]:  # fmt: skip
    """(distance between the readers' nodes, the distance up to which they are one place)."""
    d = float(np.hypot(*(xy[a] - xy[b])))
    limit = model.tolerance_m
    if ranges is not None and a in ranges and b in ranges:
        limit = max(limit, ranges[a] + ranges[b])
    return d, limit


def group_sightings(
    readers: Sequence[str],
    first_us: NDArray[np.int64],
    last_us: NDArray[np.int64],
    loudness: Sequence[tuple[float, int]],
    xy: Mapping[str, NDArray[np.float64]],
    model: PlaceModel,
    ranges: Mapping[str, float] | None = None,
) -> Sightings:
    """Fold consecutive passages (in time order) at readers of one place into sightings.

    A passage joins the current sighting when its reader is one place with *every* reader
    already in it (so a chain of neighbours along a street never becomes one long "place")
    and its read window overlaps the sighting's, within ``gap_s``. ``loudness`` is each
    passage's (peak RSSI, read count): the loudest member represents the sighting.
    """
    gap = round(model.gap_s * _US_PER_S)
    groups: list[list[int]] = []
    lo: list[int] = []
    hi: list[int] = []
    for i, reader in enumerate(readers):
        if groups:
            g = groups[-1]
            overlaps = int(first_us[i]) <= hi[-1] + gap and int(last_us[i]) >= lo[-1] - gap
            if overlaps and all(
                d <= limit
                for d, limit in (_place_distance_m(reader, readers[j], xy, model, ranges)
                                 for j in g)
            ):  # fmt: skip
                g.append(i)
                lo[-1] = min(lo[-1], int(first_us[i]))
                hi[-1] = max(hi[-1], int(last_us[i]))
                continue
        groups.append([i])
        lo.append(int(first_us[i]))
        hi.append(int(last_us[i]))
    rep = np.array([max(g, key=lambda i: (loudness[i], -i)) for g in groups], dtype=np.intp)
    return Sightings(groups, rep, np.array(lo, np.int64), np.array(hi, np.int64))


def clone_moves(
    sightings: Sightings,
    readers: Sequence[str],
    xy: Mapping[str, NDArray[np.float64]],
    model: PlaceModel,
    ranges: Mapping[str, float] | None = None,
) -> list[tuple[int, int, float]]:
    """Moves between sightings that no e-bike can make: ``(from, to, lower-bound speed)``.

    Walks the sightings in time order comparing each with the last one kept: a sighting
    that is impossible both from the one before and to the one after, while those two agree,
    is reported once (a copy heard once, or a misread) and then skipped, so that the route it
    interrupts is judged on its own.
    """
    n = len(sightings.groups)
    speed = _speeds(sightings, readers, xy, model, ranges)

    def fast(i: int, j: int) -> bool:
        return speed(i, j) > model.max_speed_mps

    moves: list[tuple[int, int, float]] = []
    prev = 0
    for i in range(1, n):
        if fast(prev, i):
            moves.append((prev, i, speed(prev, i)))
            if i + 1 < n and fast(i, i + 1) and not fast(prev, i + 1):
                continue  # one sighting out and back: reported, and the route goes on
        prev = i
    return moves


def move_speeds(
    sightings: Sightings,
    readers: Sequence[str],
    xy: Mapping[str, NDArray[np.float64]],
    model: PlaceModel,
    ranges: Mapping[str, float] | None = None,
) -> list[float]:
    """The lower-bound speed (m/s) of every move between consecutive sightings, as the clone
    test judges it: what a detector that flags fast moves has to work with."""
    speed = _speeds(sightings, readers, xy, model, ranges)
    return [speed(i, i + 1) for i in range(len(sightings.groups) - 1)]


def _speeds(
    sightings: Sightings,
    readers: Sequence[str],
    xy: Mapping[str, NDArray[np.float64]],
    model: PlaceModel,
    ranges: Mapping[str, float] | None,
) -> Callable[[int, int], float]:
    """``speed(i, j)``: a lower bound of the speed from sighting ``i`` to ``j``."""
    pos = [np.array([xy[readers[i]] for i in g]) for g in sightings.groups]
    reach = [np.array([reach_m(readers[i], model, ranges) for i in g]) for g in sightings.groups]

    def speed(i: int, j: int) -> float:
        a, b = pos[i], pos[j]
        gap = np.hypot(*(a[:, None, :] - b[None, :, :]).transpose(2, 0, 1))
        d = float(np.min(gap - reach[i][:, None] - reach[j][None, :]))
        d = max(d, 0.0)
        if d == 0.0:
            return 0.0
        # Time between the read windows (zero when they overlap), plus the clock allowance.
        if j > i:
            dt_us = int(sightings.first_us[j]) - int(sightings.last_us[i])
        else:
            dt_us = int(sightings.first_us[i]) - int(sightings.last_us[j])
        dt = max(dt_us, 0) / _US_PER_S + model.clock_tolerance_s
        return d / dt

    return speed
