"""The engine's write path: raw reads and passages with COPY, idempotently.

Reads are COPYed straight into the partitioned table inside a savepoint: almost every batch
is new, and that is the fastest way PostgreSQL stores rows. COPY cannot skip rows that are
already stored, so when the savepoint fails on the natural key (a batch the broker redelivered
after a crash) the batch goes the slow, idempotent way instead: COPY into a temporary staging
table and ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``. Passages are always upserted that
way (a passage refolded with late reads replaces the stored one).

COPY text is written by pyarrow's CSV writer (C++, about 3× pandas' ``to_csv``); ids never
contain tabs, newlines or backslashes (the wire contract and the consumer refuse them), so no
quoting is needed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg import errors as pg_errors

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


_COPY_TEXT = pa_csv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
_READ_COLUMNS = ["tag_id", "read_at_us", "reader_id", "antenna", "rssi_dbm", "reader_seq"]


def copy_text(frame: pd.DataFrame, *, timestamps_us: tuple[str, ...] = ()) -> bytes:
    """Tab-separated COPY text of a frame, with no per-row Python loop.

    Columns named in ``timestamps_us`` (int64 µs since the epoch) are written as UTC
    timestamps (``2026-11-29 07:00:00.123000Z``), which PostgreSQL reads as ``timestamptz``.
    """
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for name in timestamps_us:
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, table.column(i).cast(pa.timestamp("us", tz="UTC")))
    out = pa.BufferOutputStream()
    pa_csv.write_csv(table, out, _COPY_TEXT)
    data: bytes = out.getvalue().to_pybytes()
    return data


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
    direct = reads[_READ_COLUMNS].assign(gateway_id=gateway_id)
    try:
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy(
                "COPY reads (tag_id, read_at, reader_id, antenna, rssi_dbm, reader_seq, "
                "gateway_id) FROM STDIN"
            ) as copy:
                copy.write(copy_text(direct, timestamps_us=("read_at_us",)))
            return len(reads)
    except pg_errors.UniqueViolation:
        pass  # some were stored already (a redelivery): take the idempotent way below
    return _store_reads_staged(conn, reads, gateway_id=gateway_id)


def _store_reads_staged(conn: psycopg.Connection, reads: pd.DataFrame, *, gateway_id: str) -> int:
    """Staging table + ``INSERT ... ON CONFLICT DO NOTHING``: skips reads already stored."""
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS reads_stage (tag_id text, read_at_us bigint, "
        "reader_id text, antenna smallint, rssi_dbm real, reader_seq bigint) ON COMMIT DELETE ROWS"
    )
    with conn.cursor() as cur:
        with cur.copy(f"COPY reads_stage ({', '.join(_READ_COLUMNS)}) FROM STDIN") as copy:
            copy.write(copy_text(reads[_READ_COLUMNS]))
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
            copy.write(copy_text(passages[PASSAGE_DB_COLUMNS]))
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
