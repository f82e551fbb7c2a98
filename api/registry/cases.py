"""Thefts, watches and what they raise: alerts of watched tags and stolen-match flags.

Also the incremental feeds the live streams poll (ids and times to resume from). The caller
owns the transaction; ``NOTIFY tagtrail_watches`` makes the engine reload its watch list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row, dict_row


@dataclass(frozen=True, slots=True)
class TheftRecord:
    """A theft with its bike's plate."""

    theft_id: int
    bike_id: int
    plate: str | None
    reported_by: int | None
    reported_at: datetime
    stolen_at: datetime
    place: str
    description: str
    status: str
    case_number: str | None
    recovered_at: datetime | None


_THEFT = """SELECT t.theft_id, t.bike_id,
                   (SELECT p.plate FROM plates p WHERE p.bike_id = t.bike_id
                    ORDER BY upper_inf(p.valid) DESC, lower(p.valid) DESC LIMIT 1) AS plate,
                   t.reported_by, t.reported_at, t.stolen_at, t.place, t.description, t.status,
                   t.case_number, t.recovered_at
            FROM thefts t"""


def get_theft(conn: psycopg.Connection, theft_id: int) -> TheftRecord | None:
    """One theft."""
    with conn.cursor(row_factory=class_row(TheftRecord)) as cur:
        return cur.execute(f"{_THEFT} WHERE t.theft_id = %s", (theft_id,)).fetchone()


def theft_by_case(conn: psycopg.Connection, case_number: str) -> TheftRecord | None:
    """The theft filed under a case number."""
    with conn.cursor(row_factory=class_row(TheftRecord)) as cur:
        return cur.execute(f"{_THEFT} WHERE t.case_number = %s", (case_number,)).fetchone()


_CASE_STATUS = "SELECT status FROM thefts WHERE case_number = %s"


def case_status(conn: psycopg.Connection, case_number: str) -> str | None:
    """The status of the theft filed under a case number; None if there is none."""
    row = conn.execute(_CASE_STATUS, (case_number,)).fetchone()
    return None if row is None else str(row[0])


async def case_status_async(conn: psycopg.AsyncConnection[Any], case_number: str) -> str | None:
    """:func:`case_status` on an asyncio connection."""
    cur = await conn.execute(_CASE_STATUS, (case_number,))
    row = await cur.fetchone()
    return None if row is None else str(row[0])


def list_thefts(
    conn: psycopg.Connection, *, status: str | None, limit: int, offset: int
) -> tuple[list[TheftRecord], int]:
    """A page of thefts, newest report first, optionally of one status."""
    with conn.cursor(row_factory=class_row(TheftRecord)) as cur:
        rows = cur.execute(
            f"""{_THEFT} WHERE %(s)s::text IS NULL OR t.status = %(s)s
                ORDER BY t.reported_at DESC, t.theft_id DESC LIMIT %(l)s OFFSET %(o)s""",
            {"s": status, "l": limit, "o": offset},
        ).fetchall()
    total = conn.execute(
        "SELECT count(*) FROM thefts WHERE %(s)s::text IS NULL OR status = %(s)s", {"s": status}
    ).fetchone()
    return rows, int(total[0]) if total else 0


def confirm_theft(conn: psycopg.Connection, *, theft_id: int, case_number: str) -> None:
    """An officer confirms the report under a case number."""
    conn.execute(
        "UPDATE thefts SET status = 'confirmed', case_number = %s WHERE theft_id = %s",
        (case_number, theft_id),
    )


def recover_theft(conn: psycopg.Connection, *, theft_id: int, at: datetime) -> None:
    """The bike is back: the theft is closed as recovered and its watch closed."""
    conn.execute(
        "UPDATE thefts SET status = 'recovered', recovered_at = %s WHERE theft_id = %s",
        (at, theft_id),
    )
    conn.execute(
        "UPDATE watches SET closed_at = %s WHERE theft_id = %s AND closed_at IS NULL",
        (at, theft_id),
    )
    conn.execute("NOTIFY tagtrail_watches")


@dataclass(frozen=True, slots=True)
class WatchRecord:
    """A watch on a bike: a theft's, or an owner's "alert me if it moves"."""

    watch_id: int
    bike_id: int
    kind: str
    theft_id: int | None
    created_by: int | None
    starts_at: datetime
    ends_at: datetime | None
    closed_at: datetime | None


_WATCH = """SELECT watch_id, bike_id, kind, theft_id, created_by, starts_at, ends_at, closed_at
            FROM watches"""


def arm_watch(
    conn: psycopg.Connection, *, bike_id: int, user_id: int, starts_at: datetime, ends_at: datetime
) -> int:
    """Open an owner's watch for a window; returns its id."""
    row = conn.execute(
        """INSERT INTO watches (bike_id, kind, created_by, starts_at, ends_at)
           VALUES (%s, 'armed', %s, %s, %s) RETURNING watch_id""",
        (bike_id, user_id, starts_at, ends_at),
    ).fetchone()
    if row is None:
        raise RuntimeError("arm_watch: the database returned no row")
    conn.execute("NOTIFY tagtrail_watches")
    return int(row[0])


def get_watch(conn: psycopg.Connection, watch_id: int) -> WatchRecord | None:
    """One watch."""
    with conn.cursor(row_factory=class_row(WatchRecord)) as cur:
        return cur.execute(f"{_WATCH} WHERE watch_id = %s", (watch_id,)).fetchone()


def bike_watches(conn: psycopg.Connection, bike_id: int) -> list[WatchRecord]:
    """The bike's watches that are still open, oldest first."""
    with conn.cursor(row_factory=class_row(WatchRecord)) as cur:
        return cur.execute(
            f"{_WATCH} WHERE bike_id = %s AND closed_at IS NULL ORDER BY watch_id", (bike_id,)
        ).fetchall()


def close_watch(conn: psycopg.Connection, *, watch_id: int) -> None:
    """Disarm a watch now."""
    conn.execute(
        "UPDATE watches SET closed_at = now() WHERE watch_id = %s AND closed_at IS NULL",
        (watch_id,),
    )
    conn.execute("NOTIFY tagtrail_watches")


_ALERT = """SELECT a.alert_id, a.raised_at, w.kind, w.bike_id, w.watch_id, w.theft_id,
                   t.case_number, a.tag_id, a.reader_id, a.read_at, r.lon, r.lat
            FROM alerts a JOIN watches w USING (watch_id)
            LEFT JOIN thefts t ON t.theft_id = w.theft_id
            LEFT JOIN readers r ON r.reader_id = a.reader_id"""


def owner_alerts(
    conn: psycopg.Connection, *, owner_id: int, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of alerts from the owner's armed watches, newest first: of the bikes the owner
    has now, read and raised since they became the owner (never a previous owner's)."""
    where = """w.kind = 'armed' AND EXISTS (
                   SELECT 1 FROM bikes b
                   WHERE b.bike_id = w.bike_id AND b.owner_id = %(o)s
                     AND a.read_at >= coalesce(b.owner_since, b.registered_at)
                     AND a.raised_at >= coalesce(b.owner_since, b.registered_at))"""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"{_ALERT} WHERE {where} ORDER BY a.alert_id DESC LIMIT %(l)s OFFSET %(off)s",
            {"o": owner_id, "l": limit, "off": offset},
        ).fetchall()
    total = conn.execute(
        f"SELECT count(*) FROM alerts a JOIN watches w USING (watch_id) WHERE {where}",
        {"o": owner_id},
    ).fetchone()
    return rows, int(total[0]) if total else 0


def alerts_after(
    conn: psycopg.Connection,
    *,
    after_id: int,
    bike_id: int | None,
    limit: int = 200,
    raised_since: datetime | None = None,
) -> list[dict[str, Any]]:
    """Alerts with an id above ``after_id`` (of one bike, or all; raised at or after
    ``raised_since`` if given), oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"""{_ALERT} WHERE a.alert_id > %(a)s
                  AND (%(b)s::bigint IS NULL OR w.bike_id = %(b)s)
                  AND (%(s)s::timestamptz IS NULL OR a.raised_at >= %(s)s)
                ORDER BY a.alert_id LIMIT %(l)s""",
            {"a": after_id, "b": bike_id, "l": limit, "s": raised_since},
        ).fetchall()


def flags_after(
    conn: psycopg.Connection,
    *,
    after_id: int,
    limit: int = 200,
    raised_since: datetime | None = None,
) -> list[dict[str, Any]]:
    """Stolen-match flags with an id above ``after_id`` (raised at or after ``raised_since``
    if given), oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT f.flag_id, f.raised_at, f.kind, f.stolen_bike_id, f.theft_id,
                      t.case_number, f.presented_by, f.event_id, f.detail
               FROM registration_flags f JOIN thefts t USING (theft_id)
               WHERE f.flag_id > %(a)s
                 AND (%(s)s::timestamptz IS NULL OR f.raised_at >= %(s)s)
               ORDER BY f.flag_id LIMIT %(l)s""",
            {"a": after_id, "l": limit, "s": raised_since},
        ).fetchall()


def acks_after(
    conn: psycopg.Connection, *, after: datetime, limit: int = 500
) -> list[dict[str, Any]]:
    """Alerts and stolen-match flags acknowledged after ``after`` (who and when, no place),
    oldest first: what the duty desks' streams tell every open desk."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT * FROM (
                   SELECT 'alert' AS source, a.alert_id AS id, u.username AS acknowledged_by,
                          a.acknowledged_at
                   FROM alerts a LEFT JOIN users u ON u.user_id = a.acknowledged_by
                   WHERE a.acknowledged_at > %(after)s
                   UNION ALL
                   SELECT 'flag', f.flag_id, u.username, f.acknowledged_at
                   FROM registration_flags f LEFT JOIN users u ON u.user_id = f.acknowledged_by
                   WHERE f.acknowledged_at > %(after)s) k
               ORDER BY k.acknowledged_at, k.source, k.id LIMIT %(limit)s""",
            {"after": after, "limit": limit},
        ).fetchall()


def latest_ids(conn: psycopg.Connection) -> tuple[int, int]:
    """The newest alert id and flag id (where a fresh live stream starts)."""
    row = conn.execute(
        "SELECT (SELECT coalesce(max(alert_id), 0) FROM alerts), "
        "(SELECT coalesce(max(flag_id), 0) FROM registration_flags)"
    ).fetchone()
    if row is None:
        raise RuntimeError("latest_ids: the database returned no row")
    return int(row[0]), int(row[1])


def replay_floor(conn: psycopg.Connection, *, since: datetime) -> tuple[int, int]:
    """The duty desk's cursor just before the first alert and the first flag raised at or
    after ``since`` (the newest ids when none was): how far back a resume may reach."""
    row = conn.execute(
        """SELECT coalesce((SELECT min(alert_id) - 1 FROM alerts WHERE raised_at >= %(s)s),
                           (SELECT max(alert_id) FROM alerts), 0),
                  coalesce((SELECT min(flag_id) - 1 FROM registration_flags
                            WHERE raised_at >= %(s)s),
                           (SELECT max(flag_id) FROM registration_flags), 0)""",
        {"s": since},
    ).fetchone()
    if row is None:
        raise RuntimeError("replay_floor: the database returned no row")
    return int(row[0]), int(row[1])


def replay_summary(
    conn: psycopg.Connection,
    *,
    after_alert: int,
    after_flag: int,
    raised_since: datetime,
    max_bikes: int = 200,
) -> dict[str, Any]:
    """What a duty desk resuming after ``(after_alert, after_flag)``, with what was raised
    since ``raised_since``, is about to be sent: counts, id ranges and the bikes concerned
    (at most ``max_bikes`` of them), for its audit entry."""
    row = conn.execute(
        """WITH a AS (SELECT a.alert_id, w.bike_id FROM alerts a JOIN watches w USING (watch_id)
                      WHERE a.alert_id > %(a)s AND a.raised_at >= %(s)s),
                f AS (SELECT flag_id, stolen_bike_id AS bike_id FROM registration_flags
                      WHERE flag_id > %(f)s AND raised_at >= %(s)s)
           SELECT (SELECT count(*) FROM a), (SELECT min(alert_id) FROM a),
                  (SELECT max(alert_id) FROM a), (SELECT count(*) FROM f),
                  (SELECT min(flag_id) FROM f), (SELECT max(flag_id) FROM f),
                  ARRAY(SELECT DISTINCT bike_id FROM (SELECT bike_id FROM a
                                                      UNION SELECT bike_id FROM f) b
                        ORDER BY bike_id LIMIT %(m)s)""",
        {"a": after_alert, "f": after_flag, "s": raised_since, "m": max_bikes},
    ).fetchone()
    if row is None:
        raise RuntimeError("replay_summary: the database returned no row")
    return {
        "alerts": int(row[0]),
        "alert_ids": [] if row[1] is None else [int(row[1]), int(row[2])],
        "flags": int(row[3]),
        "flag_ids": [] if row[4] is None else [int(row[4]), int(row[5])],
        "bike_ids": [int(b) for b in row[6]],
    }


def passages_after(
    conn: psycopg.Connection, *, bike_id: int, after_us: int, limit: int = 200
) -> list[dict[str, Any]]:
    """The bike's stored passages whose closest approach is after ``after_us`` (epoch µs)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT p.tag_id, p.reader_id, p.closest_at, p.first_at, p.last_at,
                      p.read_count, p.direction, r.lon, r.lat,
                      (extract(epoch from p.closest_at) * 1000000)::bigint AS closest_at_us
               FROM tag_bindings tb
               JOIN passages p ON p.tag_id = tb.tag_id AND p.closest_at <@ tb.valid
               LEFT JOIN readers r ON r.reader_id = p.reader_id
               WHERE tb.bike_id = %(b)s
                 AND p.first_at >= timestamptz 'epoch' + %(a)s * interval '1 microsecond'
                                   - interval '1 hour'
                 AND p.closest_at > timestamptz 'epoch' + %(a)s * interval '1 microsecond'
               ORDER BY p.closest_at LIMIT %(l)s""",
            {"b": bike_id, "a": after_us, "l": limit},
        ).fetchall()


def count_cases_with_prefix(conn: psycopg.Connection, prefix: str) -> int:
    """How many thefts have a case number starting with ``prefix``."""
    row = conn.execute(
        "SELECT count(*) FROM thefts WHERE case_number LIKE %s", (prefix.replace("%", r"\%") + "%",)
    ).fetchone()
    return int(row[0]) if row else 0
