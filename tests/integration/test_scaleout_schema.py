"""Scale-out schema checks that can run on plain PostgreSQL (issue #10, docs/deployment.md).

- ``deploy/citus/distribute.sql`` against the real migrated schema (PostgreSQL's catalog):
  every table is listed exactly once, as distributed or as reference; each distributed table
  is distributed by ``tag_id``, co-located with ``reads``, and has ``tag_id`` in its primary
  key and in every unique or exclusion index (what Citus requires); no reference table points
  at a distributed one; reference tables come after the tables their foreign keys point to
  (``create_reference_table`` refuses a foreign key to a table Citus does not know yet).
  A migration that adds a table without adding it to the script fails here.
- Migration 0030 on plain PostgreSQL: no TimescaleDB objects, and the per-reader hourly
  statistics are views that count what is stored.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from track_engine.db.migrate import load_migrations

DISTRIBUTE_SQL = Path(__file__).resolve().parents[2] / "deploy" / "citus" / "distribute.sql"
_CALL = re.compile(
    r"^SELECT (create_reference_table|create_distributed_table)\('(\w+)'(?:, '(\w+)')?"
    r"(?:, colocate_with => '(\w+)')?\);$",
    re.MULTILINE,
)
# Tables the large ones must include: each grows with the fleet's reads.
LARGE = {"reads", "passages", "held_reads"}


def _script() -> tuple[list[str], dict[str, tuple[str, str | None]]]:
    """Reference tables in file order; distributed tables with (column, colocate_with)."""
    sql = re.sub(r"--[^\n]*", "", DISTRIBUTE_SQL.read_text())
    reference: list[str] = []
    distributed: dict[str, tuple[str, str | None]] = {}
    for kind, table, column, colocate in _CALL.findall(sql):
        if kind == "create_reference_table":
            reference.append(table)
        else:
            distributed[table] = (column, colocate or None)
    return reference, distributed


def _tables(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute(
        """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"""
    ).fetchall()
    return {str(r[0]) for r in rows}


def _unique_indexes(conn: psycopg.Connection, table: str) -> dict[str, tuple[bool, list[str]]]:
    """Unique and exclusion indexes of ``table``: name → (is primary key, columns)."""
    rows = conn.execute(
        """SELECT ic.relname, i.indisprimary,
                  array(SELECT a.attname FROM unnest(i.indkey) k
                        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k)
           FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
           WHERE i.indrelid = %s::regclass AND (i.indisunique OR i.indisexclusion)""",
        (table,),
    ).fetchall()
    return {str(name): (bool(pk), list(cols)) for name, pk, cols in rows}


def _foreign_keys(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """(table, referenced table) of every foreign key in the public schema."""
    rows = conn.execute(
        """SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint
           WHERE contype = 'f' AND connamespace = 'public'::regnamespace
             AND NOT conrelid::regclass::text ~ '_p[0-9]{8}$'"""
    ).fetchall()
    return [(str(a), str(b)) for a, b in rows]


def test_citus_script_distributes_every_table_by_tag_or_as_reference(db_url: str) -> None:
    reference, distributed = _script()
    assert len(reference) == len(set(reference)), "a reference table is listed twice"
    assert not set(reference) & set(distributed), "a table is both reference and distributed"
    with psycopg.connect(db_url) as conn:
        tables = _tables(conn)
        listed = set(reference) | set(distributed)
        assert tables - listed == set(), "tables missing from deploy/citus/distribute.sql"
        assert listed - tables == set(), "distribute.sql names tables the schema does not have"
        assert set(distributed) >= LARGE

        first = next(iter(distributed))
        for table, (column, colocate) in distributed.items():
            assert column == "tag_id", table
            assert colocate == (None if table == first else first), f"{table} not co-located"
            indexes = _unique_indexes(conn, table)
            assert any(pk for pk, _ in indexes.values()), f"{table} has no primary key"
            for name, (_, columns) in indexes.items():
                assert "tag_id" in columns, f"{table}.{name} {columns} lacks the tag key"

        position = {t: i for i, t in enumerate(reference)}
        for table, target in _foreign_keys(conn):
            if table == target:
                continue
            if table in position:
                assert target in position, f"reference {table} points at distributed {target}"
                assert position[target] < position[table], f"{table} listed before {target}"
            else:  # a distributed table may point at reference tables only
                assert target in position, f"{table} points at distributed {target}"


def test_timescaledb_policies_are_views_on_plain_postgresql(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        assert conn.execute(
            "SELECT mode FROM partition_policy WHERE table_name = 'reads'"
        ).fetchone() == ("native",)
        assert (
            conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
            is None
        )
        kinds: dict[str, str] = dict(
            conn.execute(
                "SELECT relname, relkind FROM pg_class WHERE relname IN "
                "('reader_hourly_reads', 'reader_hourly_passages', 'reader_hourly_stats')"
            ).fetchall()
        )
        assert kinds == dict.fromkeys(
            ("reader_hourly_reads", "reader_hourly_passages", "reader_hourly_stats"), "v"
        )
        conn.execute("SELECT tagtrail_ensure_partitions('reads', '2026-11-29Z', '2026-11-29Z')")
        conn.execute("SELECT tagtrail_ensure_partitions('passages', '2026-11-29Z', '2026-11-29Z')")
        conn.execute(
            """INSERT INTO reads (tag_id, read_at, reader_id, antenna, rssi_dbm, reader_seq,
                                  gateway_id)
               SELECT 'A' || (i % 3), timestamptz '2026-11-29 06:00Z' + i * interval '1 min',
                      'R1', 1, -50, i, 'gw'
               FROM generate_series(0, 89) i"""  # 60 reads in 06:00, 30 in 07:00
        )
        conn.execute(
            """INSERT INTO passages (tag_id, reader_id, first_at, last_at, closest_at,
                                     peak_rssi_dbm, read_count)
               VALUES ('A0', 'R2', '2026-11-29 07:10Z', '2026-11-29 07:11Z',
                       '2026-11-29 07:10:30Z', -45, 7),
                      ('A1', 'R2', '2026-11-29 07:20Z', '2026-11-29 07:21Z',
                       '2026-11-29 07:20:30Z', -45, 5)"""
        )
        rows = conn.execute(
            "SELECT reader_id, hour, reads, passages, passage_reads FROM reader_hourly_stats "
            "ORDER BY 1, 2"
        ).fetchall()
    six, seven = datetime(2026, 11, 29, 6, tzinfo=UTC), datetime(2026, 11, 29, 7, tzinfo=UTC)
    assert rows == [("R1", six, 60, 0, 0), ("R1", seven, 30, 0, 0), ("R2", seven, 0, 2, 12)]


def test_migration_0030_runs_again_without_change(db_url: str) -> None:
    sql = next(m.sql for m in load_migrations() if m.version == 30)
    with psycopg.connect(db_url) as conn:
        before = conn.execute(
            "SELECT relname, pg_get_viewdef(oid) FROM pg_class WHERE relname LIKE 'reader_hourly%' "
            "ORDER BY 1"
        ).fetchall()
        conn.execute(sql.encode())
        after = conn.execute(
            "SELECT relname, pg_get_viewdef(oid) FROM pg_class WHERE relname LIKE 'reader_hourly%' "
            "ORDER BY 1"
        ).fetchall()
    assert len(before) == 3
    assert after == before
