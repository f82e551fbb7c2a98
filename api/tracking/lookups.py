"""Last seen, likely next readers and companions: audited location lookups for officers."""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from api.deps import Principal
from api.errors import BadRequestError, LookupNotFoundError
from api.grounds import check_case, check_case_async, check_reason
from api.network.service import NetworkCache, active_network
from api.registry import audit, bikes, cases
from api.tracking import store
from api.tracking.caches import caches_of
from api.tracking.companion_store import companions as tag_companions
from api.tracking.departure_store import departures
from api.tracking.prediction import predict_next_readers
from api.tracking.service import MAX_WINDOW
from api.tracking.values import LastSeen
from track_engine.errors import NotFoundError
from track_engine.next_readers import Departures


def _bike(conn: psycopg.Connection, bike_id: int) -> bikes.BikeDetail:
    detail = bikes.bike_detail(conn, bike_id)
    if detail is None:
        raise NotFoundError(f"no bike {bike_id}")
    return detail


async def last_seen(
    conn: psycopg.AsyncConnection[Any],
    *,
    bike_id: int,
    by: Principal,
    reason: str,
    case_number: str | None,
) -> dict[str, Any]:
    """Where and when the bike was last heard (on the request's asyncio connection)."""
    reason = check_reason(reason, case_number)
    record = bike_lookup_row(by, "bike.last_seen", bike_id, reason, case_number)
    await check_case_async(conn, record)
    # One round trip: the bike's existence, the audit row and the sighting. For an unknown
    # bike the request's transaction, audit row included, rolls back; the 404 is audited by
    # the handler of LookupNotFoundError, in a transaction of its own.
    seen, _ = await audited_last_seen(conn, bike_id, record)
    if seen is None:
        raise LookupNotFoundError(f"bike {bike_id} has never been seen", record=record)
    return {"bike_id": bike_id, **seen.doc()}


async def audited_last_seen(
    conn: psycopg.AsyncConnection[Any], bike_id: int, record: audit.AuditRow
) -> tuple[LastSeen | None, int | None]:
    """The bike's last sighting and the active network's id, ``record`` appended in the same
    round trip; an unknown bike is a 404 that is audited too."""
    try:
        return await store.audited_last_seen(bike_id=bike_id, record=record).run_async(conn)
    except NotFoundError as exc:
        raise LookupNotFoundError(str(exc), record=record) from exc


async def next_readers(
    conn: psycopg.AsyncConnection[Any],
    network: NetworkCache,
    pool: ConnectionPool,
    *,
    bike_id: int,
    by: Principal,
    reason: str,
    case_number: str | None,
    limit: int,
) -> dict[str, Any]:
    """The readers the bike will likely pass next, with ETAs (on the request's asyncio
    connection; ``pool`` loads the road network if it is not loaded yet)."""
    reason = check_reason(reason, case_number)
    record = bike_lookup_row(by, "bike.next_readers", bike_id, reason, case_number)
    await check_case_async(conn, record)
    # One round trip: the bike's existence (an unknown bike is a 404 before anything else),
    # the audit row, the sighting and the active network's id; the reader's history is a
    # second one when it is not kept.
    seen, network_id = await audited_last_seen(conn, bike_id, record)
    loaded = await active_network(network, pool, network_id)  # 503 before "never seen"
    if seen is None:
        raise LookupNotFoundError(f"bike {bike_id} has never been seen", record=record)
    caches = caches_of(loaded)
    cache = caches.departures
    key = (seen.tag_id, seen.reader_id, seen.at)
    history = cache.peek(key)
    if history is None:  # counted once however many requests ask for it meanwhile

        async def count() -> Departures:
            asked_at = time.monotonic()
            found = await departures(seen.tag_id, seen.reader_id, seen.at).run_async(conn)
            cache.put(key, found, asked_at)
            return found

        history = await caches.departure_flights.run(key, count)
    predicted = predict_next_readers(loaded, seen, history, limit)
    return {
        "bike_id": bike_id,
        "last_seen": seen.doc(),
        "next_readers": [
            {
                "reader_id": n.reader_id,
                "probability": n.probability,
                "eta": n.eta,
                "travel_s": n.travel_s,
                "distance_m": n.distance_m,
                "source": n.source,
                "eta_from": n.eta_from,
                "eta_to": n.eta_to,
            }
            for n in predicted
        ],
    }


def bike_lookup_row(
    by: Principal,
    action: str,
    bike_id: int,
    reason: str,
    case_number: str | None,
    detail: dict[str, Any] | None = None,
) -> audit.AuditRow:
    """The audit entry of ``by``'s lookup of a bike."""
    return audit.row_by(
        by,
        action,
        subject=f"bike:{bike_id}",
        bike_id=bike_id,
        reason=reason,
        case_number=case_number,
        detail=detail or {},
    )


def companions(
    conn: psycopg.Connection,
    *,
    theft_id: int,
    by: Principal,
    reason: str,
    since: datetime | None,
    until: datetime | None,
    case_number: str | None = None,
) -> dict[str, Any]:
    """Tags that travelled with the stolen bike since the theft (likely the thief's vehicle),
    with the current plate of each one's bike. ``case_number``: the officer's (default: the
    theft's), recorded in the audit log."""
    theft = cases.get_theft(conn, theft_id)
    reason = check_reason(reason, case_number or (theft.case_number if theft else None))
    asked = audit.row_by(
        by,
        "case.companions",
        subject=f"theft:{theft_id}",
        reason=reason,
        case_number=case_number,
        detail={"theft_id": theft_id},
    )
    check_case(conn, asked)  # the officer's own case must be open; the theft's is its own
    if theft is None:
        raise LookupNotFoundError(f"no theft {theft_id}", record=asked)
    case_number = case_number or theft.case_number
    detail = _bike(conn, theft.bike_id)
    until = until or datetime.now(UTC)
    since = since or theft.stolen_at
    if since >= until or until - since > MAX_WINDOW:
        raise BadRequestError("since must be before until, and the window at most 31 days")
    audit.append_row(
        conn,
        bike_lookup_row(by, "case.companions", theft.bike_id, reason, case_number,
                   detail={"theft_id": theft_id}),
    )  # fmt: skip
    found: dict[str, dict[str, Any]] = {}
    for binding in detail.tags:
        start = max(since, binding.valid_from)
        end = min(until, binding.valid_to or until)
        if end - start < timedelta(seconds=1):
            continue
        for c in tag_companions(conn, tag_id=binding.tag_id, since=start, until=end):
            if c.tag_id in found or c.bike_id == theft.bike_id:
                continue
            found[c.tag_id] = {
                **{k: v for k, v in asdict(c).items() if k != "passages"},
                "passages": [
                    {"reader_id": r, "target_at": a, "companion_at": b} for r, a, b in c.passages
                ],
            }
    plates = store.current_plates(
        conn, [c["bike_id"] for c in found.values() if c["bike_id"] is not None]
    )
    for doc in found.values():
        doc["plate"] = plates.get(doc["bike_id"])
    ranked = sorted(found.values(), key=lambda doc: -float(doc["score"]))
    return {"theft_id": theft_id, "case_number": theft.case_number, "companions": ranked}
