"""The fleet: registered bikes and their owners, thefts, and the population they make up.

Also the simulators' time base: UTC microseconds since the epoch (:func:`to_us`,
:func:`from_us`) and the city's local time (:data:`LOCAL_UTC_OFFSET_H`). A day of the fleet is
planned by :func:`simulators.day_plan.plan_day`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from citymap.network import City
from simulators import people

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LOCAL_UTC_OFFSET_H = 8.0


@dataclass(frozen=True)
class Bike:
    """A registered e-bike and its owner. ``plate`` is ASCII; ``plate_display`` as painted."""

    bike_id: int
    tag_id: str
    plate: str
    plate_display: str
    frame_number: str
    owner_name: str
    owner_phone: str
    home_node: int
    work_node: int
    brand: str
    colour: str
    tag_active: bool = False  # an active 2.4 GHz tag (16 hex digits) instead of a UHF EPC


@dataclass(frozen=True)
class Theft:
    """A theft: when and where, where the bike is taken, and whether the tag is torn off."""

    bike_id: int
    stolen_at: datetime
    from_node: int
    fence_node: int
    by_van: bool
    tag_removed_at: datetime | None
    pickup_node: int | None = None


@dataclass(frozen=True, eq=False)
class Population:
    """Bikes, thefts and trips, plus every trip's true node path and times (``visits``).

    ``trips`` columns: trip_id (int32), bike_id (int32), kind ("commute" | "errand" | "theft" |
    "van"), start_at, end_at (datetime64[us, UTC]), start_us, end_us (int64), from_node,
    to_node (int32), length_m (float64). ``visits``: see
    :func:`simulators.riders.trip_node_times`.
    """

    bikes: list[Bike]
    thefts: list[Theft]
    trips: pd.DataFrame
    visits: pd.DataFrame


def to_us(at: datetime) -> int:
    """Aware datetime to UTC microseconds since the epoch (exact, no float rounding)."""
    if at.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC datetime")
    return (at - EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    """UTC microseconds since the epoch to an aware UTC datetime."""
    return EPOCH + timedelta(microseconds=int(us))


def make_bikes(
    city: City, rng: np.random.Generator, count: int, active_fraction: float = 0.0
) -> list[Bike]:
    """``count`` bikes with tags, plates, owners, homes and workplaces, drawn from ``rng``."""
    kinds = city.node_kind
    estates = np.flatnonzero(kinds == "estate")
    campuses = np.flatnonzero(kinds == "campus")
    junctions = np.flatnonzero(kinds == "junction")
    tags = people.tag_ids(rng, count)
    active = np.zeros(count, bool)
    if active_fraction > 0:  # drawn only when asked for, so older seeds keep their bikes
        active = rng.random(count) < active_fraction
        new_ids = people.active_tag_ids(rng, int(active.sum()))
        for i, tag in zip(np.flatnonzero(active).tolist(), new_ids, strict=True):
            tags[i] = tag
    plate, display = people.plates(rng, count)
    frames = people.frame_numbers(rng, count)
    names, phones = people.owners(rng, count)
    brands = people.pick(rng, people.BRANDS, count)
    colours = people.pick(rng, people.COLOURS, count)
    in_estate = (rng.random(count) < 0.7) & (len(estates) > 0)
    home = np.where(
        in_estate,
        rng.choice(estates if len(estates) else junctions, size=count),
        rng.choice(junctions, size=count),
    )
    at_campus = (rng.random(count) < 0.25) & (len(campuses) > 0)
    work = np.where(
        at_campus,
        rng.choice(campuses if len(campuses) else junctions, size=count),
        rng.choice(junctions, size=count),
    )
    return [
        Bike(k, tags[k], plate[k], display[k], frames[k], names[k], phones[k],
             int(home[k]), int(work[k]), brands[k], colours[k], bool(active[k]))
        for k in range(count)
    ]  # fmt: skip
