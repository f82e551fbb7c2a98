"""Fill a fresh database with stored reads quickly, for the "as the table grows" figures.

Rows are made by ``generate_series`` inside PostgreSQL (nothing crosses the socket) into a
plain table shaped like one daily partition of ``reads``; its primary key is then built in one
sort (much faster than maintaining a B-tree row by row) and the table is attached as the
partition of its day (on TimescaleDB and Citus, where nothing can be attached, the same rows
are inserted into the table itself), named as ``tagtrail_ensure_partitions`` names
partitions so the engine finds it. The rows end before ``before_us`` and start at most six
hours earlier, within one UTC day, so they sit in the very partition the workload then
writes to: that is the index that grows with stored rows (older days are other partitions and
cost inserts nothing).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

_US = 1_000_000
_SPAN_US = 6 * 3600 * _US


def preload_reads(database_url: str, *, rows: int, before_us: int, tags: int) -> dict[str, Any]:
    """Store ``rows`` reads in the partition of ``before_us``'s day; returns rows and seconds."""
    return _preload(
        database_url,
        "reads",
        rows=rows,
        before_us=before_us,
        columns="tag_id, read_at, reader_id, antenna, rssi_dbm, reader_seq, gateway_id",
        select=f"""SELECT upper(substr(md5((i %% {tags})::text), 1, 16)),
                       timestamptz 'epoch' + (%(start)s + i * %(step)s) * interval '1 microsecond',
                       'AT-' || lpad(upper(to_hex(1 + i %% 2000)), 8, '0'),
                       1 + i %% 2, -60 - (i %% 20), i, 'bench-preload'
                FROM generate_series(0::bigint, %(rows)s::bigint - 1) AS i""",
        params={},
        primary_key="read_at, tag_id, reader_id, antenna",
    )


def preload_passages(
    database_url: str, *, rows: int, before_us: int, readers: list[str], tags: int
) -> dict[str, Any]:
    """Store ``rows`` passages at ``readers`` in the partition of ``before_us``'s day.

    Same method as :func:`preload_reads` (one sort per index, then ATTACH PARTITION); the
    passages use the city's own reader ids, so "where did tags go next from this reader"
    has months of departures to wade through, as it would in a real deployment.
    """
    return _preload(
        database_url,
        "passages",
        rows=rows,
        before_us=before_us,
        columns="tag_id, reader_id, first_at, last_at, closest_at, peak_rssi_dbm, read_count,"
        " direction",
        select=f"""SELECT upper(substr(md5((i %% {tags})::text), 1, 16)),
                       (%(readers)s::text[])[1 + (i * 7919) %% %(n)s],
                       ts, ts + interval '3 seconds', ts + interval '1.5 seconds', -50, 15, ''
                FROM generate_series(0::bigint, %(rows)s::bigint - 1) AS i,
                     LATERAL (SELECT timestamptz 'epoch'
                                     + (%(start)s + i * %(step)s) * interval '1 microsecond'
                             ) AS t(ts)""",
        params={"readers": readers, "n": len(readers)},
        primary_key="tag_id, first_at, reader_id",
        indexes=("reader_id, first_at",),
    )


def _preload(
    database_url: str,
    table: str,
    *,
    rows: int,
    before_us: int,
    columns: str,
    select: str,
    params: dict[str, Any],
    primary_key: str,
    indexes: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Insert ``select``'s ``rows`` rows (``columns`` of ``table``; parameters ``start``,
    ``step`` and ``rows`` given, ``params`` besides) into a plain table shaped like the
    partition of ``before_us``'s day, key and index it in one sort each, and attach it."""
    end = datetime.fromtimestamp(before_us / _US, UTC)
    day = end.replace(hour=0, minute=0, second=0, microsecond=0)
    start_us = max(int(day.timestamp()) * _US, before_us - _SPAN_US)
    step_us = max(1, (before_us - start_us) // max(rows, 1))
    part = f"{table}_p{day:%Y%m%d}"
    started = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        direct = _direct(conn, table)
        if direct:
            part = table
            _ensure_day(conn, table, day)
        else:
            conn.execute(f"CREATE TABLE {part} (LIKE {table} INCLUDING DEFAULTS)")
        conn.execute(
            f"INSERT INTO {part} ({columns}) {select}",
            {"start": start_us, "step": step_us, "rows": rows, **params},
        )
        if direct:
            conn.execute(f"ANALYZE {table}")
            return {"rows": rows, "partition": table, "seconds": _since(started)}
        conn.execute(f"ALTER TABLE {part} ADD PRIMARY KEY ({primary_key})")
        for index in indexes:
            conn.execute(f"CREATE INDEX ON {part} ({index})")
        # DDL takes no parameters; both bounds are formatted dates, not user input.
        lo, hi = day.isoformat(), (day + timedelta(days=1)).isoformat()
        conn.execute(
            f"ALTER TABLE {table} ATTACH PARTITION {part} FOR VALUES FROM ('{lo}') TO ('{hi}')"
        )
        conn.execute(f"ANALYZE {part}")
    return {"rows": rows, "partition": part, "seconds": _since(started)}


def _direct(conn: psycopg.Connection, table: str) -> bool:
    """True where a partition cannot be attached (a TimescaleDB hypertable, or a Citus
    distributed table): the rows are then inserted into ``table`` itself, in one statement."""
    row = conn.execute(
        "SELECT (SELECT mode FROM partition_policy WHERE table_name = %s) <> 'native'"
        " OR EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')",
        (table,),
    ).fetchone()
    return bool(row and row[0])


def _ensure_day(conn: psycopg.Connection, table: str, day: datetime) -> None:
    """The day's partition (native partitions, as on Citus; a no-op on TimescaleDB)."""
    conn.execute("SELECT tagtrail_ensure_partitions(%s, %s, %s)", (table, day, day))


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 1)


def checkpoint(database_url: str) -> float:
    """Flush what a preload left dirty (``CHECKPOINT``); returns the seconds it took.

    A preload writes gigabytes in minutes: PostgreSQL then checkpoints it for the next minutes,
    competing with whatever is measured next. Rows that arrived over months in production
    were flushed long ago, so a figure "with N rows stored" is measured after this.
    """
    started = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    return round(time.perf_counter() - started, 1)
