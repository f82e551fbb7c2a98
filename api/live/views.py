"""/api/v1/live: SSE per bike or case, and the duty desk's stream of all alerts."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from api.deps import ConfigDep, ConnDep, DutyDeskDep, IdPath, NetworkDep, OfficerDep, PoolDep
from api.errors import LookupNotFoundError
from api.grounds import check_case, check_reason
from api.live.listener import LiveHub
from api.live.service import (
    Cursor,
    bike_poller,
    desk_poller,
    resume_desk,
    start_cursor,
    stream,
)
from api.openapi import LOOKUP_RESPONSES
from api.registry import audit, bikes, cases
from api.thefts.schemas import CASE_PATTERN

router = APIRouter(prefix="/api/v1/live", tags=["live"])

_SSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}
}
# A live bike or case stream is a location lookup: the same refusals as the route's.
_LOOKUP_SSE = {**_SSE, **LOOKUP_RESPONSES}
LastEventId = Annotated[str | None, Header(max_length=40, description="resume after this event id")]
MaxEvents = Annotated[int | None, Query(ge=1, le=10_000, description="close after N events")]
MaxSeconds = Annotated[float | None, Query(gt=0, le=86_400, description="close after N s")]
Reason = Annotated[str, Query(max_length=500)]
_FRESH_ACKS = timedelta(minutes=1)
Since = Annotated[AwareDatetime | None, Query(description="replay passages from this time")]


def live_hub(request: Request) -> LiveHub:
    """The process's listener (started in the app's lifespan)."""
    hub: LiveHub = request.app.state.live_hub
    return hub


HubDep = Annotated[LiveHub, Depends(live_hub)]


def _response(body: object) -> StreamingResponse:
    return StreamingResponse(
        body,  # type: ignore[arg-type]
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _bike_stream(
    conn: ConnDep,
    pool: PoolDep,
    network: NetworkDep,
    hub: HubDep,
    *,
    bike_id: int,
    last_event_id: str | None,
    since: datetime | None,
    max_events: int | None,
    max_seconds: float | None,
) -> StreamingResponse:
    cursor: Cursor = start_cursor(conn, last_event_id=last_event_id, since=since, desk=False)
    return _response(
        stream(
            bike_poller(pool, network, bike_id=bike_id),
            cursor,
            hub=hub,
            bike_id=bike_id,
            max_events=max_events,
            max_seconds=max_seconds,
        )
    )


@router.get("/bikes/{bike_id}", response_class=StreamingResponse, responses=_LOOKUP_SSE)
def live_bike(
    conn: ConnDep,
    pool: PoolDep,
    network: NetworkDep,
    hub: HubDep,
    principal: OfficerDep,
    bike_id: IdPath,
    reason: Reason = "",
    case_number: Annotated[str | None, Query(pattern=CASE_PATTERN)] = None,
    since: Since = None,
    max_events: MaxEvents = None,
    max_seconds: MaxSeconds = None,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """New passages (with the route's extension) and alerts of one bike. Roles: officer."""
    record = audit.row_by(
        principal,
        "live.bike",
        subject=f"bike:{bike_id}",
        bike_id=bike_id,
        reason=check_reason(reason, case_number),
        case_number=case_number,
    )
    check_case(conn, record)
    if bikes.bike_detail(conn, bike_id) is None:
        raise LookupNotFoundError(f"no bike {bike_id}", record=record)
    audit.append_row(conn, record)
    return _bike_stream(
        conn,
        pool,
        network,
        hub,
        bike_id=bike_id,
        last_event_id=last_event_id,
        since=since,
        max_events=max_events,
        max_seconds=max_seconds,
    )


@router.get("/cases/{case_number}", response_class=StreamingResponse, responses=_LOOKUP_SSE)
def live_case(
    conn: ConnDep,
    pool: PoolDep,
    network: NetworkDep,
    hub: HubDep,
    principal: OfficerDep,
    case_number: Annotated[str, Path(pattern=CASE_PATTERN)],
    since: Since = None,
    max_events: MaxEvents = None,
    max_seconds: MaxSeconds = None,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """The stream of the case's bike (the open case's number is the reason). Roles: officer."""
    record = audit.row_by(
        principal, "live.case", subject=f"case:{case_number}", case_number=case_number
    )
    check_case(conn, record)
    theft = cases.theft_by_case(conn, case_number)
    if theft is None:  # gone since check_case found it: the same answer, audited
        raise LookupNotFoundError(f"no case {case_number}", record=record)
    audit.append_row(
        conn,
        dataclasses.replace(record, subject=f"bike:{theft.bike_id}", bike_id=theft.bike_id),
    )
    return _bike_stream(
        conn,
        pool,
        network,
        hub,
        bike_id=theft.bike_id,
        last_event_id=last_event_id,
        since=(since or theft.stolen_at) if last_event_id is None else None,
        max_events=max_events,
        max_seconds=max_seconds,
    )


@router.get("/alerts", response_class=StreamingResponse, responses=_SSE)
def live_alerts(
    conn: ConnDep,
    pool: PoolDep,
    hub: HubDep,
    config: ConfigDep,
    principal: DutyDeskDep,
    reason: Reason = "",
    case_number: Annotated[str | None, Query(pattern=CASE_PATTERN)] = None,
    max_events: MaxEvents = None,
    max_seconds: MaxSeconds = None,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """The duty desk: every alert of a watched bike and every stolen-match flag, as they
    happen, and every acknowledgement (``ack``: source, id, by whom, when). Resuming
    (``Last-Event-ID``) replays what was raised meanwhile, at most the last
    ``live_replay_max_s`` (10 minutes by default), and needs a case number or a reason like
    any location lookup; its audit entry says what was replayed. Roles: admin, officer."""
    # A fresh stream needs no grounds (it shows what happens from now on), but grounds given
    # are checked like any; a resume replays the past, so it needs them.
    resume = bool(last_event_id)
    record = audit.row_by(
        principal,
        "live.alerts",
        reason=check_reason(reason, case_number) if resume or reason.strip() else "",
        case_number=case_number,
    )
    check_case(conn, record)
    since: datetime | None = None
    if not last_event_id:
        cursor = start_cursor(conn, last_event_id=None, since=None, desk=True)
    else:
        since = datetime.now(UTC) - timedelta(seconds=config.live_replay_max_s)
        cursor, replay = resume_desk(conn, Cursor.parse(last_event_id), since=since)
        record = dataclasses.replace(
            record, detail={"last_event_id": last_event_id, "replay": replay}
        )
    audit.append_row(conn, record)
    return _response(
        stream(
            # A fresh desk loaded its history a moment ago: acknowledgements of the last
            # minute cover that gap; a resumed one gets those of its replay window.
            desk_poller(
                pool, raised_since=since, acks_since=since or datetime.now(UTC) - _FRESH_ACKS
            ),
            cursor,
            hub=hub,
            bike_id=None,
            max_events=max_events,
            max_seconds=max_seconds,
        )
    )
