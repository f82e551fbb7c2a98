"""/api/v1/events: tagging events, bookings, check-in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import AwareDatetime

from api.deps import AnyUserDep, ConnDep, IdPath, RegistryDep, ResidentDep
from api.events import service
from api.events import store as events
from api.events.schemas import BookingOut, EventIn, EventOut
from api.pagination import Page, PageDep, page_of

router = APIRouter(prefix="/api/v1/events", tags=["events"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_event(conn: ConnDep, principal: RegistryDep, body: EventIn) -> EventOut:
    """Create a tagging event (place, time window, capacity). Roles: admin, registrar."""
    return service.create_event(conn, body=body, by=principal)


@router.get("")
def list_events(
    conn: ConnDep,
    principal: AnyUserDep,
    page: PageDep,
    after: Annotated[AwareDatetime | None, Query(description="only events ending later")] = None,
) -> Page[EventOut]:
    """Tagging events by start time. Roles: any."""
    del principal
    rows, total = events.list_events(conn, after=after, limit=page.limit, offset=page.offset)
    return page_of([service.event_out(e) for e in rows], total, page)


@router.get("/{event_id}")
def get_event(conn: ConnDep, principal: AnyUserDep, event_id: IdPath) -> EventOut:
    """One tagging event. Roles: any."""
    del principal
    return service.get_event(conn, event_id=event_id)


@router.post("/{event_id}/bookings", status_code=status.HTTP_201_CREATED, responses={409: {}})
def book(conn: ConnDep, principal: ResidentDep, event_id: IdPath) -> BookingOut:
    """Book a place at the event for yourself. Roles: resident."""
    return service.book(conn, event_id=event_id, by=principal, now=datetime.now(UTC))


@router.get("/{event_id}/bookings")
def list_bookings(
    conn: ConnDep, principal: RegistryDep, event_id: IdPath, page: PageDep
) -> Page[BookingOut]:
    """The event's bookings. Roles: admin, registrar."""
    del principal
    service.get_event(conn, event_id=event_id)
    rows, total = events.list_bookings(
        conn, event_id=event_id, limit=page.limit, offset=page.offset
    )
    return page_of([service.booking_out(b) for b in rows], total, page)


@router.post("/{event_id}/bookings/{booking_id}/check-in")
def check_in(
    conn: ConnDep, principal: RegistryDep, event_id: IdPath, booking_id: IdPath
) -> BookingOut:
    """Check a booked resident in at the desk. Roles: admin, registrar."""
    return service.check_in(conn, event_id=event_id, booking_id=booking_id, by=principal)
