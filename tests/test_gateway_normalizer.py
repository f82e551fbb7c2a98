"""The gateway's pure normalization and batching."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reader_gateway.pipeline.normalize import Normalizer
from reader_gateway.protocols.base import TagRead
from reader_gateway.wire import shard_of

T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
T0_US = int(T0.timestamp()) * 1_000_000


def _read(tag: str, at: datetime, *, antenna: int = 1, reader: str | None = None) -> TagRead:
    return TagRead(tag_id=tag, antenna=antenna, rssi_dbm=-60.0, read_at=at, reader_id=reader)


def test_clock_offset_is_removed_and_reader_named() -> None:
    norm = Normalizer("gw", shard_count=1, clock_offsets_s={"R1": 2.5})
    norm.add([_read("AB", T0)], reader_id="R1")
    [(shard, batch)] = norm.take(now_us=0, force=True)
    assert shard == 0
    assert batch.reader_ids().tolist() == ["R1"]
    # The reader's clock runs 2.5 s ahead: true time is 2.5 s earlier.
    assert batch.read_at_us.tolist() == [T0_US - 2_500_000]


def test_repeats_within_window_are_dropped_per_antenna() -> None:
    norm = Normalizer("gw", shard_count=1, dedupe_window_s=0.5)
    at = [T0, T0 + timedelta(seconds=0.2), T0 + timedelta(seconds=0.6)]
    norm.add([_read("AB", t) for t in at], reader_id="R1")
    norm.add([_read("AB", T0, antenna=2)], reader_id="R1")
    [(_, batch)] = norm.take(now_us=0, force=True)
    assert len(batch) == 3
    assert norm.counters.duplicates["R1"] == 1


def test_batches_close_at_size_and_keep_per_reader_sequence() -> None:
    norm = Normalizer("gw", shard_count=1, max_batch_reads=3)
    norm.add([_read(f"{i:04X}", T0 + timedelta(seconds=i)) for i in range(4)], reader_id="R1")
    full = norm.take(now_us=0)
    # Taken once a batch reaches the size, and never more than the size in one batch.
    assert [len(b) for _, b in full] == [3, 1]
    assert [b.seq.tolist() for _, b in full] == [[1, 2, 3], [4]]
    assert [b.batch_seq for _, b in full] == [1, 2]
    assert norm.take(now_us=0, force=True) == []


def test_tags_go_to_their_shard() -> None:
    norm = Normalizer("gw", shard_count=4)
    tags = [f"E2{i:06X}" for i in range(40)]
    norm.add([_read(t, T0) for t in tags], reader_id="R1")
    for shard, batch in norm.take(now_us=0, force=True):
        assert {shard_of(t, 4) for t in batch.tag} == {shard}
