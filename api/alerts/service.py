"""The duty desk's memory: what was raised this shift or in the last 24 hours (also while no
desk was open), filtered, and acknowledged by whom and when.

A history shows where watched bikes passed readers: like a resumed live stream it needs
grounds (a case number or a reason, :mod:`api.grounds`) and each look is audited with the
filters and the bikes it showed. The first acknowledgement of an item stands; a second is a
409 naming who was first. Each acknowledgement is audited.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import psycopg

from api.alerts import store
from api.alerts.schemas import DeskHistoryOut, DeskItemOut, Period, WaitingOut
from api.deps import Principal
from api.errors import ConflictError
from api.grounds import check_case, check_reason
from api.pagination import PageParams
from api.registry import audit
from track_engine.errors import NotFoundError


@dataclasses.dataclass(frozen=True, slots=True)
class Shifts:
    """Shifts of ``hours`` each, the first starting ``first_hour_utc`` hours after midnight
    UTC (8 and 6: 06:00, 14:00, 22:00 UTC)."""

    hours: int = 8
    first_hour_utc: int = 6

    def __post_init__(self) -> None:
        if not 1 <= self.hours <= 24 or not 0 <= self.first_hour_utc <= 23:
            raise ValueError(f"shifts of {self.hours} h from {self.first_hour_utc}:00 UTC")

    def start(self, now: datetime) -> datetime:
        """When the shift running at ``now`` began."""
        step = timedelta(hours=self.hours)
        origin = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
            hours=self.first_hour_utc
        )
        while origin > now:
            origin -= step
        while origin + step <= now:
            origin += step
        return origin


WAITING_FOR = timedelta(hours=24)


def period_start(period: Period, *, now: datetime, shifts: Shifts) -> datetime:
    """The start of ``period`` at ``now``."""
    return shifts.start(now) if period == "shift" else now - WAITING_FOR


def waiting_start(period: Period, *, now: datetime) -> datetime | None:
    """This shift also shows what still waits from before it (the last 24 h): a desk closed
    over a change of shift must not lose an alert nobody took. None for the 24-hour view."""
    return now - WAITING_FOR if period == "shift" else None


def item_out(item: store.DeskItem) -> DeskItemOut:
    """Response model of a history item."""
    return DeskItemOut(**dataclasses.asdict(item))


def history(
    conn: psycopg.Connection,
    *,
    desk: store.DeskFilter,
    period: Period,
    page: PageParams,
    by: Principal,
    reason: str,
    case_number: str | None,
) -> DeskHistoryOut:
    """A page of the desk's history, audited with its filters and the bikes it shows."""
    record = audit.AuditRow(
        actor=by.username,
        role=by.role,
        action="alerts.history",
        subject=f"bike:{desk.bike_id}" if desk.bike_id else "",
        bike_id=desk.bike_id,
        reason=check_reason(reason, case_number),
        case_number=case_number,
        remote_addr=by.remote_addr,
    )
    check_case(conn, record)
    rows, total = store.desk_items(conn, desk, limit=page.limit, offset=page.offset)
    _, waiting = store.desk_items(
        conn, dataclasses.replace(desk, acknowledged=False), limit=0, offset=0
    )
    audit.append_row(
        conn,
        dataclasses.replace(
            record,
            detail={
                "period": period,
                "since": desk.since.isoformat(),
                "waiting_since": desk.waiting_since.isoformat() if desk.waiting_since else None,
                "filters": {
                    "kind": desk.kind,
                    "bike_id": desk.bike_id,
                    "plate_key": desk.plate_key,
                    "case_number": desk.case_number,
                    "acknowledged": desk.acknowledged,
                },
                "shown": [f"{r.source}:{r.id}" for r in rows],
                "bike_ids": sorted({r.bike_id for r in rows}),
            },
        ),
    )
    return DeskHistoryOut(
        items=[item_out(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
        since=desk.since,
        waiting_since=desk.waiting_since,
        unacknowledged=waiting,
    )


def waiting(conn: psycopg.Connection, desk: store.DeskFilter) -> WaitingOut:
    """How many items ``desk`` would count as waiting (what :func:`history` answers as
    ``unacknowledged``, for either period: unacknowledged and raised in the last 24 h).

    Not audited: a number says nothing of where a bike was, like the bare ``alert`` events a
    fresh desk stream pushes without grounds."""
    floor = desk.waiting_since or desk.since
    _, count = store.desk_items(
        conn,
        dataclasses.replace(desk, since=floor, waiting_since=None, acknowledged=False),
        limit=0,
        offset=0,
    )
    return WaitingOut(unacknowledged=count, waiting_since=floor)


def acknowledge(
    conn: psycopg.Connection, *, source: store.Source, item_id: int, by: Principal, note: str
) -> DeskItemOut:
    """Acknowledge an alert or flag as ``by``, now; audited. NotFoundError if there is no such
    item, ConflictError if someone acknowledged it first."""
    if not store.acknowledge(conn, source, item_id, user_id=by.user_id):
        item = store.desk_item(conn, source, item_id)
        if item is None:
            raise NotFoundError(f"no {source} {item_id}")
        raise ConflictError(
            f"{source} {item_id} was acknowledged by {item.acknowledged_by} at "
            f"{item.acknowledged_at:%Y-%m-%d %H:%M:%S %Z}",
            code="already-acknowledged",
        )
    item = store.desk_item(conn, source, item_id)
    if item is None:  # acknowledged a moment ago in this transaction: cannot vanish
        raise NotFoundError(f"no {source} {item_id}")
    audit.append(
        conn,
        actor=by.username,
        role=by.role,
        action=f"{source}.acknowledge",
        subject=f"{source}:{item_id}",
        bike_id=item.bike_id,
        case_number=item.case_number,
        remote_addr=by.remote_addr,
        detail={"note": note, "kind": item.kind, "raised_at": item.raised_at.isoformat()},
    )
    return item_out(item)


def announce_acknowledged(conn: psycopg.Connection, *, source: store.Source, item_id: int) -> None:
    """Commit the acknowledgement just made on ``conn``, then tell the other open desks (a
    notification sent before the commit could wake a desk that still reads the old row)."""
    conn.commit()
    store.notify_acknowledged(conn, source, item_id)
