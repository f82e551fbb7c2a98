"""Tagging events, bookings and check-in."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

import psycopg

from api.deps import Principal
from api.errors import BadRequestError, ConflictError
from api.events import store as events
from api.events.schemas import BookingOut, EventIn, EventOut
from api.registry import audit
from track_engine.errors import NotFoundError


def event_out(event: events.EventRecord) -> EventOut:
    """Response model of an event."""
    return EventOut(**asdict(event))


def booking_out(booking: events.BookingRecord) -> BookingOut:
    """Response model of a booking."""
    return BookingOut(**asdict(booking))


def create_event(conn: psycopg.Connection, *, body: EventIn, by: Principal) -> EventOut:
    """Create an event."""
    event_id = events.create_event(conn, **body.model_dump())
    audit.record(conn, by, "event.create", subject=f"event:{event_id}")
    return get_event(conn, event_id=event_id)


def get_event(conn: psycopg.Connection, *, event_id: int) -> EventOut:
    """One event; NotFoundError if there is none."""
    event = events.get_event(conn, event_id)
    if event is None:
        raise NotFoundError(f"no tagging event {event_id}")
    return event_out(event)


def book(conn: psycopg.Connection, *, event_id: int, by: Principal, now: datetime) -> BookingOut:
    """Book a place for the calling resident: 409 if full, already booked or over."""
    event = events.get_event(conn, event_id, lock=True)
    if event is None:
        raise NotFoundError(f"no tagging event {event_id}")
    if event.ends_at <= now:
        raise ConflictError(f"tagging event {event_id} is over", code="event-over")
    if event.booked >= event.capacity:
        raise ConflictError(f"tagging event {event_id} is fully booked", code="event-full")
    booking_id = events.book(conn, event_id=event_id, user_id=by.user_id)
    if booking_id is None:
        raise ConflictError("you have already booked this event", code="already-booked")
    booking = events.get_booking(conn, booking_id)
    if booking is None:
        raise RuntimeError("book: the booking just written is gone")
    return booking_out(booking)


def check_in(
    conn: psycopg.Connection, *, event_id: int, booking_id: int, by: Principal
) -> BookingOut:
    """A registrar checks the booking's resident in."""
    booking = events.get_booking(conn, booking_id)
    if booking is None or booking.event_id != event_id:
        raise NotFoundError(f"no booking {booking_id} at tagging event {event_id}")
    if booking.checked_in_at is not None:
        raise BadRequestError(f"booking {booking_id} is already checked in")
    events.check_in(conn, booking_id=booking_id)
    audit.record(conn, by, "event.check_in", subject=f"booking:{booking_id}")
    updated = events.get_booking(conn, booking_id)
    if updated is None:
        raise RuntimeError("check_in: the booking just updated is gone")
    return booking_out(updated)


def event_exists(conn: psycopg.Connection, event_id: int) -> bool:
    """Whether the tagging event exists (a registration may name the one it happens at)."""
    return events.get_event(conn, event_id) is not None


def booking_user_id(conn: psycopg.Connection, booking_id: int) -> int | None:
    """The user who made the booking; None if there is no such booking."""
    booking = events.get_booking(conn, booking_id)
    return None if booking is None else booking.user_id


def mark_arrived(conn: psycopg.Connection, booking_id: int) -> None:
    """Mark the booking's resident as arrived: their bike is being registered at the event
    (the registration is what the audit log records)."""
    events.check_in(conn, booking_id=booking_id)
