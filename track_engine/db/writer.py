"""The engine's write path: raw reads and passages with COPY, idempotently.

COPY goes into a temporary staging table and an ``INSERT ... SELECT ... ON CONFLICT`` moves the
rows into the partitioned table, because COPY itself cannot skip rows that are already stored
(a batch redelivered by the broker after a crash must not duplicate reads).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import psycopg

_EPOCH = "timestamptz '1970-01-01 00:00:00+00'"
_US = "interval '1 microsecond'"
_DAY_US = 86_400_000_000


class PartitionKeeper:
    """Creates the daily partitions a write needs, remembering which days already exist."""

    def __init__(self) -> None:
        self._days: dict[str, set[int]] = {}

    def ensure(self, conn: psycopg.Connection, table: str, times_us: np.ndarray) -> None:
        """Make sure partitions of ``table`` exist for every day in ``times_us``."""
        if times_us.size == 0:
            return
        known = self._days.setdefault(table, set())
        days = set(np.unique(times_us // _DAY_US).tolist()) - known
        if not days:
            return
        lo, hi = min(days), max(days)
        conn.execute(
            f"SELECT tagtrail_ensure_partitions(%s, {_EPOCH} + %s * {_US}, {_EPOCH} + %s * {_US})",
            (table, lo * _DAY_US, hi * _DAY_US),
        )
        known.update(range(lo, hi + 1))

    def ensure_ahead(self, conn: psycopg.Connection, now_us: int, days_ahead: int) -> None:
        """Create today's and the next ``days_ahead`` days' partitions of each time table."""
        span = np.array([now_us, now_us + days_ahead * _DAY_US], dtype=np.int64)
        full = np.arange(span[0] // _DAY_US, span[1] // _DAY_US + 1, dtype=np.int64) * _DAY_US
        for table in ("reads", "passages"):
            self.ensure(conn, table, full)


def _tsv(frame: pd.DataFrame) -> bytes:
    """Tab-separated COPY text of a frame (pandas writes it in C, no per-row Python loop)."""
    buffer = io.StringIO()
    frame.to_csv(buffer, sep="\t", header=False, index=False, lineterminator="\n")
    return buffer.getvalue().encode()


def store_reads(
    conn: psycopg.Connection, reads: pd.DataFrame, *, gateway_id: str, partitions: PartitionKeeper
) -> int:
    """Store reads (columns tag_id, read_at_us, reader_id, antenna, rssi_dbm, reader_seq).

    Returns how many were new; reads already stored are skipped. The caller owns the
    transaction.
    """
    if reads.empty:
        return 0
    partitions.ensure(conn, "reads", reads["read_at_us"].to_numpy())
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS reads_stage (tag_id text, read_at_us bigint, "
        "reader_id text, antenna smallint, rssi_dbm real, reader_seq bigint) ON COMMIT DELETE ROWS"
    )
    columns = ["tag_id", "read_at_us", "reader_id", "antenna", "rssi_dbm", "reader_seq"]
    with conn.cursor() as cur:
        with cur.copy(f"COPY reads_stage ({', '.join(columns)}) FROM STDIN") as copy:
            copy.write(_tsv(reads[columns]))
        cur.execute(
            f"""INSERT INTO reads (tag_id, read_at, reader_id, antenna, rssi_dbm, reader_seq,
                                   gateway_id)
                SELECT tag_id, {_EPOCH} + read_at_us * {_US}, reader_id, antenna, rssi_dbm,
                       reader_seq, %s
                FROM reads_stage
                ON CONFLICT DO NOTHING""",
            (gateway_id,),
        )
        inserted = cur.rowcount
        cur.execute("TRUNCATE reads_stage")
    return inserted


PASSAGE_DB_COLUMNS = [
    "tag_id",
    "reader_id",
    "first_at_us",
    "last_at_us",
    "closest_at_us",
    "peak_rssi_dbm",
    "read_count",
    "direction",
]


def store_passages(
    conn: psycopg.Connection, passages: pd.DataFrame, *, partitions: PartitionKeeper
) -> int:
    """Upsert closed passages; a passage refolded with late reads replaces the stored one."""
    if passages.empty:
        return 0
    partitions.ensure(conn, "passages", passages["first_at_us"].to_numpy())
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS passages_stage (tag_id text, reader_id text, "
        "first_at_us bigint, last_at_us bigint, closest_at_us bigint, peak_rssi_dbm real, "
        "read_count integer, direction text) ON COMMIT DELETE ROWS"
    )
    with conn.cursor() as cur:
        with cur.copy(f"COPY passages_stage ({', '.join(PASSAGE_DB_COLUMNS)}) FROM STDIN") as copy:
            copy.write(_tsv(passages[PASSAGE_DB_COLUMNS]))
        cur.execute(
            f"""INSERT INTO passages (tag_id, reader_id, first_at, last_at, closest_at,
                                      peak_rssi_dbm, read_count, direction)
                SELECT tag_id, reader_id, {_EPOCH} + first_at_us * {_US},
                       {_EPOCH} + last_at_us * {_US}, {_EPOCH} + closest_at_us * {_US},
                       peak_rssi_dbm, read_count, direction
                FROM passages_stage
                ON CONFLICT (tag_id, first_at, reader_id) DO UPDATE SET
                    last_at = EXCLUDED.last_at, closest_at = EXCLUDED.closest_at,
                    peak_rssi_dbm = EXCLUDED.peak_rssi_dbm, read_count = EXCLUDED.read_count,
                    direction = EXCLUDED.direction"""
        )
        stored = cur.rowcount
        cur.execute("TRUNCATE passages_stage")
    return stored
