"""What the tracking domain answers with: plain immutable values, no SQL and no I/O.

Times are aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class LastSeen:
    """Where and when a bike was last heard."""

    tag_id: str
    reader_id: str
    at: datetime
    lon: float | None
    lat: float | None
    source: str  # "passage" (closed passage, closest approach) or "read" (a watched tag's alert)

    def doc(self) -> dict[str, Any]:
        """The sighting as a JSON-ready dict: ``asdict`` without its deep copy (every field
        is immutable)."""
        return {
            "tag_id": self.tag_id,
            "reader_id": self.reader_id,
            "at": self.at,
            "lon": self.lon,
            "lat": self.lat,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class NextReader:
    """A reader the bike will likely pass next, with the estimated time of arrival (``eta``,
    typical) and the window it falls in (``eta_from`` to ``eta_to``)."""

    reader_id: str
    probability: float
    eta: datetime
    travel_s: float
    distance_m: float
    source: str  # "history" (mostly departures seen at this reader) or "road" (road model)
    eta_from: datetime
    eta_to: datetime


@dataclass(frozen=True, slots=True)
class Companion:
    """A tag that passed the same readers as the target, together, more often than chance."""

    tag_id: str
    bike_id: int | None
    shared: int
    readers: int
    expected: float
    score: float
    passages: list[tuple[str, datetime, datetime]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PlateBike:
    """What a route needs of the bike a plate names."""

    bike_id: int
    plate: str
    stolen_at: datetime | None


@dataclass(frozen=True, slots=True)
class OpenTheftSeen:
    """An open theft and its bike's last sighting (None when it was never seen)."""

    theft_id: int
    bike_id: int
    plate: str | None
    case_number: str | None
    status: str
    stolen_at: datetime
    last_seen: LastSeen | None
