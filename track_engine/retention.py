"""Retention of raw reads: drop day partitions past the retention period, keeping held reads.

Raw reads are the most privacy-sensitive data TagTrail keeps (every resident's movements), so
they expire after ``retention_days``; passages (much smaller, and what routes are drawn from)
are not touched here. Reads of a tag under a case hold (``case_holds``: tag, from, to) are
copied to ``held_reads`` before their partition is dropped, in the same transaction, so a crash
between the copy and the drop loses nothing and repeats nothing (the copy is idempotent).

Native partitions are named ``reads_pYYYYMMDD`` (see migration 0003); a partition is dropped
once its whole day lies before the cutoff. Under TimescaleDB the same copy runs over the
expiring time range and ``drop_chunks`` removes the chunks.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import psycopg

log = logging.getLogger(__name__)

_PARTITION = re.compile(r"^reads_p(\d{8})$")
_COPY_HELD = """
    INSERT INTO held_reads (tag_id, read_at, reader_id, antenna, rssi_dbm, reader_seq, gateway_id)
    SELECT r.tag_id, r.read_at, r.reader_id, r.antenna, r.rssi_dbm, r.reader_seq, r.gateway_id
    FROM {source} r
    WHERE r.read_at < %(cutoff)s AND EXISTS (
        SELECT 1 FROM case_holds h
        WHERE h.tag_id = r.tag_id AND r.read_at >= h.held_from
          AND (h.held_to IS NULL OR r.read_at <= h.held_to))
    ON CONFLICT DO NOTHING"""


@dataclass(frozen=True)
class RetentionResult:
    """What one retention run did."""

    cutoff: datetime
    partitions_dropped: list[str]
    reads_held: int


def apply_retention(
    conn: psycopg.Connection, *, retention_days: int, now: datetime
) -> RetentionResult:
    """Drop reads older than ``retention_days`` before ``now``, keeping held reads.

    Each partition goes in its own transaction (the caller must not hold one open).
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    if retention_days < 1:
        raise ValueError("retention_days must be >= 1")
    # Whole days only: a partition is dropped when its day ends before the cutoff.
    cutoff_day = (now.astimezone(UTC) - timedelta(days=retention_days)).date()
    cutoff = datetime.combine(cutoff_day, time(0), tzinfo=UTC)
    row = conn.execute("SELECT mode FROM partition_policy WHERE table_name = 'reads'").fetchone()
    conn.commit()
    if row is not None and row[0] == "timescaledb":
        return _timescale(conn, cutoff)
    dropped: list[str] = []
    held = 0
    for name, day in _read_partitions(conn):
        if day >= cutoff_day:
            continue
        with conn.transaction():
            cur = conn.execute(
                _COPY_HELD.format(source=f'"{name}"'),  # name matched _PARTITION: safe to quote
                {"cutoff": cutoff},
            )
            held += max(cur.rowcount, 0)
            # Dropping needs the table's owner: a SECURITY DEFINER function (migration 0040)
            # that drops only past day partitions of reads.
            conn.execute("SELECT tagtrail_drop_partition('reads', %s)", (name,))
        dropped.append(name)
        log.info("retention: dropped %s", name)
    return RetentionResult(cutoff, dropped, held)


def _read_partitions(conn: psycopg.Connection) -> list[tuple[str, date]]:
    """Native daily partitions of ``reads`` with their day, oldest first."""
    rows = conn.execute(
        """SELECT c.relname FROM pg_inherits i
           JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'reads'::regclass"""
    ).fetchall()
    conn.commit()
    out: list[tuple[str, date]] = []
    for (name,) in rows:
        m = _PARTITION.match(str(name))
        if m:
            out.append(
                (str(name), datetime.strptime(m.group(1), "%Y%m%d").replace(tzinfo=UTC).date())
            )
    return sorted(out, key=lambda nd: nd[1])


def _timescale(conn: psycopg.Connection, cutoff: datetime) -> RetentionResult:
    with conn.transaction():
        cur = conn.execute(_COPY_HELD.format(source="reads"), {"cutoff": cutoff})
        held = max(cur.rowcount, 0)
        # Dropping chunks needs the owner: a SECURITY DEFINER function (migration 0081) that
        # checks the held reads were copied, as tagtrail_drop_partition does.
        row = conn.execute("SELECT tagtrail_drop_chunks('reads', %s)", (cutoff,)).fetchone()
    return RetentionResult(cutoff, [] if row is None else [str(c) for c in row[0]], held)
