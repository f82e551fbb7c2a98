"""SQL of the reads held apart from unknown readers (``unknown_reader_reads``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True, slots=True)
class UnknownReader:
    """A reader id the registry does not know, and what came from it."""

    reader_id: str
    reads: int
    tags: int
    first_read_at: datetime
    last_read_at: datetime
    last_stored_at: datetime
    gateway_ids: list[str]
    registered: bool  # imported since: its later reads are tracked


def unknown_readers(
    conn: psycopg.Connection, *, limit: int, offset: int
) -> tuple[list[UnknownReader], int]:
    """A page of unknown readers, the one heard from most recently first, and how many."""
    with conn.cursor(row_factory=class_row(UnknownReader)) as cur:
        rows = cur.execute(
            """SELECT u.reader_id, count(*)::bigint AS reads,
                      count(DISTINCT u.tag_id)::bigint AS tags,
                      min(u.read_at) AS first_read_at, max(u.read_at) AS last_read_at,
                      max(u.stored_at) AS last_stored_at,
                      array_agg(DISTINCT u.gateway_id ORDER BY u.gateway_id) AS gateway_ids,
                      EXISTS (SELECT 1 FROM readers r WHERE r.reader_id = u.reader_id)
                          AS registered
               FROM unknown_reader_reads u GROUP BY u.reader_id
               ORDER BY max(u.stored_at) DESC, u.reader_id
               LIMIT %s OFFSET %s""",
            (limit, offset),
        ).fetchall()
    total = conn.execute("SELECT count(DISTINCT reader_id) FROM unknown_reader_reads").fetchone()
    return rows, int(total[0]) if total else 0
