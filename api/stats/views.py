"""GET /api/v1/stats: registrations, thefts, watches hit, recoveries, response times, and
reads and passages per reader per day; GET /api/v1/stats/ingest: ingest lag and reads per
minute for operators."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from api.deps import ConnDep, OperatorDep, SupervisorDep
from api.errors import BadRequestError
from api.stats import store as stats
from api.stats.service import IngestOut, ingest_figures

router = APIRouter(prefix="/api/v1/stats", tags=["statistics"])
MAX_SPAN = timedelta(days=366)


@router.get("")
def get_stats(
    conn: ConnDep,
    principal: SupervisorDep,
    since: Annotated[AwareDatetime | None, Query(description="default: 30 days ago")] = None,
    until: Annotated[AwareDatetime | None, Query(description="default: now")] = None,
) -> dict[str, Any]:
    """Supervisors' figures over a window (at most a year). Roles: auditor, admin."""
    del principal
    until = until or datetime.now(UTC)
    since = since or until - timedelta(days=30)
    if since >= until or until - since > MAX_SPAN:
        raise BadRequestError("since must be before until, and the window at most 366 days")
    return {
        "since": since,
        "until": until,
        "registrations_per_event": stats.registrations_per_event(conn, since=since, until=until),
        "cases": stats.case_figures(conn, since=since, until=until),
        "readers_per_day": stats.reader_days(conn, since=since, until=until),
    }


@router.get("/ingest")
def get_ingest(
    conn: ConnDep,
    principal: OperatorDep,
    window_minutes: Annotated[int, Query(ge=1, le=1440, description="minutes back from now")] = 15,
) -> IngestOut:
    """Ingest lag (now minus the newest stored read) and reads per minute, overall and per
    reader. Roles: admin, officer, operator."""
    del principal
    return ingest_figures(conn, now=datetime.now(UTC), window_minutes=window_minutes)
