"""The public check's one query: an open theft of the bike carrying a plate or frame number."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

# Open thefts only (reported or confirmed); a recovered or closed case is not "stolen".
# A plate is the one a bike carries now; a frame number, a bike still registered.
_BY_PLATE = """
    SELECT b.bike_id, th.reported_at
    FROM plates p
    JOIN bikes b ON b.bike_id = p.bike_id
    JOIN LATERAL (
        SELECT reported_at FROM thefts
        WHERE bike_id = b.bike_id AND status IN ('reported', 'confirmed')
        ORDER BY reported_at DESC LIMIT 1) th ON true
    WHERE p.plate_key = %s AND upper_inf(p.valid)
    ORDER BY th.reported_at DESC
    LIMIT 1"""

_BY_FRAME = """
    SELECT b.bike_id, th.reported_at
    FROM bikes b
    JOIN LATERAL (
        SELECT reported_at FROM thefts
        WHERE bike_id = b.bike_id AND status IN ('reported', 'confirmed')
        ORDER BY reported_at DESC LIMIT 1) th ON true
    WHERE b.frame_number_key = %s AND b.deregistered_at IS NULL
    LIMIT 1"""


@dataclass(frozen=True, slots=True)
class OpenTheft:
    """A registered bike with an open theft report."""

    bike_id: int
    reported_at: datetime


def open_theft(conn: psycopg.Connection, *, by: str, key: str) -> OpenTheft | None:
    """The open theft of the bike whose plate key or frame-number key (``by``) is ``key``."""
    row = conn.execute(_BY_PLATE if by == "plate" else _BY_FRAME, (key,)).fetchone()
    return OpenTheft(int(row[0]), row[1]) if row else None
