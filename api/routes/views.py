"""GET /api/v1/routes/{plate}"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.deps import ConnDep, NetworkDep
from api.routes.service import route_for_plate

router = APIRouter(prefix="/api/v1/routes", tags=["routes"])


@router.get("/{plate}")
def get_route(
    conn: ConnDep,
    network: NetworkDep,
    plate: Annotated[str, Path(max_length=32)],
    since: datetime | None = None,
    until: datetime | None = None,
    reason: Annotated[str, Query(max_length=500)] = "",
    case_number: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """The bike's route since the theft (or the last day), as a GeoJSON Feature with times."""
    return route_for_plate(
        conn,
        network,
        plate=plate,
        since=since,
        until=until,
        actor="anonymous",
        reason=reason,
        case_number=case_number,
    )
