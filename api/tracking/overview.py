"""The duty desk's overview: every open theft with its bike's last sighting, for one map.

It shows where stolen bikes were last heard, so like any location lookup it needs grounds (a
case number or a reason, :mod:`api.grounds`) and is audited with the thefts and bikes it
showed.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import psycopg

from api.deps import Principal
from api.grounds import check_case, check_reason
from api.registry import audit
from api.tracking import store
from api.tracking.schemas import OpenTheftOut, OpenTheftsOut, SightingOut
from api.tracking.values import LastSeen, OpenTheftSeen

ACTION = "thefts.last_seen"


def _sighting(seen: LastSeen | None) -> SightingOut | None:
    if seen is None:
        return None
    return SightingOut(
        reader_id=seen.reader_id, at=seen.at, lon=seen.lon, lat=seen.lat, source=seen.source
    )


def _theft_out(theft: OpenTheftSeen) -> OpenTheftOut:
    return OpenTheftOut(
        theft_id=theft.theft_id,
        bike_id=theft.bike_id,
        plate=theft.plate,
        case_number=theft.case_number,
        status=theft.status,
        stolen_at=theft.stolen_at,
        last_seen=_sighting(theft.last_seen),
    )


def open_thefts_last_seen(
    conn: psycopg.Connection, *, by: Principal, reason: str, case_number: str | None
) -> OpenTheftsOut:
    """Every open theft, newest first, with its bike's last sighting; audited (the thefts and
    bikes shown in the entry's detail) in the request's transaction."""
    record = audit.row_by(
        by, ACTION, reason=check_reason(reason, case_number), case_number=case_number
    )
    check_case(conn, record)
    thefts = store.open_thefts_last_seen(conn)
    audit.append_row(
        conn,
        dataclasses.replace(
            record,
            detail={
                "theft_ids": [t.theft_id for t in thefts],
                "bike_ids": sorted({t.bike_id for t in thefts}),
                "seen": sum(t.last_seen is not None for t in thefts),
            },
        ),
    )
    return OpenTheftsOut(items=[_theft_out(t) for t in thefts], generated_at=datetime.now(UTC))
