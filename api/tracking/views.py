"""Officers' location lookups: /api/v1/routes/{plate} (GeoJSON, exports, cameras), last seen,
next readers, companions. Each needs a case number or a reason and is audited."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from api.deps import (
    ConnDep,
    DutyDeskDep,
    IdPath,
    LookupConnDep,
    NetworkDep,
    OfficerDep,
    OfficerLookupDep,
    PoolDep,
    Principal,
)
from api.openapi import LOOKUP_RESPONSES
from api.thefts.schemas import CASE_PATTERN
from api.tracking import lookups, overview
from api.tracking.case_sheet import MEDIA_TYPE as PDF_MEDIA_TYPE
from api.tracking.case_sheet import RoadContext, SheetHeader, sheet_zone, to_pdf
from api.tracking.exports import MEDIA_TYPES, RENDERERS
from api.tracking.schemas import OpenTheftsOut
from api.tracking.service import (
    RouteRequest,
    cameras_near_passages,
    route_for_plate,
    route_for_plate_async,
)
from api.tracking.where_now import where_now_lookup

router = APIRouter(prefix="/api/v1", tags=["routes"], responses=LOOKUP_RESPONSES)

PlatePath = Annotated[str, Path(max_length=32, examples=["浙B12345"])]
Reason = Annotated[str, Query(max_length=500, description="why you look (or give a case number)")]
CaseNumber = Annotated[str | None, Query(pattern=CASE_PATTERN, examples=["HZ-2026-001234"])]
# Plain datetimes: the service answers a time without a zone with a clear 400.
Since = Annotated[datetime | None, Query(description="default: the theft, or a day ago")]
Until = Annotated[datetime | None, Query(description="default: now")]


def json_response(content: Any) -> Response:
    """``content`` as JSON, serialized by orjson straight from the service's plain dicts.

    The same document FastAPI's default path makes (pydantic's JSON mode, then ``json.dumps``):
    UTF-8, compact, UTC times ending in ``Z``, NaN and infinities as ``null``; only floats
    below 1e-4 are spelled differently (``0.00001`` for ``1e-05``), the same numbers. It skips
    validating the answer against ``dict[str, Any]`` (which checks nothing) in a worker thread.
    """
    return Response(orjson.dumps(content, option=orjson.OPT_UTC_Z), media_type="application/json")


def _route_request(
    principal: Principal,
    plate: str,
    since: datetime | None,
    until: datetime | None,
    reason: str,
    case_number: str | None,
    action: str = "route.view",
) -> RouteRequest:
    """The route lookup a view makes for ``principal``, audited as ``action``."""
    return RouteRequest(
        plate=plate, since=since, until=until, reason=reason, case_number=case_number,
        actor=principal.username, role=principal.role, remote_addr=principal.remote_addr,
        action=action,
    )  # fmt: skip


# Route, last seen and next readers are the officers' hot lookups: ``async`` views on the
# event loop with an asyncio connection (LookupConnDep) and every dependency ``async``, so a
# request never hops to a worker thread (a route not stitched yet is the one exception).


@router.get("/routes/{plate}", response_model=dict[str, Any])
async def get_route(
    conn: LookupConnDep,
    network: NetworkDep,
    pool: PoolDep,
    principal: OfficerLookupDep,
    plate: PlatePath,
    since: Since = None,
    until: Until = None,
    reason: Reason = "",
    case_number: CaseNumber = None,
) -> Response:
    """The bike's route since the theft (or the last day), as a GeoJSON Feature with a time
    per point, its passages and inferred stretches marked (``kinds``). Roles: officer."""
    feature = await route_for_plate_async(
        conn, network, pool, _route_request(principal, plate, since, until, reason, case_number)
    )
    return json_response(feature)


@router.get(
    "/routes/{plate}/export",
    response_class=Response,
    responses={200: {"content": {m: {} for m in (*MEDIA_TYPES.values(), PDF_MEDIA_TYPE)}}},
)
def export_route(
    conn: ConnDep,
    network: NetworkDep,
    principal: OfficerDep,
    plate: PlatePath,
    format: Annotated[Literal["gpx", "kml", "csv", "pdf"], Query()],
    since: Since = None,
    until: Until = None,
    reason: Reason = "",
    case_number: CaseNumber = None,
    tz: Annotated[
        str,
        Query(
            max_length=64,
            description="IANA time zone of the PDF sheet's times",
            examples=["Asia/Shanghai"],
        ),
    ] = "UTC",
) -> Response:
    """The route for a case file as GPX, KML, CSV or the PDF case sheet (case number, officer,
    generated time, the route on the road network, every passage with its time in ``tz`` and
    its reader's address, the streets meeting there).
    Roles: officer."""
    zone = sheet_zone(tz) if format == "pdf" else None
    request = _route_request(
        principal, plate, since, until, reason, case_number, action=f"route.export.{format}"
    )
    feature = route_for_plate(conn, network, request)
    name = "".join(ch for ch in feature["properties"]["plate"] if ch.isascii() and ch.isalnum())
    disposition = {"Content-Disposition": f'attachment; filename="route-{name or "bike"}.{format}"'}
    if zone is not None:
        loaded = network.get(conn)
        graph = loaded.graph
        roads = RoadContext(graph.node_lonlat, graph.edge_src, graph.edge_dst)
        header = SheetHeader(
            plate=feature["properties"]["plate"], case_number=request.case_number,
            reason=request.reason, officer=principal.username,
            generated_at=datetime.now(UTC), zone=zone,
        )  # fmt: skip
        body = to_pdf(feature, header, roads, loaded.reader_addresses)
        return Response(body, media_type=PDF_MEDIA_TYPE, headers=disposition)
    return Response(RENDERERS[format](feature), media_type=MEDIA_TYPES[format], headers=disposition)


@router.get("/routes/{plate}/cameras")
def route_cameras(
    conn: ConnDep,
    network: NetworkDep,
    principal: OfficerDep,
    plate: PlatePath,
    since: Since = None,
    until: Until = None,
    reason: Reason = "",
    case_number: CaseNumber = None,
    radius_m: Annotated[float, Query(gt=0, le=2000)] = 150.0,
) -> list[dict[str, Any]]:
    """Cameras near each passage of the route, with the time window and footage URL.
    Roles: officer."""
    request = _route_request(
        principal, plate, since, until, reason, case_number, action="route.cameras"
    )
    feature = route_for_plate(conn, network, request)
    return cameras_near_passages(conn, feature=feature, radius_m=radius_m)


@router.get("/thefts/open/last-seen")
def open_thefts_last_seen(
    conn: ConnDep,
    principal: DutyDeskDep,
    reason: Reason = "",
    case_number: CaseNumber = None,
) -> OpenTheftsOut:
    """Every open theft (reported or confirmed), newest first, with its plate, case number,
    when it was stolen and its bike's last sighting (reader, position, time; null when not
    seen yet): the duty desk's overview map. Roles: admin, officer."""
    return overview.open_thefts_last_seen(
        conn, by=principal, reason=reason, case_number=case_number
    )


@router.get("/bikes/{bike_id}/last-seen", response_model=dict[str, Any])
async def last_seen(
    conn: LookupConnDep,
    principal: OfficerLookupDep,
    bike_id: IdPath,
    reason: Reason = "",
    case_number: CaseNumber = None,
) -> Response:
    """Where and when the bike was last heard. Roles: officer."""
    return json_response(
        await lookups.last_seen(
            conn, bike_id=bike_id, by=principal, reason=reason, case_number=case_number
        )
    )


@router.get("/bikes/{bike_id}/next-readers", response_model=dict[str, Any])
async def next_readers(
    conn: LookupConnDep,
    network: NetworkDep,
    pool: PoolDep,
    principal: OfficerLookupDep,
    bike_id: IdPath,
    reason: Reason = "",
    case_number: CaseNumber = None,
    limit: Annotated[int, Query(ge=1, le=20)] = 5,
) -> Response:
    """The readers the bike will likely pass next, with probability and ETA. Roles: officer."""
    return json_response(
        await lookups.next_readers(
            conn,
            network,
            pool,
            bike_id=bike_id,
            by=principal,
            reason=reason,
            case_number=case_number,
            limit=limit,
        )
    )


@router.get("/thefts/{theft_id}/companions")
def companions(
    conn: ConnDep,
    principal: OfficerDep,
    theft_id: IdPath,
    reason: Reason = "",
    case_number: CaseNumber = None,
    since: Since = None,
    until: Until = None,
) -> dict[str, Any]:
    """Tags that travelled with the stolen bike, with their bikes' current plates. The
    officer's case number (else the theft's) counts as the reason. Roles: officer."""
    return lookups.companions(
        conn,
        theft_id=theft_id,
        by=principal,
        reason=reason,
        case_number=case_number,
        since=since,
        until=until,
    )


@router.get("/bikes/{bike_id}/where-now", response_model=dict[str, Any])
async def where_now(
    conn: LookupConnDep,
    network: NetworkDep,
    pool: PoolDep,
    principal: OfficerLookupDep,
    bike_id: IdPath,
    reason: Reason = "",
    case_number: CaseNumber = None,
    at: Annotated[datetime | None, Query(description="default: now")] = None,
) -> Response:
    """Where the bike can be now (or ``at``): the road cells holding 90% of the probability
    (GeoJSON, each with its ``probability``), from its last sighting, the readers silent since
    (each by its miss rate) and e-bike speeds; the region's area (km²) and the reach circle's
    radius for comparison. Roles: officer."""
    return json_response(
        await where_now_lookup(
            conn, network, pool, bike_id=bike_id, by=principal, reason=reason,
            case_number=case_number, at=at,
        )
    )  # fmt: skip
