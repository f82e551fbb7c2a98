"""Screening a wire-valid batch: reads outside the engine's window or with unsafe ids are refused
one by one, each counted under one reason, and the rest of the batch is kept."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from reader_gateway.wire import ReadBatch, batch_from_columns
from track_engine.screening import UNBOUNDED, ReadWindow, Refusal, screen

NOW_US = 1_796_000_000_000_000  # 2026-11-29
WINDOW = ReadWindow(max_age_s=86_400.0, max_ahead_s=300.0)


def _batch(times: list[int], readers: list[str]) -> ReadBatch:
    n = len(times)
    return batch_from_columns(
        gateway_id="gw", batch_seq=1, sent_at_us=NOW_US, reader_ids=readers, antenna=[1] * n,
        tag=[f"{i + 1:X}" for i in range(n)], rssi_dbm=[-60.0] * n, read_at_us=times,
        seq=list(range(n)),
    )  # fmt: skip


def test_reads_outside_the_window_are_refused_and_the_rest_kept() -> None:
    times = [NOW_US - 86_400_000_001, NOW_US - 86_400_000_000, NOW_US, NOW_US + 300_000_000,
             NOW_US + 300_000_001, NOW_US + 10**15]  # fmt: skip
    screened = screen(_batch(times, ["R1"] * 6), window=WINDOW, now_us=NOW_US)
    assert screened.batch is not None
    assert screened.batch.read_at_us.tolist() == times[1:4]
    assert screened.refused == {Refusal.TOO_OLD: 1, Refusal.TOO_FAR_AHEAD: 2}
    assert screened.problem is not None
    assert "3 of 6 reads not stored" in screened.problem


def test_a_read_gets_one_reason_the_first_that_applies() -> None:
    times = [NOW_US - 10**12, NOW_US, NOW_US + 10**12]
    screened = screen(_batch(times, ["R\\N"] * 3), window=WINDOW, now_us=NOW_US)
    assert screened.batch is None
    assert screened.refused == {
        Refusal.TOO_OLD: 1, Refusal.TOO_FAR_AHEAD: 1, Refusal.BAD_READER_ID: 1,
    }  # fmt: skip


def test_without_a_window_the_fixed_2000_to_2100_bounds_still_hold() -> None:
    times = [946_684_799_999_999, 946_684_800_000_000, 4_102_444_799_999_999, 4_102_444_800_000_000]
    screened = screen(_batch(times, ["R1"] * 4), window=UNBOUNDED, now_us=NOW_US)
    assert screened.batch is not None
    assert screened.batch.read_at_us.tolist() == times[1:3]
    assert screened.refused == {Refusal.TOO_OLD: 1, Refusal.TOO_FAR_AHEAD: 1}


@given(st.lists(st.integers(min_value=-(10**16), max_value=10**16), max_size=50))
def test_every_read_is_kept_or_counted_once(offsets_us: list[int]) -> None:
    times = [NOW_US + o for o in offsets_us]
    screened = screen(_batch(times, ["R1"] * len(times)), window=WINDOW, now_us=NOW_US)
    kept = 0 if screened.batch is None else len(screened.batch)
    assert kept + sum(screened.refused.values()) == len(times)
    lo, hi = WINDOW.bounds_us(NOW_US)
    assert kept == int(np.sum((np.asarray(times, dtype=np.int64) >= lo) & (np.asarray(times) < hi)))


def test_refused_reader_ids_leave_the_batch_reader_list() -> None:
    # Found by the batch fuzzer: a refused reader id ("R\x00") stayed in the kept batch's
    # reader list, the engine learnt it as a name, and every later COPY failed on its NUL.
    batch = _batch([NOW_US, NOW_US, NOW_US], ["R\x00", "R1", "R2"])
    screened = screen(batch, window=WINDOW, now_us=NOW_US)
    assert screened.batch is not None
    assert screened.batch.readers == ("R1", "R2")
    assert screened.batch.reader_ids().tolist() == ["R1", "R2"]
    assert screened.refused == {Refusal.BAD_READER_ID: 1}
