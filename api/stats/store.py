"""Figures for supervisors: registrations, thefts, watches hit, recoveries, response times,
and traffic per reader per day, each one aggregate query over a time window; and operators'
ingest figures (how fresh the stored reads are, how many arrive)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row


def registrations_per_event(
    conn: psycopg.Connection, *, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Bookings and check-ins per tagging event starting in the window."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT e.event_id, e.name, e.starts_at, e.capacity,
                      count(b.booking_id)::int AS booked,
                      count(b.checked_in_at)::int AS checked_in
               FROM tagging_events e LEFT JOIN event_bookings b USING (event_id)
               WHERE e.starts_at >= %s AND e.starts_at < %s
               GROUP BY e.event_id ORDER BY e.starts_at""",
            (since, until),
        ).fetchall()


def case_figures(conn: psycopg.Connection, *, since: datetime, until: datetime) -> dict[str, Any]:
    """Thefts reported in the window, how many were seen (watch hit) and recovered, and the
    median hours from report to first sighting and to recovery."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """WITH t AS (
                 SELECT th.theft_id, th.reported_at, th.recovered_at,
                        (SELECT min(a.read_at) FROM alerts a JOIN watches w USING (watch_id)
                         WHERE w.theft_id = th.theft_id AND a.read_at >= th.stolen_at)
                          AS first_seen
                 FROM thefts th WHERE th.reported_at >= %s AND th.reported_at < %s)
               SELECT count(*)::int AS thefts_reported,
                      count(first_seen)::int AS watches_hit,
                      count(recovered_at)::int AS recoveries,
                      percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM
                        greatest(first_seen - reported_at, interval '0')) / 3600.0)
                        AS median_hours_to_first_sighting,
                      percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM
                        recovered_at - reported_at) / 3600.0) AS median_hours_to_recovery
               FROM t""",
            (since, until),
        ).fetchone()
    if row is None:
        raise RuntimeError("case_figures: the database returned no row")
    return dict(row)


def reader_days(
    conn: psycopg.Connection, *, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Passages and the reads in them, per reader per UTC day."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT reader_id, (first_at AT TIME ZONE 'UTC')::date AS day,
                      sum(read_count)::bigint AS reads, count(*)::bigint AS passages
               FROM passages WHERE first_at >= %s AND first_at < %s
               GROUP BY 1, 2 ORDER BY 2, 1""",
            (since, until),
        ).fetchall()


@dataclass(frozen=True, slots=True)
class IngestActivity:
    """How fresh the stored reads are and how many arrive, over a recent window."""

    newest_read_at: datetime | None
    reads_per_minute: list[tuple[datetime, int]]  # (minute, reads), oldest first
    reads_per_reader: dict[str, int]  # reads in the whole window


def ingest_activity(
    conn: psycopg.Connection, *, now: datetime, window: timedelta
) -> IngestActivity:
    """Stored reads in ``window`` before ``now``, per minute and per reader, and the newest one.

    The newest stored read is searched for in the last day only, so that the query touches
    the newest partitions; a silent fleet shows as no newest read rather than a full scan.
    """
    since = now - window
    newest = conn.execute(
        "SELECT max(read_at) FROM reads WHERE read_at > %s AND read_at <= %s",
        (now - timedelta(days=1), now),
    ).fetchone()
    minutes = conn.execute(
        """SELECT date_trunc('minute', read_at) AS minute, count(*)::bigint
           FROM reads WHERE read_at > %s AND read_at <= %s GROUP BY 1 ORDER BY 1""",
        (since, now),
    ).fetchall()
    readers = conn.execute(
        """SELECT reader_id, count(*)::bigint FROM reads
           WHERE read_at > %s AND read_at <= %s GROUP BY 1""",
        (since, now),
    ).fetchall()
    return IngestActivity(
        newest_read_at=None if newest is None else newest[0],
        reads_per_minute=[(m, int(n)) for m, n in minutes],
        reads_per_reader={str(r): int(n) for r, n in readers},
    )
