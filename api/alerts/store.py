"""SQL of the duty desk's history: alerts of watched bikes and stolen-match flags as one list,
and their acknowledgement. The caller owns the transaction (but for :func:`notify_acknowledged`,
which sends in one of its own after the caller's commit)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
import psycopg
from psycopg.rows import class_row

from track_engine.live_channel import LIVE_CHANNEL

log = logging.getLogger(__name__)

Source = Literal["alert", "flag"]


@dataclass(frozen=True, slots=True)
class DeskItem:
    """One row of the desk's history: an alert (a watched bike passed a reader) or a flag (a
    stolen bike's frame or motor number presented at registration)."""

    source: str
    id: int
    kind: str
    raised_at: datetime
    read_at: datetime | None
    bike_id: int
    plate: str | None
    case_number: str | None
    reader_id: str | None
    lon: float | None
    lat: float | None
    event_id: int | None
    presented_by: str | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeskFilter:
    """What the desk asks for: raised since ``since`` (and, with ``waiting_since``, anything
    raised since then that nobody has acknowledged yet), and optionally of one kind, one bike,
    one case, acknowledged or not."""

    since: datetime
    waiting_since: datetime | None = None
    kind: str | None = None
    bike_id: int | None = None
    plate_key: str | None = None  # any plate the bike has had (normalized)
    case_number: str | None = None
    acknowledged: bool | None = None


# Alerts and flags in one shape; the plate is the bike's current one.
_ITEMS = """
    SELECT 'alert' AS source, a.alert_id AS id, w.kind, a.raised_at, a.read_at,
           w.bike_id, t.case_number, a.reader_id, r.lon, r.lat,
           NULL::bigint AS event_id, NULL::text AS presented_by,
           u.username AS acknowledged_by, a.acknowledged_at
    FROM alerts a JOIN watches w USING (watch_id)
    LEFT JOIN thefts t ON t.theft_id = w.theft_id
    LEFT JOIN readers r ON r.reader_id = a.reader_id
    LEFT JOIN users u ON u.user_id = a.acknowledged_by
    WHERE a.raised_at >= %(floor)s
    UNION ALL
    SELECT 'flag', f.flag_id, f.kind, f.raised_at, NULL, f.stolen_bike_id, t.case_number,
           NULL, NULL, NULL, f.event_id, f.presented_by, u.username, f.acknowledged_at
    FROM registration_flags f JOIN thefts t USING (theft_id)
    LEFT JOIN users u ON u.user_id = f.acknowledged_by
    WHERE f.raised_at >= %(floor)s"""

_WHERE = """(i.raised_at >= %(since)s OR i.acknowledged_at IS NULL)
    AND (%(kind)s::text IS NULL OR i.kind = %(kind)s)
    AND (%(bike)s::bigint IS NULL OR i.bike_id = %(bike)s)
    AND (%(plate)s::text IS NULL OR EXISTS (
        SELECT 1 FROM plates p WHERE p.bike_id = i.bike_id AND p.plate_key = %(plate)s))
    AND (%(case)s::text IS NULL OR i.case_number = %(case)s)
    AND (%(ack)s::boolean IS NULL OR (i.acknowledged_at IS NOT NULL) = %(ack)s)"""


def _params(f: DeskFilter) -> dict[str, Any]:
    return {
        "since": f.since,
        "floor": min(f.since, f.waiting_since or f.since),
        "kind": f.kind,
        "bike": f.bike_id,
        "plate": f.plate_key,
        "case": f.case_number,
        "ack": f.acknowledged,
    }


_SELECT = f"""SELECT i.source, i.id, i.kind, i.raised_at, i.read_at, i.bike_id,
                     (SELECT p.plate FROM plates p WHERE p.bike_id = i.bike_id
                      ORDER BY upper_inf(p.valid) DESC, lower(p.valid) DESC LIMIT 1) AS plate,
                     i.case_number, i.reader_id, i.lon, i.lat, i.event_id, i.presented_by,
                     i.acknowledged_by, i.acknowledged_at
              FROM ({_ITEMS}) i"""


def desk_items(
    conn: psycopg.Connection, f: DeskFilter, *, limit: int, offset: int
) -> tuple[list[DeskItem], int]:
    """A page of the history matching ``f``, newest first, and how many match in all."""
    params = {**_params(f), "limit": limit, "offset": offset}
    with conn.cursor(row_factory=class_row(DeskItem)) as cur:
        rows = cur.execute(
            f"""{_SELECT} WHERE {_WHERE}
                ORDER BY i.raised_at DESC, i.source, i.id DESC
                LIMIT %(limit)s OFFSET %(offset)s""",
            params,
        ).fetchall()
    total = conn.execute(f"SELECT count(*) FROM ({_ITEMS}) i WHERE {_WHERE}", params).fetchone()
    return rows, int(total[0]) if total else 0


def desk_item(conn: psycopg.Connection, source: Source, item_id: int) -> DeskItem | None:
    """One alert or flag, whenever it was raised; None if there is none."""
    with conn.cursor(row_factory=class_row(DeskItem)) as cur:
        return cur.execute(
            f"{_SELECT} WHERE i.source = %(source)s AND i.id = %(id)s",
            {"floor": "-infinity", "source": source, "id": item_id},
        ).fetchone()


_ACK = {
    "alert": """UPDATE alerts SET acknowledged_by = %(user)s, acknowledged_at = now()
                WHERE alert_id = %(id)s AND acknowledged_at IS NULL""",
    "flag": """UPDATE registration_flags SET acknowledged_by = %(user)s, acknowledged_at = now()
               WHERE flag_id = %(id)s AND acknowledged_at IS NULL""",
}


def acknowledge(conn: psycopg.Connection, source: Source, item_id: int, *, user_id: int) -> bool:
    """Record that ``user_id`` acknowledged the alert or flag now; False if it was already
    acknowledged (or does not exist): the first acknowledgement stands."""
    return conn.execute(_ACK[source], {"user": user_id, "id": item_id}).rowcount == 1


def notify_acknowledged(conn: psycopg.Connection, source: Source, item_id: int) -> None:
    """Tell every open duty desk (their live streams, :mod:`api.live`) that an alert or flag
    was acknowledged: ``NOTIFY tagtrail_live`` with ids only, in a short transaction of its
    own, on a connection whose acknowledgement is committed already.

    Not a trigger: on Citus a trigger on the distributed ``alerts`` fires on a worker, where
    nobody listens, and a NOTIFY in a transaction that wrote to workers cannot be two-phase
    committed; this transaction touches no table, so it commits plainly on the coordinator.
    A lost notification only delays the other desks to their streams' next safety poll."""
    payload = orjson.dumps({"t": "ack", "src": source, "id": item_id}).decode()
    try:
        with conn.transaction():
            conn.execute("SELECT pg_notify(%s, %s)", (LIVE_CHANNEL, payload))
    except psycopg.Error as exc:
        log.warning("acknowledgement notification not sent: %s", exc)
