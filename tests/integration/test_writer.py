"""The engine's COPY writer: idempotent reads, upserted passages, partitions on demand."""

from __future__ import annotations

import pandas as pd
import psycopg

from track_engine.db.writer import PartitionKeeper, store_passages, store_reads

DAY_US = 86_400_000_000
T0 = 1_764_374_400_000_000  # 2025-11-29T00:00:00Z


def _reads(n: int, offset_us: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tag_id": [f"E2{i % 3:022X}" for i in range(n)],
            "read_at_us": [T0 + offset_us + i * 100_000 for i in range(n)],
            "reader_id": ["R0001"] * n,
            "antenna": [1] * n,
            "rssi_dbm": [-55.5] * n,
            "reader_seq": list(range(n)),
        }
    )


def test_same_reads_twice_are_stored_once(db_url: str) -> None:
    keeper = PartitionKeeper()
    with psycopg.connect(db_url) as conn:
        assert store_reads(conn, _reads(500), gateway_id="gw", partitions=keeper) == 500
        conn.commit()
        # A redelivered batch overlapping the first: only the new half is stored.
        assert store_reads(conn, _reads(1000), gateway_id="gw", partitions=keeper) == 500
        conn.commit()
        assert conn.execute("SELECT count(*) FROM reads").fetchone() == (1000,)
        first = conn.execute("SELECT min(read_at) FROM reads").fetchone()
        assert first is not None
        assert first[0].isoformat() == "2025-11-29T00:00:00+00:00"


def test_reads_spanning_midnight_create_both_partitions(db_url: str) -> None:
    keeper = PartitionKeeper()
    with psycopg.connect(db_url) as conn:
        store_reads(
            conn, _reads(20, offset_us=DAY_US - 1_000_000), gateway_id="gw", partitions=keeper
        )
        conn.commit()
        parts = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'reads'::regclass"
        ).fetchone()
        assert parts == (2,)


def test_passages_upsert_on_refold(db_url: str) -> None:
    keeper = PartitionKeeper()
    passage = pd.DataFrame(
        {
            "tag_id": ["E200"],
            "reader_id": ["R0001"],
            "first_at_us": [T0],
            "last_at_us": [T0 + 2_000_000],
            "closest_at_us": [T0 + 1_000_000],
            "peak_rssi_dbm": [-50.0],
            "read_count": [12],
            "direction": [""],
        }
    )
    with psycopg.connect(db_url) as conn:
        store_passages(conn, passage, partitions=keeper)
        late = passage.assign(last_at_us=T0 + 3_000_000, read_count=15)
        store_passages(conn, late, partitions=keeper)
        conn.commit()
        rows = conn.execute("SELECT read_count FROM passages").fetchall()
        assert rows == [(15,)]
