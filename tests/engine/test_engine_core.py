"""The real engine core (:class:`track_engine.core.engine.Engine`) over the in-memory storage
adapter: what it stores, how a failed micro-batch rolls back, alerts, restart recovery.

The same engine runs on PostgreSQL in production (tests/integration/test_storage_parity.py
checks both adapters store the same passages and alerts for the same micro-batches).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reader_gateway.wire import ReadBatch, batch_from_columns
from track_engine.core.engine import Engine
from track_engine.passages import fold_passages
from track_engine.storage.memory import MemoryStorage

T0_US = 1_764_396_000_000_000  # 2025-11-29T06:00:00Z
US = 1_000_000
WATCHED = "E2801100AAAABBBBCCCCDDDD"


def _batch(reads: pd.DataFrame, seq: int) -> ReadBatch:
    return batch_from_columns(
        gateway_id="gw-core", batch_seq=seq, sent_at_us=T0_US,
        reader_ids=reads["reader_id"].tolist(), antenna=reads["antenna"].tolist(),
        tag=reads["tag_id"].tolist(), rssi_dbm=reads["rssi_dbm"].tolist(),
        read_at_us=reads["read_at_us"].tolist(), seq=list(range(len(reads))),
    )  # fmt: skip


def _visit(tag: str, reader: str, start_us: int, n: int = 21) -> pd.DataFrame:
    """A tag passing a reader: a read every 0.2 s, loudest in the middle."""
    i = np.arange(n)
    return pd.DataFrame(
        {
            "tag_id": tag,
            "reader_id": reader,
            "antenna": 1,
            "rssi_dbm": -50.0 - np.abs(i - n // 2) * 1.5,
            "read_at_us": start_us + i * 200_000,
        }
    )


def _city(seed: int) -> pd.DataFrame:
    """Visits of 30 tags at 6 readers over 20 minutes, in time order."""
    rng = np.random.default_rng(seed)
    visits = [
        _visit(f"E28011{t:018X}", f"R{rng.integers(1, 7)}", T0_US + int(s) * US, int(n))
        for t in range(30)
        for s, n in zip(np.sort(rng.uniform(0, 1200, 4)), rng.integers(2, 40, 4), strict=True)
    ]
    return pd.concat(visits, ignore_index=True).sort_values("read_at_us", ignore_index=True)


def _watched() -> pd.DataFrame:
    return pd.DataFrame(
        [(WATCHED, 7, 70, "theft")], columns=["tag_id", "watch_id", "bike_id", "kind"]
    )


def _process_then_fail(engine: Engine, batch: ReadBatch) -> None:
    with engine.micro_batch():
        result = engine.process([batch])
        assert len(result.alerts) == 1
        assert result.passages_stored == 1
        raise RuntimeError("the transaction failed before COMMIT")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_micro_batches_store_what_one_fold_over_every_read_gives(seed: int) -> None:
    reads = _city(seed)
    storage = MemoryStorage()
    engine = Engine(storage, gap_s=10.0, max_passage_s=10_000.0)
    for k, lo in enumerate(range(0, len(reads), 97)):
        engine.process([_batch(reads.iloc[lo : lo + 97], k)])
    engine.flush()
    want = fold_passages(reads, gap_s=10.0, drop_repeats=True)
    got = storage.passages()
    key = ["tag_id", "reader_id", "first_at_us"]
    pd.testing.assert_frame_equal(
        got.sort_values(key, ignore_index=True),
        want.sort_values(key, ignore_index=True),
        check_dtype=False,
    )
    assert engine.pending_reads == 0
    # A read stored once per key, as the reads table's primary key has it.
    distinct = reads.drop_duplicates(["tag_id", "read_at_us", "reader_id", "antenna"])
    assert len(storage.reads()) == len(distinct)


def test_a_failed_micro_batch_keeps_the_state_from_before_and_can_be_redone() -> None:
    storage = MemoryStorage(watched=_watched())
    engine = Engine(storage, gap_s=2.0)
    engine.process([_batch(_visit("AB", "R1", T0_US, n=3), 0)])  # AB's passage stays open
    before = engine.state
    later = _batch(_visit(WATCHED, "R1", T0_US + 100 * US, n=3), 1)  # closes AB's passage
    with pytest.raises(RuntimeError):
        _process_then_fail(engine, later)
    assert engine.state is before
    assert storage.alerts() == []
    assert storage.passages().empty
    assert engine.pending_reads == 3
    redo = engine.process([later])
    assert [a.tag_id for a in redo.alerts] == [WATCHED]
    assert redo.passages_stored == 1
    assert len(storage.alerts()) == 1


def test_a_watched_tag_alerts_once_per_visit_and_again_on_the_next() -> None:
    storage = MemoryStorage(watched=_watched())
    engine = Engine(storage, gap_s=10.0)
    visit = _visit(WATCHED, "R1", T0_US)
    first = engine.process([_batch(visit.iloc[:10], 0)])
    same_visit = engine.process([_batch(visit.iloc[10:], 1)])
    next_visit = engine.process([_batch(_visit(WATCHED, "R1", T0_US + 60 * US), 2)])
    assert [(a.watch_id, a.bike_id, a.kind, a.reader_id) for a in first.alerts] == [
        (7, 70, "theft", "R1")
    ]
    assert first.alerts[0].read_at_us == T0_US
    assert same_visit.alerts == []
    assert [a.read_at_us for a in next_visit.alerts] == [T0_US + 60 * US]
    assert [alert_id for alert_id, _ in storage.alerts()] == [1, 2]


def test_a_restarted_engine_recovers_open_passages_and_ignores_a_redelivered_batch() -> None:
    storage = MemoryStorage()
    engine = Engine(storage, gap_s=2.0)
    visit = _visit("A1", "R1", T0_US)
    engine.process([_batch(visit, 0)])  # stored as reads, the passage still open
    assert storage.passages().empty
    restarted = Engine(storage, gap_s=2.0)  # the first one "crashed"
    assert restarted.pending_reads == len(visit)
    again = restarted.process([_batch(visit, 0)])  # the broker redelivers the batch
    assert again.reads_stored == 0
    restarted.flush()
    stored = storage.passages()
    assert stored["read_count"].tolist() == [len(visit)]
    assert stored["first_at_us"].tolist() == [T0_US]


def test_antenna_headings_from_storage_give_passages_a_direction() -> None:
    storage = MemoryStorage(antenna_headings={"R1": [90.0, 270.0]})
    engine = Engine(storage, gap_s=2.0)
    visit = _visit("A1", "R1", T0_US).assign(antenna=[1] * 10 + [2] * 11)
    engine.process([_batch(visit, 0)])
    engine.flush()
    assert storage.passages()["direction"].tolist() == ["90->270"]
