"""A micro-batch whose transaction fails leaves the engine's memory as it found it.

Regression for what the database-restart fault test found: the failed transaction had already
dropped the reads of the passages it closed (never stored) and recorded its alerts as raised
(rolled back), so redoing the same messages lost those passages and suppressed the alerts.
"""

from __future__ import annotations

import psycopg
import pytest
from harness import WATCHED_TAG, watch_tag

from reader_gateway.wire import ReadBatch, batch_from_columns
from track_engine.pipeline import Engine

pytestmark = pytest.mark.faults
T0_US = 1_764_396_000_000_000


def _batch(first_s: int, n: int, tag: str = WATCHED_TAG) -> ReadBatch:
    return batch_from_columns(
        gateway_id="gw-rb", batch_seq=first_s, sent_at_us=T0_US, reader_ids=["R1"] * n,
        antenna=[1] * n, tag=[tag] * n, rssi_dbm=[-60.0] * n,
        read_at_us=[T0_US + (first_s + i) * 1_000_000 for i in range(n)], seq=list(range(n)),
    )  # fmt: skip


def _process_then_fail(engine: Engine, batch: ReadBatch) -> None:
    with engine.micro_batch():
        result = engine.process([batch])
        assert len(result.alerts) == 1
        assert result.passages_stored == 1
        raise RuntimeError("the connection died before COMMIT")


def test_a_failed_micro_batch_can_be_redone_without_losing_alerts_or_passages(
    db_url: str,
) -> None:
    watch_tag(db_url)
    with psycopg.connect(db_url) as conn:
        engine = Engine(conn, gap_s=2.0)
        first = engine.process([_batch(0, 3, tag="AB")])  # a passage of AB stays open
        assert first.passages_stored == 0
        later = _batch(100, 3)  # closes AB's passage and is the watched tag's first read
        with pytest.raises(RuntimeError):
            _process_then_fail(engine, later)
        assert conn.execute("SELECT count(*) FROM alerts").fetchone() == (0,)
        assert engine.pending_reads == 3  # AB's reads are back in memory
        redo = engine.process([later])
        assert len(redo.alerts) == 1, "the redone micro-batch suppressed its alert"
        assert redo.passages_stored == 1, "the closed passage was lost"
        assert conn.execute("SELECT count(*) FROM alerts").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM passages").fetchone() == (1,)
