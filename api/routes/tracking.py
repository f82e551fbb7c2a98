"""Last seen, likely next readers and companions: audited location lookups for officers."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from api.deps import Principal
from api.errors import BadRequestError, UnavailableError
from api.network.service import NetworkCache
from api.routes.service import MAX_WINDOW, require_reason
from track_engine.db import audit, bikes, cases, queries
from track_engine.errors import NotFoundError


def _bike(conn: psycopg.Connection, bike_id: int) -> bikes.BikeDetail:
    detail = bikes.bike_detail(conn, bike_id)
    if detail is None:
        raise NotFoundError(f"no bike {bike_id}")
    return detail


def _audit(
    conn: psycopg.Connection,
    *,
    by: Principal,
    action: str,
    bike_id: int,
    reason: str,
    case_number: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    audit.append(
        conn,
        actor=by.username,
        role=by.role,
        action=action,
        subject=f"bike:{bike_id}",
        bike_id=bike_id,
        reason=reason,
        case_number=case_number,
        remote_addr=by.remote_addr,
        detail=detail,
    )


def last_seen(
    conn: psycopg.Connection,
    *,
    bike_id: int,
    by: Principal,
    reason: str,
    case_number: str | None,
) -> dict[str, Any]:
    """Where and when the bike was last heard."""
    require_reason(reason, case_number)
    # One round trip: the bike's existence, the audit row and the sighting. For an unknown
    # bike the answer is 404 and the request's transaction, audit row included, rolls back.
    with conn.pipeline():
        queries.lookup_settings(conn)
        answer = queries.start_last_seen(conn, bike_id=bike_id, check_bike=True)
        _audit(
            conn,
            by=by,
            action="bike.last_seen",
            bike_id=bike_id,
            reason=reason,
            case_number=case_number,
        )
        seen = answer()
    if seen is None:
        raise NotFoundError(f"bike {bike_id} has never been seen")
    return {"bike_id": bike_id, **asdict(seen)}


def next_readers(
    conn: psycopg.Connection,
    network: NetworkCache,
    *,
    bike_id: int,
    by: Principal,
    reason: str,
    case_number: str | None,
    limit: int,
) -> dict[str, Any]:
    """The readers the bike will likely pass next, with ETAs."""
    require_reason(reason, case_number)
    # One round trip: the bike's existence, the audit row, the active network and the
    # sighting; the reader's history is a second one.
    with conn.pipeline():
        queries.lookup_settings(conn)
        answer = queries.start_last_seen(conn, bike_id=bike_id, check_bike=True)
        _audit(
            conn,
            by=by,
            action="bike.next_readers",
            bike_id=bike_id,
            reason=reason,
            case_number=case_number,
        )
        try:
            loaded = network.get(conn)
        except UnavailableError:
            answer()  # an unknown bike is still a 404
            raise
        seen = answer()
    if seen is None:
        raise NotFoundError(f"bike {bike_id} has never been seen")
    predicted = queries.next_readers(conn, bike_id=bike_id, network=loaded, limit=limit, seen=seen)
    return {
        "bike_id": bike_id,
        "last_seen": asdict(seen),
        "next_readers": [asdict(n) for n in predicted],
    }


def companions(
    conn: psycopg.Connection,
    *,
    theft_id: int,
    by: Principal,
    reason: str,
    since: datetime | None,
    until: datetime | None,
) -> dict[str, Any]:
    """Tags that travelled with the stolen bike since the theft (likely the thief's vehicle)."""
    theft = cases.get_theft(conn, theft_id)
    if theft is None:
        raise NotFoundError(f"no theft {theft_id}")
    require_reason(reason, theft.case_number)
    detail = _bike(conn, theft.bike_id)
    until = until or datetime.now(UTC)
    since = since or theft.stolen_at
    if since >= until or until - since > MAX_WINDOW:
        raise BadRequestError("since must be before until, and the window at most 31 days")
    _audit(
        conn,
        by=by,
        action="case.companions",
        bike_id=theft.bike_id,
        reason=reason,
        case_number=theft.case_number,
        detail={"theft_id": theft_id},
    )
    found: dict[str, dict[str, Any]] = {}
    for binding in detail.tags:
        start = max(since, binding.valid_from)
        end = min(until, binding.valid_to or until)
        if end - start < timedelta(seconds=1):
            continue
        for c in queries.companions(conn, tag_id=binding.tag_id, since=start, until=end):
            if c.tag_id in found or c.bike_id == theft.bike_id:
                continue
            found[c.tag_id] = {
                **{k: v for k, v in asdict(c).items() if k != "passages"},
                "passages": [
                    {"reader_id": r, "target_at": a, "companion_at": b} for r, a, b in c.passages
                ],
            }
    ranked = sorted(found.values(), key=lambda c: -float(c["score"]))
    return {"theft_id": theft_id, "case_number": theft.case_number, "companions": ranked}
