"""GET /api/v1/audit: search the audit log."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel

from api.deps import MAX_ID, AuditorDep, ConnDep
from api.pagination import Page, PageDep, page_of
from api.registry import audit

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class AuditOut(BaseModel):
    """One audit entry: who, role, what, which bike, case/reason, when, from where."""

    audit_id: int
    at: datetime
    actor: str
    role: str
    action: str
    subject: str
    bike_id: int | None
    reason: str
    case_number: str | None
    remote_addr: str
    detail: dict[str, Any]


@router.get("")
def search_audit(
    conn: ConnDep,
    principal: AuditorDep,
    page: PageDep,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[
        str | None, Query(max_length=64, description="exact, or a prefix ending in '.'")
    ] = None,
    bike_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    case_number: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[AwareDatetime | None, Query()] = None,
    until: Annotated[AwareDatetime | None, Query()] = None,
) -> Page[AuditOut]:
    """Entries matching every filter, newest first. Roles: auditor, admin."""
    del principal
    rows, total = audit.search(
        conn,
        actor=actor,
        action=action,
        bike_id=bike_id,
        case_number=case_number,
        since=since,
        until=until,
        limit=page.limit,
        offset=page.offset,
    )
    return page_of([AuditOut(**asdict(r)) for r in rows], total, page)
