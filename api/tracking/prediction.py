"""Likely next readers after a bike's last sighting: pure, from the road model given the way
the bike came, blended with where the fleet went next from the same reader (no SQL; the
history comes from :mod:`api.tracking.departure_store`).

The model is :func:`track_engine.next_readers.blend_next_readers` on
:func:`track_engine.intercept.next_readers_by_model`; docs/accuracy.md ("Intercept") has
how it scores against the baselines.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from api.tracking.values import LastSeen, NextReader
from track_engine.intercept import (
    Heading,
    Intercept,
    came_from_node,
    next_readers_by_model,
    other_readers,
)
from track_engine.next_readers import Departures, blend_next_readers
from track_engine.roads import Derived, ReaderPaths

# The road model looks this far down the roads from the sighting (fitted on the accuracy
# bench: docs/accuracy.md, "Intercept").
HORIZON_M = 1000.0
# The sighting's own place (readers this close hear the same pass) is not a next reader.
PLACE_M = 40.0

# The road model's answer per (reader, previous reader): it depends only on the network.
_ROAD: Derived[tuple[str, str], list[Intercept]] = Derived()


class HasReaderPaths(Protocol):
    """Whatever holds the loaded network: the API's ``LoadedNetwork`` fits."""

    @property
    def reader_paths(self) -> ReaderPaths: ...


def predict_next_readers(
    network: HasReaderPaths, seen: LastSeen, history: Departures, limit: int
) -> list[NextReader]:
    """Likely next readers after ``seen``, most probable first, with an ETA window. The road
    model from the sighting's reader (given ``history.previous_reader``, the way the bike
    came) is the prior of the fleet's departures from that reader, then of those of tags that
    came the same way, then of the bike's own."""
    paths = network.reader_paths
    road = road_model(paths, seen.reader_id, history.previous_reader)
    distance = {r: _distance(paths, seen.reader_id, r) for r in history.fleet}
    return [
        NextReader(
            reader_id=p.reader_id,
            probability=p.probability,
            eta=seen.at + timedelta(seconds=p.travel_s),
            travel_s=p.travel_s,
            distance_m=p.distance_m,
            source=p.source,
            eta_from=seen.at + timedelta(seconds=p.eta_from_s),
            eta_to=seen.at + timedelta(seconds=p.eta_to_s),
        )
        for p in blend_next_readers(road, history, distance, limit=limit)
    ]


def road_model(paths: ReaderPaths, reader_id: str, previous_reader: str) -> list[Intercept]:
    """Every reachable reader by the road model from ``reader_id`` (kept per network), given
    the bike came from ``previous_reader`` ("" when unknown); [] for a reader the network
    does not know."""
    if reader_id not in paths.reader_node:
        return []

    def build() -> list[Intercept]:
        elsewhere = other_readers(paths, reader_id, PLACE_M)
        came = came_from_node(paths, previous_reader, reader_id)
        return next_readers_by_model(
            paths.graph, paths.reader_node[reader_id], elsewhere,
            {r: paths.miss_rate_of(r) for r in elsewhere}, horizon_m=HORIZON_M, limit=None,
            heading=Heading(came_from=came) if came is not None else None,
        )  # fmt: skip

    return _ROAD.get(paths, (reader_id, previous_reader), build)


def _distance(paths: ReaderPaths, a: str, b: str) -> float:
    try:
        return paths.distance_m(a, b)
    except KeyError:
        return float("nan")
