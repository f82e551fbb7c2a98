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
    end = datetime.fromtimestamp(before_us / _US, UTC)
    day = end.replace(hour=0, minute=0, second=0, microsecond=0)
    start_us = max(int(day.timestamp()) * _US, before_us - _SPAN_US)
    step_us = max(1, (before_us - start_us) // max(rows, 1))
    part = f"reads_p{day:%Y%m%d}"
    started = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        direct = _direct(conn, "reads")
        if direct:
            part = "reads"
            _ensure_day(conn, "reads", day)
        else:
            conn.execute(f"CREATE TABLE {part} (LIKE reads INCLUDING DEFAULTS)")
        conn.execute(
            f"""INSERT INTO {part} (tag_id, read_at, reader_id, antenna, rssi_dbm, reader_seq,
                                    gateway_id)
                SELECT upper(substr(md5((i %% {tags})::text), 1, 16)),
                       timestamptz 'epoch' + (%(start)s + i * %(step)s) * interval '1 microsecond',
                       'AT-' || lpad(upper(to_hex(1 + i %% 2000)), 8, '0'),
                       1 + i %% 2, -60 - (i %% 20), i, 'bench-preload'
                FROM generate_series(0::bigint, %(rows)s::bigint - 1) AS i""",
            {"start": start_us, "step": step_us, "rows": rows},
        )
        if direct:
            conn.execute("ANALYZE reads")
            return {"rows": rows, "partition": "reads", "seconds": _since(started)}
        conn.execute(f"ALTER TABLE {part} ADD PRIMARY KEY (read_at, tag_id, reader_id, antenna)")
        # DDL takes no parameters; both bounds are formatted dates, not user input.
        lo, hi = day.isoformat(), (day + timedelta(days=1)).isoformat()
        conn.execute(
            f"ALTER TABLE reads ATTACH PARTITION {part} FOR VALUES FROM ('{lo}') TO ('{hi}')"
        )
        conn.execute(f"ANALYZE {part}")
    return {"rows": rows, "partition": part, "seconds": round(time.perf_counter() - started, 1)}


def preload_passages(
    database_url: str, *, rows: int, before_us: int, readers: list[str], tags: int
) -> dict[str, Any]:
    """Store ``rows`` passages at ``readers`` in the partition of ``before_us``'s day.

    Same method as :func:`preload_reads` (one sort per index, then ATTACH PARTITION); the
    passages use the city's own reader ids, so "where did tags go next from this reader"
    has months of departures to wade through, as it would in a real deployment.
    """
    end = datetime.fromtimestamp(before_us / _US, UTC)
    day = end.replace(hour=0, minute=0, second=0, microsecond=0)
    start_us = max(int(day.timestamp()) * _US, before_us - _SPAN_US)
    step_us = max(1, (before_us - start_us) // max(rows, 1))
    part = f"passages_p{day:%Y%m%d}"
    started = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        direct = _direct(conn, "passages")
        if direct:
            part = "passages"
            _ensure_day(conn, "passages", day)
        else:
            conn.execute(f"CREATE TABLE {part} (LIKE passages INCLUDING DEFAULTS)")
        conn.execute(
            f"""INSERT INTO {part} (tag_id, reader_id, first_at, last_at, closest_at,
                                    peak_rssi_dbm, read_count, direction)
                SELECT upper(substr(md5((i %% {tags})::text), 1, 16)),
                       (%(readers)s::text[])[1 + (i * 7919) %% %(n)s],
                       ts, ts + interval '3 seconds', ts + interval '1.5 seconds', -50, 15, ''
                FROM generate_series(0::bigint, %(rows)s::bigint - 1) AS i,
                     LATERAL (SELECT timestamptz 'epoch'
                                     + (%(start)s + i * %(step)s) * interval '1 microsecond'
                             ) AS t(ts)""",
            {
                "readers": readers,
                "n": len(readers),
                "rows": rows,
                "start": start_us,
                "step": step_us,
            },
        )
        if direct:
            conn.execute("ANALYZE passages")
            return {"rows": rows, "partition": "passages", "seconds": _since(started)}
        conn.execute(f"ALTER TABLE {part} ADD PRIMARY KEY (tag_id, first_at, reader_id)")
        conn.execute(f"CREATE INDEX ON {part} (reader_id, first_at)")
        lo, hi = day.isoformat(), (day + timedelta(days=1)).isoformat()
        conn.execute(
            f"ALTER TABLE passages ATTACH PARTITION {part} FOR VALUES FROM ('{lo}') TO ('{hi}')"
        )
        conn.execute(f"ANALYZE {part}")
    return {"rows": rows, "partition": part, "seconds": round(time.perf_counter() - started, 1)}


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
