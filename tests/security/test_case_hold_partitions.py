"""Evidence under a case hold survives the engine's login (migration 0060).

The engine's database role may drop past day partitions of ``reads`` and ``passages`` through
``tagtrail_drop_partition`` (SECURITY DEFINER). Logged in as a member of ``tagtrail_engine``,
a direct call must not destroy reads or passages of a tag under a case hold: a reads partition
goes only once every held read in it has an identical copy in ``held_reads`` (what retention
makes, in the same transaction), and a passages partition with held passages stays.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from api_helpers import create_migrated_database
from psycopg import sql
from testsupport import drop_database

from api.registry import loaders as registry
from track_engine.retention import apply_retention

HELD = "E28011A100000000000000C1"
FREE = "E2000000000000000000C2C2"
DAY = datetime(2025, 6, 1, tzinfo=UTC)  # a past day: the function's other checks allow it
HELD_DAY = "20250601"
FREE_DAY = "20250602"  # only reads of a tag nobody holds


@dataclass(frozen=True)
class World:
    """One migrated database, as its owner and as a login in ``tagtrail_engine``."""

    owner: str
    engine: str


@pytest.fixture
def world(pg_admin_url: str) -> Iterator[World]:
    """A held tag and a free one, read and passed on two past days; an engine login."""
    name, url = create_migrated_database(pg_admin_url)
    login = f"tt_engine_hold_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN IN ROLE tagtrail_engine").format(
                    sql.Identifier(login)
                )
            )
        info = psycopg.conninfo.conninfo_to_dict(url)
        _populate(url)
        yield World(url, psycopg.conninfo.make_conninfo(**{**info, "user": login}))
    finally:
        drop_database(pg_admin_url, name)
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(login)))


def _populate(url: str) -> None:
    with psycopg.connect(url) as conn:
        ids = registry.register_bikes(
            conn,
            [
                registry.Registration(
                    owner_name="Wang Fang", owner_phone="13700000000",
                    owner_id_number="110101199003074258", brand="Yadea", colour="black",
                    frame_number="FRAMEHOLD60", plate="ZBHOLD60", tag_id=HELD,
                )
            ],
            registered_at=DAY - timedelta(days=30),
            id_hash_key=b"k" * 32,
        )  # fmt: skip
        theft_id, _ = registry.open_theft(
            conn, bike_id=ids["ZBHOLD60"], stolen_at=DAY, reported_at=DAY + timedelta(hours=1),
            place="gate", description="", case_number="C-HOLD-60",
        )  # fmt: skip
        conn.execute(
            "INSERT INTO case_holds (theft_id, tag_id, held_from) VALUES (%s, %s, %s)",
            (theft_id, HELD, DAY),
        )
        for table in ("reads", "passages"):
            conn.execute(
                "SELECT tagtrail_ensure_partitions(%s, %s, %s)",
                (table, DAY, DAY + timedelta(days=1)),
            )
        rows = [(HELD, DAY + timedelta(hours=8, seconds=i)) for i in range(3)]
        rows += [(FREE, DAY + timedelta(hours=9, seconds=i)) for i in range(3)]
        rows += [(FREE, DAY + timedelta(days=1, hours=9, seconds=i)) for i in range(3)]
        for seq, (tag, at) in enumerate(rows):
            conn.execute(
                "INSERT INTO reads (tag_id, read_at, reader_id, antenna, rssi_dbm, reader_seq, "
                "gateway_id) VALUES (%s, %s, 'R0001', 1, -60, %s, 'gw-1')",
                (tag, at, seq),
            )
        for tag, at in ((HELD, DAY + timedelta(hours=8)), (FREE, DAY + timedelta(hours=9))):
            conn.execute(
                "INSERT INTO passages (tag_id, reader_id, first_at, last_at, closest_at, "
                "peak_rssi_dbm, read_count) VALUES (%s, 'R0001', %s, %s, %s, -60, 3)",
                (tag, at, at + timedelta(seconds=2), at + timedelta(seconds=1)),
            )


def _drop_as(url: str, table: str, day: str) -> str | None:
    """Call the drop function; the error it raised (None if it dropped, committed)."""
    with psycopg.connect(url) as conn:
        try:
            conn.execute("SELECT tagtrail_drop_partition(%s, %s)", (table, f"{table}_p{day}"))
        except psycopg.Error as exc:
            return f"{type(exc).__name__}: {exc}"
    return None


def _count(url: str, query: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def test_engine_role_cannot_drop_partition_holding_case_reads(world: World) -> None:
    error = _drop_as(world.engine, "reads", HELD_DAY)
    assert error is not None, "the engine's login dropped reads under a case hold"
    assert error.startswith("RestrictViolation"), error
    assert "case hold" in error
    assert _count(world.owner, f"SELECT count(*) FROM reads WHERE tag_id = '{HELD}'") == 3
    # The same login drops a past day that holds no held read (the check is not a blanket no).
    assert _drop_as(world.engine, "reads", FREE_DAY) is None
    assert _count(world.owner, "SELECT count(*) FROM reads") == 6


def test_engine_role_cannot_drop_partition_holding_case_passages(world: World) -> None:
    error = _drop_as(world.engine, "passages", HELD_DAY)
    assert error is not None, "the engine's login dropped passages under a case hold"
    assert error.startswith("RestrictViolation"), error
    assert _count(world.owner, f"SELECT count(*) FROM passages WHERE tag_id = '{HELD}'") == 1
    assert _drop_as(world.engine, "passages", FREE_DAY) is None  # nothing held there


def test_forged_held_copy_does_not_unlock_the_drop(world: World) -> None:
    # The engine may INSERT into held_reads: a copy with another RSSI is not the evidence.
    with psycopg.connect(world.engine) as conn:
        conn.execute(
            "INSERT INTO held_reads (tag_id, read_at, reader_id, antenna, rssi_dbm, reader_seq, "
            "gateway_id) SELECT tag_id, read_at, reader_id, antenna, -1, reader_seq, gateway_id "
            f"FROM reads WHERE tag_id = '{HELD}'"
        )
    assert _drop_as(world.engine, "reads", HELD_DAY) is not None
    assert _count(world.owner, f"SELECT count(*) FROM reads WHERE tag_id = '{HELD}'") == 3


def test_retention_as_engine_moves_held_reads_then_drops(world: World) -> None:
    with psycopg.connect(world.engine) as conn:
        result = apply_retention(conn, retention_days=30, now=DAY + timedelta(days=60))
    assert f"reads_p{HELD_DAY}" in result.partitions_dropped
    assert result.reads_held == 3
    assert _count(world.owner, f"SELECT count(*) FROM held_reads WHERE tag_id = '{HELD}'") == 3
    assert _count(world.owner, f"SELECT count(*) FROM held_reads WHERE tag_id = '{FREE}'") == 0
    assert _count(world.owner, "SELECT count(*) FROM reads") == 0
