"""Where a bike can be now: the audited officers' lookup around :mod:`track_engine.where_now`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from api.deps import Principal
from api.errors import BadRequestError, LookupNotFoundError
from api.grounds import check_case_async, check_reason
from api.network.service import LoadedNetwork, NetworkCache, active_network
from api.tracking.lookups import audited_last_seen, bike_lookup_row
from api.tracking.values import LastSeen
from track_engine.where_now import silent_readers, where_now

# Past this the map is most of the city: the officer is told so rather than shown it.
MAX_ELAPSED = timedelta(hours=2)
REGION_MASS = 0.9


async def where_now_lookup(
    conn: psycopg.AsyncConnection[Any],
    network: NetworkCache,
    pool: ConnectionPool,
    *,
    bike_id: int,
    by: Principal,
    reason: str,
    case_number: str | None,
    at: datetime | None,
) -> dict[str, Any]:
    """The cells holding 90% of the probability of where the bike is at ``at`` (default now),
    with that region's area and the reach circle's; audited as ``bike.where_now``."""
    reason = check_reason(reason, case_number)
    if at is not None and at.tzinfo is None:
        raise BadRequestError("at needs a time zone, e.g. 2026-11-29T06:00:00Z")
    record = bike_lookup_row(
        by, "bike.where_now", bike_id, reason, case_number, {"at": at.isoformat()} if at else {}
    )
    await check_case_async(conn, record)
    seen, network_id = await audited_last_seen(conn, bike_id, record)
    loaded = await active_network(network, pool, network_id)  # 503 before "never seen"
    if seen is None:
        raise LookupNotFoundError(f"bike {bike_id} has never been seen", record=record)
    if seen.reader_id not in loaded.reader_nodes:
        raise LookupNotFoundError(
            f"bike {bike_id} was last seen by a reader off the road network", record=record
        )
    at = at or datetime.now(UTC)
    elapsed = at - seen.at
    if elapsed < timedelta(0) or elapsed > MAX_ELAPSED:
        raise BadRequestError(
            f"at must be between the last sighting ({seen.at.isoformat()}) and"
            f" {MAX_ELAPSED.total_seconds() / 3600:g} hours after it"
        )
    doc = await run_in_threadpool(_map, loaded, seen, elapsed.total_seconds())
    return {"bike_id": bike_id, "at": at, "last_seen": seen.doc(), **doc}


def _map(loaded: LoadedNetwork, seen: LastSeen, elapsed_s: float) -> dict[str, Any]:
    silent = silent_readers(loaded.reader_paths, seen.reader_id)
    start = loaded.reader_nodes[seen.reader_id]
    found = where_now(loaded.graph, start, elapsed_s, silent)
    return {
        "elapsed_s": round(elapsed_s, 1),
        "mass": REGION_MASS,
        "area_km2": round(found.region_area_km2(REGION_MASS), 4),
        "cell_m": found.cell_m,
        "reach_radius_m": round(found.reach_m, 1),
        "reach_area_km2": round(found.reach_area_km2(), 4),
        "silent_readers": len(silent),
        "region": found.region_geojson(loaded.graph, REGION_MASS),
    }
