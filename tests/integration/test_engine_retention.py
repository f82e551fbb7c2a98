"""Retention on the real PostgreSQL: old read partitions go, held tags' reads are kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg

from api.registry import loaders as registry
from track_engine.db.writer import PartitionKeeper, store_reads
from track_engine.retention import apply_retention

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
HELD, FREE = "E2801100000000000000D004", "E2801100000000000000E005"


def us(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def reads_at(*rows: tuple[str, datetime]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tag_id": [t for t, _ in rows],
            "read_at_us": [us(at) for _, at in rows],
            "reader_id": "R1",
            "antenna": 1,
            "rssi_dbm": -55.0,
            "reader_seq": range(len(rows)),
        }
    )


def partitions(conn: psycopg.Connection) -> list[str]:
    return sorted(
        str(r[0])
        for r in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'reads'::regclass"
        )
    )


def test_old_partitions_dropped_held_reads_kept(db_url: str) -> None:
    old, older, recent = NOW - timedelta(days=35), NOW - timedelta(days=40), NOW - timedelta(days=1)
    with psycopg.connect(db_url) as conn:
        ids = registry.register_bikes(
            conn,
            [
                registry.Registration(
                    owner_name="Han Meimei", owner_phone="13900000000",
                    owner_id_number="110101199001011234", brand="Aima", colour="blue",
                    frame_number="FRAMEHOLD", plate="ZB99999", tag_id=HELD,
                )
            ],
            registered_at=NOW - timedelta(days=90),
            id_hash_key=b"k" * 32,
        )  # fmt: skip
        theft_id, _ = registry.open_theft(
            conn, bike_id=ids["ZB99999"], stolen_at=NOW - timedelta(days=38),
            reported_at=NOW - timedelta(days=38), place="", description="", case_number="C-7",
        )  # fmt: skip
        # The case holds the tag's reads from the theft on (not the owner's rides before it).
        conn.execute(
            "INSERT INTO case_holds (theft_id, tag_id, held_from) VALUES (%s, %s, %s)",
            (theft_id, HELD, NOW - timedelta(days=38)),
        )
        keeper = PartitionKeeper()
        store_reads(
            conn,
            reads_at((HELD, older), (HELD, old), (FREE, old), (HELD, recent), (FREE, recent)),
            gateway_id="gw",
            partitions=keeper,
        )
        keeper.ensure_ahead(conn, us(NOW), 3)
        conn.commit()
        before = partitions(conn)

        result = apply_retention(conn, retention_days=30, now=NOW)

        after = partitions(conn)
        # Every day before the cutoff (30 days before NOW) goes, the empty ones between too.
        cutoff = f"reads_p{NOW - timedelta(days=30):%Y%m%d}"
        assert sorted(result.partitions_dropped) == [p for p in before if p < cutoff]
        assert f"reads_p{older:%Y%m%d}" in result.partitions_dropped
        assert f"reads_p{old:%Y%m%d}" in result.partitions_dropped
        assert set(before) - set(after) == set(result.partitions_dropped)
        assert f"reads_p{recent:%Y%m%d}" in after
        # Partitions ahead of the clock are untouched.
        assert f"reads_p{NOW + timedelta(days=3):%Y%m%d}" in after
        assert result.reads_held == 1
        held = conn.execute("SELECT tag_id, read_at FROM held_reads").fetchall()
        assert held == [(HELD, old)]
        left = conn.execute("SELECT tag_id, read_at FROM reads ORDER BY tag_id").fetchall()
        assert left == [(HELD, recent), (FREE, recent)]
        # A second run finds nothing more to do.
        again = apply_retention(conn, retention_days=30, now=NOW)
        assert again.partitions_dropped == []
