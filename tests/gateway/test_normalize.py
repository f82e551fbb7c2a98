"""Normalization: de-duplication, clock offset estimation and correction, reader/antenna maps."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from reader_gateway.pipeline.clock import ClockEstimator
from reader_gateway.pipeline.normalize import Normalizer
from reader_gateway.protocols.base import TagRead

T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
T0_US = int(T0.timestamp()) * 1_000_000


def _read(tag: str, at: datetime, antenna: int = 1, reader: str | None = None) -> TagRead:
    return TagRead(tag_id=tag, antenna=antenna, rssi_dbm=-60.0, read_at=at, reader_id=reader)


def test_repeats_within_the_window_of_the_last_kept_read_are_dropped() -> None:
    norm = Normalizer("gw", shard_count=1, dedupe_window_s=1.0)
    times = [0.0, 0.3, 0.9, 1.0, 1.5, 2.2]  # kept: 0.0, 1.0, 2.2
    kept = norm.add([_read("AB", T0 + timedelta(seconds=t)) for t in times], reader_id="R1")
    assert kept == 3
    [(_, batch)] = norm.take(now_us=0, force=True)
    assert [(t - T0_US) / 1e6 for t in batch.read_at_us.tolist()] == [0.0, 1.0, 2.2]
    # Another reader or antenna is another key.
    assert norm.add([_read("AB", T0, reader="R2"), _read("AB", T0, antenna=2, reader="R1")]) == 2


@given(st.lists(st.integers(0, 5_000), min_size=1, max_size=60))
def test_dedupe_keeps_reads_at_least_a_window_apart_and_loses_no_gap(gaps_ms: list[int]) -> None:
    norm = Normalizer("gw", shard_count=1, dedupe_window_s=1.0)
    times = [T0 + timedelta(milliseconds=sum(gaps_ms[: i + 1])) for i in range(len(gaps_ms))]
    norm.add([_read("CD", t) for t in times], reader_id="R1")
    kept = norm.take(now_us=0, force=True)[0][1].read_at_us.tolist()
    assert kept[0] == int(times[0].timestamp() * 1e6)
    assert all(b - a >= 1_000_000 for a, b in itertools.pairwise(kept))
    # Every read is within the window of a kept one (nothing was dropped without cover).
    for t in times:
        us = int(t.timestamp() * 1e6)
        assert any(0 <= us - k < 1_000_000 for k in kept)


def test_clock_offset_is_the_median_and_ignores_outliers() -> None:
    clock = ClockEstimator({"R1": 9.0}, window=32, min_samples=8)
    assert clock.offset_us("R1") == 9_000_000  # surveyed until enough samples
    samples_ms = [2000 - lat for lat in (5, 8, 3, 12, 6, 4, 7, 9, 5, 6)] + [-3_600_000, 90_000]
    for ms in samples_ms:
        clock.observe("R1", ms * 1000)
    assert abs(clock.offset_us("R1") - 1_994_000) <= 2_000
    assert clock.offsets_s()["R1"] == clock.offset_us("R1") / 1e6


def test_normalizer_estimates_a_fast_reader_clock_and_corrects_it() -> None:
    clock = ClockEstimator(window=16, min_samples=4)
    norm = Normalizer("gw", shard_count=1, clock=clock)
    skew = timedelta(seconds=3.5)  # the reader's clock runs 3.5 s fast
    for i in range(10):
        true_at = T0 + timedelta(seconds=i)
        received = true_at + timedelta(milliseconds=20)
        norm.add([_read("EF", true_at + skew)], reader_id="R9", received_at=received)
    [(_, batch)] = norm.take(now_us=0, force=True)
    corrected = batch.read_at_us.tolist()[-1]
    true_us = T0_US + 9_000_000
    assert abs(corrected - true_us) <= 25_000  # within the transmission latency
    assert abs(clock.offset_us("R9") - 3_480_000) <= 1_000


def test_reader_aliases_and_antenna_map() -> None:
    norm = Normalizer("gw", shard_count=1, reader_aliases={"AT-00000007": "R0107"})
    norm.add([_read("AB", T0, antenna=1, reader="AT-00000007")], antenna_map={1: 3})
    [(_, batch)] = norm.take(now_us=0, force=True, first_batch_seq=41)
    assert batch.reader_ids().tolist() == ["R0107"]
    assert batch.antenna.tolist() == [3]
    assert batch.batch_seq == 41
