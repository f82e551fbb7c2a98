"""Tagging events (free registration sessions at fixed places and times) and their bookings.

The caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A tagging event with how many places are booked."""

    event_id: int
    name: str
    place: str
    lon: float | None
    lat: float | None
    starts_at: datetime
    ends_at: datetime
    capacity: int
    booked: int


@dataclass(frozen=True, slots=True)
class BookingRecord:
    """A resident's booking at an event."""

    booking_id: int
    event_id: int
    user_id: int
    username: str
    booked_at: datetime
    checked_in_at: datetime | None


_EVENT = """SELECT e.event_id, e.name, e.place, e.lon, e.lat, e.starts_at, e.ends_at, e.capacity,
                   (SELECT count(*) FROM event_bookings b WHERE b.event_id = e.event_id)::int
                     AS booked
            FROM tagging_events e"""
_BOOKING = """SELECT b.booking_id, b.event_id, b.user_id, u.username, b.booked_at,
                     b.checked_in_at
              FROM event_bookings b JOIN users u USING (user_id)"""


def create_event(
    conn: psycopg.Connection,
    *,
    name: str,
    place: str,
    lon: float | None,
    lat: float | None,
    starts_at: datetime,
    ends_at: datetime,
    capacity: int,
) -> int:
    """Create an event; returns its id."""
    row = conn.execute(
        """INSERT INTO tagging_events (name, place, lon, lat, starts_at, ends_at, capacity)
           VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING event_id""",
        (name, place, lon, lat, starts_at, ends_at, capacity),
    ).fetchone()
    if row is None:
        raise RuntimeError("create_event: the database returned no row")
    return int(row[0])


def get_event(conn: psycopg.Connection, event_id: int, *, lock: bool = False) -> EventRecord | None:
    """One event; ``lock`` serialises bookings of the same event (capacity check)."""
    if lock:
        conn.execute("SELECT 1 FROM tagging_events WHERE event_id = %s FOR UPDATE", (event_id,))
    with conn.cursor(row_factory=class_row(EventRecord)) as cur:
        return cur.execute(f"{_EVENT} WHERE e.event_id = %s", (event_id,)).fetchone()


def list_events(
    conn: psycopg.Connection, *, after: datetime | None, limit: int, offset: int
) -> tuple[list[EventRecord], int]:
    """A page of events by start time (only those ending after ``after`` if given)."""
    with conn.cursor(row_factory=class_row(EventRecord)) as cur:
        rows = cur.execute(
            f"""{_EVENT} WHERE %(after)s::timestamptz IS NULL OR e.ends_at > %(after)s
                ORDER BY e.starts_at, e.event_id LIMIT %(limit)s OFFSET %(offset)s""",
            {"after": after, "limit": limit, "offset": offset},
        ).fetchall()
    total = conn.execute(
        "SELECT count(*) FROM tagging_events WHERE %(a)s::timestamptz IS NULL OR ends_at > %(a)s",
        {"a": after},
    ).fetchone()
    return rows, int(total[0]) if total else 0


def book(conn: psycopg.Connection, *, event_id: int, user_id: int) -> int | None:
    """Book a place; returns the booking id, or None if the user already booked this event."""
    row = conn.execute(
        """INSERT INTO event_bookings (event_id, user_id) VALUES (%s, %s)
           ON CONFLICT (event_id, user_id) DO NOTHING RETURNING booking_id""",
        (event_id, user_id),
    ).fetchone()
    return None if row is None else int(row[0])


def get_booking(conn: psycopg.Connection, booking_id: int) -> BookingRecord | None:
    """One booking."""
    with conn.cursor(row_factory=class_row(BookingRecord)) as cur:
        return cur.execute(f"{_BOOKING} WHERE b.booking_id = %s", (booking_id,)).fetchone()


def list_bookings(
    conn: psycopg.Connection, *, event_id: int, limit: int, offset: int
) -> tuple[list[BookingRecord], int]:
    """A page of an event's bookings in booking order."""
    with conn.cursor(row_factory=class_row(BookingRecord)) as cur:
        rows = cur.execute(
            f"{_BOOKING} WHERE b.event_id = %s ORDER BY b.booked_at, b.booking_id "
            "LIMIT %s OFFSET %s",
            (event_id, limit, offset),
        ).fetchall()
    total = conn.execute(
        "SELECT count(*) FROM event_bookings WHERE event_id = %s", (event_id,)
    ).fetchone()
    return rows, int(total[0]) if total else 0


def check_in(conn: psycopg.Connection, *, booking_id: int) -> None:
    """Mark the booking's resident as arrived (the first check-in time is kept)."""
    conn.execute(
        "UPDATE event_bookings SET checked_in_at = coalesce(checked_in_at, now()) "
        "WHERE booking_id = %s",
        (booking_id,),
    )
