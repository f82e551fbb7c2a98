"""The engine's write path: raw reads and passages with COPY, idempotently.

Reads are COPYed straight into the partitioned table inside a savepoint: almost every batch
is new, and that is the fastest way PostgreSQL stores rows. COPY cannot skip rows that are
already stored, so when the savepoint fails on the natural key (a batch the broker redelivered
after a crash) the batch goes the slow, idempotent way instead: COPY into a temporary staging
table and ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``. Passages are always upserted that
way (a passage refolded with late reads replaces the stored one).

Reads go as binary COPY built with numpy (:mod:`track_engine.db.copy_binary`): PostgreSQL
parses no timestamps or numbers, a third less work per row than text. Passages (a few
thousand a micro-batch) go as COPY text written by pyarrow's CSV writer (C++, about 3× pandas'
``to_csv``); ids never contain tabs, newlines or backslashes (the wire contract and the
consumer refuse them), so no quoting is needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg.copy import QueuedLibpqWriter

from track_engine.core.port import ReadCopy
from track_engine.core.rows import ReadRows
from track_engine.db.copy_binary import Fixed, PlainText, Text, Timestamp, copy_binary
from track_engine.db.distributed import is_duplicate_key

__all__ = [
    "COPY_READS",
    "PartitionKeeper",
    "ReadCopy",
    "ReadRows",
    "copying_reads",
    "read_copy_data",
    "retire_passages",
    "store_passages",
    "store_reads",
]

_EPOCH = "timestamptz '1970-01-01 00:00:00+00'"
_US = "interval '1 microsecond'"
_DAY_US = 86_400_000_000


class PartitionKeeper:
    """Creates the daily partitions a write needs, remembering which days already exist.

    Only the days that hold a time are created, never the days between them: the read times of
    a batch may lie far apart (before the engine screened read times, one batch dated 2000 and
    2099 made this create 36,000 partitions in one transaction and stopped the engine).
    """

    def __init__(self) -> None:
        self._days: dict[str, set[int]] = {}

    def missing_days(self, table: str, times_us: np.ndarray) -> list[int]:
        """Days (UTC, days since the epoch) of ``times_us`` not known to have a partition."""
        if times_us.size == 0:
            return []
        known = self._days.get(table, set())
        return sorted(set(np.unique(times_us // _DAY_US).tolist()) - known)

    def ensure(self, conn: psycopg.Connection, table: str, times_us: np.ndarray) -> int:
        """Make sure partitions of ``table`` exist for every day in ``times_us`` (one call per
        run of consecutive days); returns how many days were not known before."""
        days = self.missing_days(table, times_us)
        if not days:
            return 0
        runs: list[tuple[int, int]] = []
        for day in days:  # distinct days, sorted: few per batch (the read window bounds them)
            if runs and runs[-1][1] == day - 1:
                runs[-1] = (runs[-1][0], day)
            else:
                runs.append((day, day))
        for lo, hi in runs:
            conn.execute(
                f"SELECT tagtrail_ensure_partitions(%s, {_EPOCH} + %s * {_US},"
                f" {_EPOCH} + %s * {_US})",
                (table, lo * _DAY_US, hi * _DAY_US),
            )
        self._days.setdefault(table, set()).update(days)
        return len(days)

    def ensure_ahead(self, conn: psycopg.Connection, now_us: int, days_ahead: int) -> None:
        """Create today's and the next ``days_ahead`` days' partitions of each time table."""
        span = np.array([now_us, now_us + days_ahead * _DAY_US], dtype=np.int64)
        full = np.arange(span[0] // _DAY_US, span[1] // _DAY_US + 1, dtype=np.int64) * _DAY_US
        for table in ("reads", "passages"):
            self.ensure(conn, table, full)


_COPY_TEXT = pa_csv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
_READ_COLUMNS = ["tag_id", "read_at_us", "reader_id", "antenna", "rssi_dbm", "reader_seq"]
COPY_READS = (
    "COPY reads (tag_id, read_at, reader_id, antenna, rssi_dbm, reader_seq, gateway_id) "
    "FROM STDIN (FORMAT BINARY)"
)


def copy_text(frame: pd.DataFrame | pa.Table) -> bytes:
    """Tab-separated COPY text of a frame, with no per-row Python loop."""
    table = (
        frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    )
    out = pa.BufferOutputStream()
    pa_csv.write_csv(table, out, _COPY_TEXT)
    data: bytes = out.getvalue().to_pybytes()
    return data


def read_copy_data(rows: ReadRows) -> bytes:
    """``rows`` as binary COPY data for :data:`COPY_READS`."""
    # Rounded to the wire's 0.01 dB as float64, then to the column's float4.
    rssi = np.round(np.asarray(rows.rssi_dbm, dtype=np.float64), 2).astype(">f4")
    return copy_binary(
        [
            PlainText(rows.tag_id),
            Timestamp(rows.read_at_us),
            Text(rows.reader_code, rows.reader_names),
            Fixed(np.asarray(rows.antenna, dtype=">i2"), ">i2"),
            Fixed(rssi, ">f4"),
            Fixed(np.asarray(rows.reader_seq, dtype=">i8"), ">i8"),
            Text(rows.gateway_code, rows.gateway_names),
        ]
    )


@contextmanager
def copying_reads(
    conn: psycopg.Connection, rows: ReadRows, *, partitions: PartitionKeeper
) -> Iterator[ReadCopy]:
    """COPY reads into ``reads`` (binary COPY); the block runs while PostgreSQL works.

    The rows are handed to a writer thread and the block runs before the COPY is finished, so
    the engine's own work (alerts, folding) overlaps PostgreSQL's on the other core. When the
    COPY hits reads already stored (a redelivered batch), its savepoint is rolled back and the
    reads go the idempotent way; ``stored`` then counts only the new ones. The caller owns
    the transaction. The block must not use ``conn`` (the COPY is still under way).
    """
    result = ReadCopy()
    if len(rows) == 0:
        yield result
        return
    partitions.ensure(conn, "reads", rows.read_at_us)
    data = read_copy_data(rows)
    block_done = False
    # An enclosing transaction (a savepoint inside the caller's), so that the staged way's
    # temporary table lives in a transaction even on an autocommit connection.
    with conn.transaction():
        try:
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(COPY_READS, writer=QueuedLibpqWriter(cur)) as copy,
            ):
                copy.write(data)
                yield result
                block_done = True
            result.stored = len(rows)
        except psycopg.Error as exc:
            # Citus reports a duplicate in a distributed COPY as XX000 (track_engine.db.distributed)
            if not (block_done and is_duplicate_key(exc)):
                raise  # not a duplicate, or not the COPY's: the caller's block failed
            result.stored = _store_reads_staged(conn, data)


def store_reads(
    conn: psycopg.Connection, reads: pd.DataFrame, *, gateway_id: str, partitions: PartitionKeeper
) -> int:
    """Store reads (columns tag_id, read_at_us, reader_id, antenna, rssi_dbm, reader_seq).

    Returns how many were new; reads already stored are skipped. The caller owns the
    transaction.
    """
    if reads.empty:
        return 0
    rows = ReadRows.from_frame(reads, gateway_id=gateway_id)
    with copying_reads(conn, rows, partitions=partitions) as copied:
        pass
    return copied.stored


def _store_reads_staged(conn: psycopg.Connection, data: bytes) -> int:
    """Staging table + ``INSERT ... ON CONFLICT DO NOTHING``: skips reads already stored."""
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS reads_stage (LIKE reads INCLUDING DEFAULTS) "
        "ON COMMIT DELETE ROWS"
    )
    with conn.cursor() as cur:
        with cur.copy(COPY_READS.replace("COPY reads ", "COPY reads_stage ")) as copy:
            copy.write(data)
        # Counted from RETURNING: Citus's command tag counts the rows attempted, not inserted.
        cur.execute(
            "INSERT INTO reads SELECT * FROM reads_stage ON CONFLICT DO NOTHING RETURNING 1"
        )
        inserted = len(cur.fetchall())
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


def retire_passages(conn: psycopg.Connection, keys: pd.DataFrame) -> int:
    """Remove stored passages (keys ``tag_id, reader_id, first_at_us``) that a refold with late
    reads has merged into a passage written already: one starting before them, or two passages
    a late read joined. The engine may not DELETE passages; ``tagtrail_retire_passages``
    (migration 0075) removes a passage only while a stored passage of the same tag and reader
    with more reads covers it. Returns how many it removed. The caller owns the transaction."""
    if keys.empty:
        return 0
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    row = conn.execute(
        "SELECT tagtrail_retire_passages(%s::text[], %s::text[], %s::timestamptz[])",
        (
            keys["tag_id"].astype(str).tolist(),
            keys["reader_id"].astype(str).tolist(),
            [epoch + timedelta(microseconds=int(us)) for us in keys["first_at_us"]],
        ),
    ).fetchone()
    return 0 if row is None else int(row[0])
