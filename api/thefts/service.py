"""Theft reports open a watch at once; officers confirm and close them; residents arm watches."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta

import psycopg

from api.bikes.service import visible_bike
from api.deps import Principal
from api.errors import BadRequestError, ConflictError
from api.registry import audit, cases
from api.registry import loaders as registry
from api.thefts.schemas import (
    ReportAction,
    ResidentAlertOut,
    TheftIn,
    TheftOut,
    WatchIn,
    WatchOut,
)
from track_engine.errors import NotFoundError

MAX_WATCH = timedelta(days=31)
_OPEN = ("reported", "confirmed")


def theft_out(theft: cases.TheftRecord) -> TheftOut:
    """Response model of a theft."""
    data = asdict(theft)
    data.pop("reported_by")
    return TheftOut(**data)


def watch_out(watch: cases.WatchRecord) -> WatchOut:
    """Response model of a watch."""
    data = asdict(watch)
    data.pop("created_by")
    return WatchOut(**data)


def report(conn: psycopg.Connection, *, body: TheftIn, by: Principal, now: datetime) -> TheftOut:
    """Record a theft and open its watch at once (the engine reloads on NOTIFY)."""
    bike = visible_bike(conn, bike_id=body.bike_id, by=by)
    if bike.deregistered_at is not None:
        raise ConflictError(f"bike {bike.bike_id} is deregistered", code="deregistered")
    if bike.theft is not None:
        raise ConflictError(
            f"bike {bike.bike_id} is already reported stolen (theft {bike.theft.theft_id})",
            code="already-reported",
        )
    if body.stolen_at > now + timedelta(minutes=5):
        raise BadRequestError("stolen_at is in the future")
    theft_id, _watch_id = registry.open_theft(
        conn,
        bike_id=bike.bike_id,
        stolen_at=body.stolen_at,
        reported_at=now,
        place=body.place,
        description=body.description,
        case_number=None,
        reported_by=by.user_id,
    )
    audit.record(conn, by, "theft.report", subject=f"theft:{theft_id}", bike_id=bike.bike_id)
    return get_theft(conn, theft_id=theft_id, by=by)


def get_theft(conn: psycopg.Connection, *, theft_id: int, by: Principal) -> TheftOut:
    """One theft (residents: of their own bikes only, reported since they own it — a previous
    owner's report, with its place and story, is not theirs)."""
    theft = cases.get_theft(conn, theft_id)
    if theft is None:
        raise NotFoundError(f"no theft {theft_id}")
    if by.role == "resident":
        try:
            bike = visible_bike(conn, bike_id=theft.bike_id, by=by)
        except NotFoundError:
            raise NotFoundError(f"no theft {theft_id}") from None
        if theft.reported_at < bike.owner_since:
            raise NotFoundError(f"no theft {theft_id}")
    return theft_out(theft)


def _open_theft(conn: psycopg.Connection, theft_id: int) -> cases.TheftRecord:
    """The theft, still open (reported or confirmed): not found, or a conflict if it closed."""
    theft = cases.get_theft(conn, theft_id)
    if theft is None:
        raise NotFoundError(f"no theft {theft_id}")
    if theft.status not in _OPEN:
        raise ConflictError(f"theft {theft_id} is {theft.status}", code="theft-closed")
    return theft


def confirm(
    conn: psycopg.Connection, *, theft_id: int, case_number: str, by: Principal
) -> TheftOut:
    """An officer confirms a reported theft under a case number (unique)."""
    theft = _open_theft(conn, theft_id)
    other = cases.theft_by_case(conn, case_number)
    if other is not None and other.theft_id != theft_id:
        raise ConflictError(
            f"case number {case_number} is already used by theft {other.theft_id}",
            code="case-number-taken",
        )
    cases.confirm_theft(conn, theft_id=theft_id, case_number=case_number)
    audit.record(
        conn,
        by,
        "theft.confirm",
        subject=f"theft:{theft_id}",
        bike_id=theft.bike_id,
        case_number=case_number,
    )
    return get_theft(conn, theft_id=theft_id, by=by)


def recover(conn: psycopg.Connection, *, theft_id: int, at: datetime, by: Principal) -> TheftOut:
    """The bike is back: the theft closes as recovered and its watch closes."""
    theft = _open_theft(conn, theft_id)
    if at < theft.stolen_at:
        raise BadRequestError("recovered_at is before the theft")
    cases.recover_theft(conn, theft_id=theft_id, at=at)
    audit.record(
        conn,
        by,
        "theft.recover",
        subject=f"theft:{theft_id}",
        bike_id=theft.bike_id,
        case_number=theft.case_number,
    )
    return get_theft(conn, theft_id=theft_id, by=by)


def arm(
    conn: psycopg.Connection, *, bike_id: int, body: WatchIn, by: Principal, now: datetime
) -> WatchOut:
    """Arm "alert me if it moves" on one's own bike for a window."""
    bike = visible_bike(conn, bike_id=bike_id, by=by)
    starts_at = body.starts_at or now
    if not starts_at < body.ends_at or body.ends_at - starts_at > MAX_WATCH:
        raise BadRequestError("the window must end after it starts and last at most 31 days")
    if body.ends_at <= now:
        raise BadRequestError("the window is already over")
    watch_id = cases.arm_watch(
        conn, bike_id=bike.bike_id, user_id=by.user_id, starts_at=starts_at, ends_at=body.ends_at
    )
    audit.record(conn, by, "watch.arm", subject=f"watch:{watch_id}", bike_id=bike.bike_id)
    watch = cases.get_watch(conn, watch_id)
    if watch is None:
        raise RuntimeError("arm: the watch just written is gone")
    return watch_out(watch)


def disarm(conn: psycopg.Connection, *, watch_id: int, by: Principal) -> WatchOut:
    """Close one's own armed watch."""
    watch = cases.get_watch(conn, watch_id)
    if watch is None or watch.kind != "armed" or watch.created_by != by.user_id:
        raise NotFoundError(f"no armed watch {watch_id} of yours")
    cases.close_watch(conn, watch_id=watch_id)
    audit.record(conn, by, "watch.disarm", subject=f"watch:{watch_id}", bike_id=watch.bike_id)
    closed = cases.get_watch(conn, watch_id)
    if closed is None:
        raise RuntimeError("disarm: the watch just closed is gone")
    return watch_out(closed)


def resident_alerts(
    conn: psycopg.Connection, *, by: Principal, limit: int, offset: int
) -> tuple[list[ResidentAlertOut], int]:
    """Reads of the resident's bikes while armed, each with its one-step "report stolen"."""
    if by.owner_id is None:
        return [], 0
    rows, total = cases.owner_alerts(conn, owner_id=by.owner_id, limit=limit, offset=offset)
    return [
        ResidentAlertOut(
            alert_id=r["alert_id"],
            bike_id=r["bike_id"],
            reader_id=r["reader_id"],
            read_at=r["read_at"],
            lon=r["lon"],
            lat=r["lat"],
            report_stolen=ReportAction(
                body=TheftIn(
                    bike_id=r["bike_id"],
                    stolen_at=r["read_at"],
                    place=f"last read at reader {r['reader_id']}",
                    description="moved while 'alert me' was armed",
                )
            ),
        )
        for r in rows
    ], total
