"""Likely next readers after a bike's last sighting: pure, from the reader's history of
transitions and the road graph (no SQL; the history comes from :mod:`api.tracking.store`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

import numpy as np

from api.tracking.values import LastSeen, NextReader, Transitions
from track_engine.roads import ReaderPaths

# Fewer departures than this and the road graph fills in the rest.
MIN_TRANSITIONS = 5
TYPICAL_SPEED_MPS = 4.5


class HasReaderPaths(Protocol):
    """Whatever holds the loaded network: the API's ``LoadedNetwork`` fits."""

    @property
    def reader_paths(self) -> ReaderPaths: ...


def predict_next_readers(
    network: HasReaderPaths, seen: LastSeen, history: Transitions, limit: int
) -> list[NextReader]:
    """Likely next readers after ``seen``, most probable first, from the reader's ``history``
    (where tags that passed it went next, with the median travel time). When the reader has
    little history the nearest readers by road fill the list, at a typical e-bike speed,
    weighted by closeness."""
    out: list[NextReader] = []
    total = sum(n for _, n, _ in history)
    if total >= MIN_TRANSITIONS:
        for rid, n, travel_s in history[:limit]:
            out.append(
                NextReader(
                    reader_id=str(rid),
                    probability=float(n) / total,
                    eta=seen.at + timedelta(seconds=float(travel_s)),
                    travel_s=float(travel_s),
                    distance_m=_distance(network.reader_paths, seen.reader_id, str(rid)),
                    source="history",
                )
            )
    if len(out) < limit:
        known = {n.reader_id for n in out}
        left = max(1.0 - sum(n.probability for n in out), 0.0)
        out += _road_neighbours(network.reader_paths, seen, limit - len(out), known, left)
    return out


def _distance(paths: ReaderPaths, a: str, b: str) -> float:
    try:
        return paths.distance_m(a, b)
    except KeyError:
        return float("nan")


def _road_neighbours(
    paths: ReaderPaths, seen: LastSeen, count: int, skip: set[str], mass: float
) -> list[NextReader]:
    """The nearest readers by road from the last one, sharing ``mass`` by inverse distance."""
    if seen.reader_id not in paths.reader_node or count <= 0:
        return []
    row = paths.distance_matrix_m[paths.reader_ids.index(seen.reader_id)]
    ids = np.asarray(paths.reader_ids, dtype=object)
    same = np.asarray([r in skip or r == seen.reader_id for r in paths.reader_ids])
    ok = np.isfinite(row) & (row > 0) & ~same
    order = np.flatnonzero(ok)[np.argsort(row[ok], kind="stable")][:count]
    if order.size == 0:
        return []
    weight = 1.0 / row[order]
    share = mass * weight / weight.sum()
    return [
        NextReader(
            reader_id=str(ids[i]),
            probability=float(p),
            eta=seen.at + timedelta(seconds=float(row[i]) / TYPICAL_SPEED_MPS),
            travel_s=float(row[i]) / TYPICAL_SPEED_MPS,
            distance_m=float(row[i]),
            source="road",
        )
        for i, p in zip(order.tolist(), share.tolist(), strict=True)
    ]
