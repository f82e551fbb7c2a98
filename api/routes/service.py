"""Route lookups. Every lookup is written to the audit log with its reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from api.bikes.service import lookup_bike
from api.errors import BadRequestError
from api.network.service import NetworkCache
from track_engine.db import queries
from track_engine.errors import NotFoundError
from track_engine.routes import build_route

MAX_WINDOW = timedelta(days=31)


def route_for_plate(
    conn: psycopg.Connection,
    network: NetworkCache,
    *,
    plate: str,
    since: datetime | None,
    until: datetime | None,
    actor: str,
    reason: str,
    case_number: str | None,
) -> dict[str, Any]:
    """The bike's route as a GeoJSON Feature (LineString, a time per point, passages)."""
    if not reason.strip() and not case_number:
        raise BadRequestError("a route lookup needs a case number or a reason")
    if any(t is not None and t.tzinfo is None for t in (since, until)):
        raise BadRequestError("since and until need a time zone, e.g. 2026-11-29T06:00:00Z")
    bike = lookup_bike(conn, plate=plate, frame_number=None)
    until = until or datetime.now(UTC)
    since = since or bike.stolen_at or until - timedelta(days=1)
    if since >= until or until - since > MAX_WINDOW:
        raise BadRequestError("since must be before until, and the window at most 31 days")
    queries.write_audit(
        conn,
        actor=actor,
        action="route.view",
        subject=f"bike:{bike.bike_id}",
        reason=reason,
        case_number=case_number,
        detail={"plate": bike.plate, "since": since.isoformat(), "until": until.isoformat()},
    )
    passages = queries.bike_passages(conn, bike_id=bike.bike_id, since=since, until=until)
    if passages.empty:
        raise NotFoundError(f"bike {bike.plate} was not seen between {since} and {until}")
    loaded = network.get(conn)
    known = passages["reader_id"].isin(list(loaded.reader_nodes))
    # A bike re-tagged within the window has passages under two tag ids; each was filtered to
    # its binding's validity, so together they are the bike's route.
    route = build_route(
        passages[known].assign(tag_id=passages["tag_id"].iloc[-1]),
        loaded.graph,
        loaded.reader_nodes,
        loaded.reader_paths,
    )
    feature = route.to_geojson()
    feature["properties"].update(
        {
            "plate": bike.plate,
            "bike_id": bike.bike_id,
            "since": since.isoformat(),
            "until": until.isoformat(),
            "last_seen": feature["properties"]["passages"][-1]
            if feature["properties"].get("passages")
            else None,
        }
    )
    return feature
