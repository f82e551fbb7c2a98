"""/api/v1/alerts: the duty desk's history (this shift, the last 24 h) and acknowledgements."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Query

from api.alerts import service, store
from api.alerts.schemas import (
    AcknowledgeIn,
    DeskHistoryOut,
    DeskItemOut,
    Kind,
    Period,
    WaitingOut,
)
from api.deps import MAX_ID, ConfigDep, ConnDep, DutyDeskDep, IdPath
from api.pagination import PageDep
from api.thefts.schemas import CASE_PATTERN
from track_engine.identifiers import normalize_plate

router = APIRouter(prefix="/api/v1/alerts", tags=["duty desk"])
_ACK_RESPONSES: dict[int | str, dict[str, str]] = {
    404: {"description": "no such alert or flag"},
    409: {"description": "acknowledged already (the problem names by whom and when)"},
}
Ack = Annotated[AcknowledgeIn | None, Body()]


@router.get("", responses={400: {}, 404: {}, 422: {}})
def desk_history(
    config: ConfigDep,
    conn: ConnDep,
    principal: DutyDeskDep,
    page: PageDep,
    period: Annotated[Period, Query(description="this shift, or the last 24 hours")] = "shift",
    kind: Annotated[Kind | None, Query()] = None,
    bike_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    plate: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    case: Annotated[str | None, Query(pattern=CASE_PATTERN, description="alerts of a case")] = None,
    acknowledged: Annotated[bool | None, Query(description="true, false; absent: all")] = None,
    reason: Annotated[str, Query(max_length=500)] = "",
    case_number: Annotated[str | None, Query(pattern=CASE_PATTERN)] = None,
) -> DeskHistoryOut:
    """Alerts of watched bikes and stolen-match flags raised this shift or in the last 24 h
    (also while no desk was open; this shift also lists what still waits from the last 24 h),
    newest first, with who acknowledged each and when. It shows
    where bikes passed readers: it needs a case number or a reason and is audited.
    Roles: admin, officer."""
    now = datetime.now(UTC)
    desk = store.DeskFilter(
        since=service.period_start(
            period,
            now=now,
            shifts=service.Shifts(config.desk_shift_hours, config.desk_shift_first_hour_utc),
        ),
        waiting_since=service.waiting_start(period, now=now),
        kind=kind,
        bike_id=bike_id,
        plate_key=normalize_plate(plate) if plate else None,
        case_number=case,
        acknowledged=acknowledged,
    )
    return service.history(
        conn,
        desk=desk,
        period=period,
        page=page,
        by=principal,
        reason=reason,
        case_number=case_number,
    )


@router.get("/waiting", responses={422: {}})
def desk_waiting(
    conn: ConnDep,
    principal: DutyDeskDep,
    kind: Annotated[Kind | None, Query()] = None,
    bike_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    plate: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    case: Annotated[str | None, Query(pattern=CASE_PATTERN, description="alerts of a case")] = None,
) -> WaitingOut:
    """How many alerts and flags of the last 24 h nobody has acknowledged, under the same
    filters as the history (the history's ``unacknowledged``): a desk asks again when
    another desk acknowledged an item it does not list (it lists at most 200). A count only,
    so it needs no grounds and is not audited. Roles: admin, officer."""
    del principal  # the role check is the dependency's
    desk = store.DeskFilter(
        since=service.period_start("24h", now=datetime.now(UTC), shifts=service.Shifts()),
        kind=kind,
        bike_id=bike_id,
        plate_key=normalize_plate(plate) if plate else None,
        case_number=case,
    )
    return service.waiting(conn, desk)


@router.post("/{alert_id}/acknowledge", responses=_ACK_RESPONSES)
def acknowledge_alert(
    conn: ConnDep, principal: DutyDeskDep, alert_id: IdPath, body: Ack = None
) -> DeskItemOut:
    """Acknowledge an alert: you, now (audited); every open desk's live stream then shows it
    acknowledged (an ``ack`` event). Roles: admin, officer."""
    note = body.note if body else ""
    done = service.acknowledge(conn, source="alert", item_id=alert_id, by=principal, note=note)
    service.announce_acknowledged(conn, source="alert", item_id=alert_id)
    return done


@router.post("/flags/{flag_id}/acknowledge", responses=_ACK_RESPONSES)
def acknowledge_flag(
    conn: ConnDep, principal: DutyDeskDep, flag_id: IdPath, body: Ack = None
) -> DeskItemOut:
    """Acknowledge a stolen-match flag: you, now (audited); every open desk's live stream then
    shows it acknowledged (an ``ack`` event). Roles: admin, officer."""
    note = body.note if body else ""
    done = service.acknowledge(conn, source="flag", item_id=flag_id, by=principal, note=note)
    service.announce_acknowledged(conn, source="flag", item_id=flag_id)
    return done
