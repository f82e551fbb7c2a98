"""/api/v1/thefts, /api/v1/bikes/{id}/watches, /api/v1/watches/{id}, /api/v1/alerts/mine."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from api.bikes.service import visible_bike
from api.deps import (
    ConnDep,
    DutyDeskDep,
    IdPath,
    OfficerDep,
    ReporterDep,
    ResidentDep,
    require,
)
from api.deps import Principal as _Principal
from api.pagination import Page, PageDep, page_of
from api.registry import cases
from api.thefts import service
from api.thefts.schemas import (
    ConfirmIn,
    RecoverIn,
    ResidentAlertOut,
    TheftIn,
    TheftOut,
    WatchIn,
    WatchOut,
)

router = APIRouter(prefix="/api/v1", tags=["thefts and watches"])
TheftViewerDep = Annotated[_Principal, require("admin", "officer", "resident")]
WatchViewerDep = Annotated[_Principal, require("officer", "resident")]


@router.post("/thefts", status_code=status.HTTP_201_CREATED, responses={409: {}})
def report_theft(conn: ConnDep, principal: ReporterDep, body: TheftIn) -> TheftOut:
    """Report a theft; the bike's watch opens at once. Residents report their own bikes.
    Roles: officer, resident."""
    return service.report(conn, body=body, by=principal, now=datetime.now(UTC))


@router.get("/thefts")
def list_thefts(
    conn: ConnDep,
    principal: DutyDeskDep,
    page: PageDep,
    status: Annotated[
        Literal["reported", "confirmed", "recovered", "closed"] | None, Query()
    ] = None,
) -> Page[TheftOut]:
    """Thefts, newest report first. Roles: admin, officer."""
    del principal
    rows, total = cases.list_thefts(conn, status=status, limit=page.limit, offset=page.offset)
    return page_of([service.theft_out(t) for t in rows], total, page)


@router.get("/thefts/{theft_id}")
def get_theft(conn: ConnDep, principal: TheftViewerDep, theft_id: IdPath) -> TheftOut:
    """One theft (residents: their own bikes'). Roles: admin, officer, resident."""
    return service.get_theft(conn, theft_id=theft_id, by=principal)


@router.post("/thefts/{theft_id}/confirm", responses={409: {}})
def confirm_theft(
    conn: ConnDep, principal: OfficerDep, theft_id: IdPath, body: ConfirmIn
) -> TheftOut:
    """Confirm a reported theft under a case number. Roles: officer."""
    return service.confirm(conn, theft_id=theft_id, case_number=body.case_number, by=principal)


@router.post("/thefts/{theft_id}/recover", responses={409: {}})
def recover_theft(
    conn: ConnDep, principal: OfficerDep, theft_id: IdPath, body: RecoverIn
) -> TheftOut:
    """Close the theft as recovered; its watch closes. Roles: officer."""
    at = body.recovered_at or datetime.now(UTC)
    return service.recover(conn, theft_id=theft_id, at=at, by=principal)


@router.post("/bikes/{bike_id}/watches", status_code=status.HTTP_201_CREATED)
def arm_watch(conn: ConnDep, principal: ResidentDep, bike_id: IdPath, body: WatchIn) -> WatchOut:
    """Arm "alert me if my bike moves" for a window. Roles: resident (own bike)."""
    return service.arm(conn, bike_id=bike_id, body=body, by=principal, now=datetime.now(UTC))


@router.get("/bikes/{bike_id}/watches")
def list_watches(conn: ConnDep, principal: WatchViewerDep, bike_id: IdPath) -> list[WatchOut]:
    """The bike's open watches. Roles: officer, resident (own bike)."""
    visible_bike(conn, bike_id=bike_id, by=principal)
    return [service.watch_out(w) for w in cases.bike_watches(conn, bike_id)]


@router.delete("/watches/{watch_id}")
def disarm_watch(conn: ConnDep, principal: ResidentDep, watch_id: IdPath) -> WatchOut:
    """Disarm your own "alert me" watch. Roles: resident."""
    return service.disarm(conn, watch_id=watch_id, by=principal)


@router.get("/alerts/mine")
def my_alerts(conn: ConnDep, principal: ResidentDep, page: PageDep) -> Page[ResidentAlertOut]:
    """Reads of your bikes while armed, newest first, each with a one-step "report stolen".
    Roles: resident."""
    items, total = service.resident_alerts(conn, by=principal, limit=page.limit, offset=page.offset)
    return page_of(items, total, page)
