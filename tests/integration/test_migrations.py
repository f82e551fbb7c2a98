"""Migrations against the machine's PostgreSQL: idempotent, concurrent, tamper-evident."""

from __future__ import annotations

import threading

import psycopg
import pytest

from track_engine.db.migrate import applied_versions, load_migrations, migrate
from track_engine.errors import MigrationError


def test_migrate_twice_applies_once(empty_db: str) -> None:
    first = migrate(empty_db)
    assert [m.version for m in first] == [m.version for m in load_migrations()]
    assert migrate(empty_db) == []
    assert [v for v, _ in applied_versions(empty_db)] == [m.version for m in first]


def test_concurrent_migrators_apply_each_migration_once(empty_db: str) -> None:
    results: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(len(migrate(empty_db)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sorted(results) == [0, 0, 0, len(load_migrations())]


def test_edited_migration_is_refused(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(db_url)


def test_reads_are_partitioned_by_day(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        mode = conn.execute("SELECT mode FROM partition_policy WHERE table_name = 'reads'")
        assert mode.fetchone() == ("native",)
        created = conn.execute(
            "SELECT tagtrail_ensure_partitions('reads', '2026-11-28 23:00Z', '2026-11-30 01:00Z')"
        ).fetchone()
        assert created == (3,)
        again = conn.execute(
            "SELECT tagtrail_ensure_partitions('reads', '2026-11-29 00:00Z', '2026-11-29 01:00Z')"
        ).fetchone()
        assert again == (0,)
        parts = conn.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits "
            "WHERE inhparent = 'reads'::regclass ORDER BY 1"
        ).fetchall()
        assert [p[0] for p in parts] == ["reads_p20261128", "reads_p20261129", "reads_p20261130"]


def test_audit_log_is_append_only(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("INSERT INTO audit_log (actor, action) VALUES ('officer1', 'route.view')")
        conn.commit()
        for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)
            conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("TRUNCATE audit_log")
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone() == (1,)


def test_a_tag_binds_to_one_bike_at_a_time(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        owner = conn.execute(
            "INSERT INTO owners (name, phone, id_number_hash, id_number_tail) "
            "VALUES ('A', '1', 'x', '0000') RETURNING owner_id"
        ).fetchone()
        assert owner is not None
        bikes = [
            conn.execute(
                "INSERT INTO bikes (owner_id, frame_number, frame_number_key) "
                "VALUES (%s, %s, %s) RETURNING bike_id",
                (owner[0], f"F{i}", f"F{i}"),
            ).fetchone()
            for i in range(2)
        ]
        conn.execute("INSERT INTO tags (tag_id) VALUES ('E200')")
        conn.execute(
            "INSERT INTO tag_bindings (tag_id, bike_id, valid) "
            "VALUES ('E200', %s, tstzrange('2026-01-01Z', '2026-06-01Z'))",
            (bikes[0][0],),  # type: ignore[index]
        )
        # Re-tagging: the same tag on another bike after the first binding closed is fine...
        conn.execute(
            "INSERT INTO tag_bindings (tag_id, bike_id, valid) "
            "VALUES ('E200', %s, tstzrange('2026-06-01Z', NULL))",
            (bikes[1][0],),  # type: ignore[index]
        )
        # ...but not overlapping it.
        with pytest.raises(psycopg.errors.ExclusionViolation):
            conn.execute(
                "INSERT INTO tag_bindings (tag_id, bike_id, valid) "
                "VALUES ('E200', %s, tstzrange('2026-05-01Z', '2026-05-02Z'))",
                (bikes[1][0],),  # type: ignore[index]
            )
