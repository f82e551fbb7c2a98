"""The engine stores the same passages and alerts through either storage adapter.

The same micro-batches — late reads included, so stored passages are merged and retired —
go through the engine wired to PostgreSQL (:class:`track_engine.pipeline.Engine`, on the real
database) and through the same core over :class:`track_engine.storage.memory.MemoryStorage`.
The accuracy benchmark and tests/engine/test_engine_core.py rely on the memory adapter
behaving as PostgreSQL does.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import psycopg

from api.registry import loaders as registry
from reader_gateway.wire import ReadBatch, batch_from_columns
from track_engine.core.engine import Engine as CoreEngine
from track_engine.pipeline import Engine
from track_engine.storage.memory import MemoryStorage

T0_US = 1_764_396_000_000_000  # 2025-11-29T06:00:00Z
US = 1_000_000
WATCHED = "FA11FA11FA11FA12"
COLUMNS = ["tag_id", "reader_id", "first_at_us", "last_at_us", "closest_at_us", "read_count"]


def _batch(reads: pd.DataFrame, seq: int) -> ReadBatch:
    return batch_from_columns(
        gateway_id="gw-parity", batch_seq=seq, sent_at_us=T0_US,
        reader_ids=reads["reader_id"].tolist(), antenna=reads["antenna"].tolist(),
        tag=reads["tag_id"].tolist(), rssi_dbm=reads["rssi_dbm"].tolist(),
        read_at_us=reads["read_at_us"].tolist(), seq=list(range(len(reads))),
    )  # fmt: skip


def _reads() -> list[pd.DataFrame]:
    """Visits of 12 tags (one watched) at 4 readers over 10 minutes, as 60 micro-batches of
    which every seventh arrives a minute late."""
    rng = np.random.default_rng(5)
    rows = []
    for t in range(12):
        tag = WATCHED if t == 0 else f"E28011{t:018X}"
        for start_s in np.sort(rng.uniform(0, 600, 5)):
            n = int(rng.integers(2, 30))
            i = np.arange(n)
            rows.append(
                pd.DataFrame(
                    {
                        "tag_id": tag,
                        "reader_id": f"R{rng.integers(1, 5)}",
                        "antenna": 1,
                        "rssi_dbm": -50.0 - np.abs(i - n // 2) * 1.5,
                        "read_at_us": T0_US + int(start_s * US) + i * 200_000,
                    }
                )
            )
    reads = pd.concat(rows, ignore_index=True).sort_values("read_at_us", ignore_index=True)
    bounds = np.linspace(0, len(reads), 61).astype(int)
    chunks = [reads.iloc[lo:hi] for lo, hi in itertools.pairwise(bounds)]
    late = [c for k, c in enumerate(chunks) if k % 7 == 3]
    on_time = [c for k, c in enumerate(chunks) if k % 7 != 3]
    # Each late chunk arrives six chunks (about a minute of event time) after its turn.
    order = on_time[:]
    for k, chunk in enumerate(late):
        order.insert(min(len(order), 3 + 7 * k + 6), chunk)
    return order


def _watch(conn: psycopg.Connection) -> int:
    ids = registry.register_bikes(
        conn,
        [
            registry.Registration(
                owner_name="Parity Test", owner_phone="13800000001",
                owner_id_number="110101199003074258", brand="Yadea", colour="blue",
                frame_number="PARITY0001", plate="浙B0PA12", tag_id=WATCHED,
            )
        ],
        registered_at=datetime(2025, 1, 1, tzinfo=UTC),
        id_hash_key=b"k" * 32,
    )  # fmt: skip
    _, watch_id = registry.open_theft(
        conn, bike_id=ids["浙B0PA12"], stolen_at=datetime(2025, 1, 2, tzinfo=UTC),
        reported_at=datetime(2025, 1, 2, 1, tzinfo=UTC), place="gate", description="",
        case_number="C-PARITY",
    )  # fmt: skip
    conn.commit()
    return int(watch_id)


def test_postgres_and_memory_adapters_store_the_same_passages_and_alerts(db_url: str) -> None:
    chunks = _reads()
    with psycopg.connect(db_url) as conn:
        watch_id = _watch(conn)
        watched = pd.DataFrame(
            conn.execute(
                "SELECT tb.tag_id, w.watch_id, w.bike_id, w.kind FROM watches w"
                " JOIN tag_bindings tb USING (bike_id) WHERE w.watch_id = %s",
                (watch_id,),
            ).fetchall(),
            columns=["tag_id", "watch_id", "bike_id", "kind"],
        )
        conn.commit()
        on_pg = Engine(conn, gap_s=10.0, allowed_lateness_s=120.0)
        memory = MemoryStorage(watched=watched)
        in_memory = CoreEngine(memory, gap_s=10.0, allowed_lateness_s=120.0)
        pg_alerts, memory_alerts = [], []
        for seq, chunk in enumerate(chunks):
            pg_alerts += on_pg.process([_batch(chunk, seq)]).alerts
            memory_alerts += in_memory.process([_batch(chunk, seq)]).alerts
        on_pg.flush()
        in_memory.flush()
        stored = pd.DataFrame(
            conn.execute(
                """SELECT tag_id, reader_id, (extract(epoch from first_at) * 1000000)::bigint,
                          (extract(epoch from last_at) * 1000000)::bigint,
                          (extract(epoch from closest_at) * 1000000)::bigint, read_count
                   FROM passages"""
            ).fetchall(),
            columns=COLUMNS,
        )
    key = ["tag_id", "reader_id", "first_at_us"]
    pd.testing.assert_frame_equal(
        memory.passages()[COLUMNS].sort_values(key, ignore_index=True),
        stored.sort_values(key, ignore_index=True),
        check_dtype=False,
    )
    assert len(stored) > 40
    assert [(a.watch_id, a.reader_id, a.read_at_us) for a in memory_alerts] == [
        (a.watch_id, a.reader_id, a.read_at_us) for a in pg_alerts
    ]
    assert len(pg_alerts) >= 3
