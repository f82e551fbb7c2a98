"""Passages close on the engine's clock in a quiet city, and late reads merge into them.

The engine core (:class:`track_engine.pipeline.Engine`) on the real PostgreSQL, with its wall
clock injected: :meth:`Engine.tick` runs event time on with the clock while no read arrives,
and a read arriving after its passage was stored (within the allowed lateness) is folded into
that passage instead of beside it. The end-to-end versions (broker, consumer, API) are in
tests/http_api/test_passages_on_time.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reader_gateway.wire import ReadBatch, batch_from_columns
from track_engine.passages import fold_passages
from track_engine.pipeline import Engine

T0_US = 1_764_396_000_000_000  # 2025-11-29T06:00:00Z
US = 1_000_000
GAP_S = 10.0


def _batch(reads: pd.DataFrame, seq: int) -> ReadBatch:
    return batch_from_columns(
        gateway_id="gw-late", batch_seq=seq, sent_at_us=T0_US,
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


def _stored(conn: psycopg.Connection) -> pd.DataFrame:
    rows = conn.execute(
        """SELECT tag_id, reader_id,
                  (extract(epoch from first_at) * 1000000)::bigint,
                  (extract(epoch from last_at) * 1000000)::bigint,
                  (extract(epoch from closest_at) * 1000000)::bigint, read_count
           FROM passages ORDER BY 1, 2, 3"""
    ).fetchall()
    return pd.DataFrame(
        rows,
        columns=["tag_id", "reader_id", "first_at_us", "last_at_us", "closest_at_us", "n"],
    )


class Clock:
    """The engine's wall clock, moved by the test."""

    def __init__(self, now_us: int) -> None:
        self.now_us = now_us

    def __call__(self) -> int:
        return self.now_us


def test_tick_stores_a_quiet_passage_once_the_gap_has_passed_on_the_clock(db_url: str) -> None:
    visit = _visit("A1", "R1", T0_US)  # 0-4 s; the bike leaves at T0 + 4 s
    left_us = int(visit["read_at_us"].max())
    clock = Clock(left_us + 200_000)  # the batch arrives 0.2 s later (the gateway's batching)
    with psycopg.connect(db_url) as conn:
        engine = Engine(conn, gap_s=GAP_S, wall_clock_us=clock, idle_skew_s=2.0)
        engine.process([_batch(visit, 1)])
        # Nothing else is heard. Within the gap (plus the skew) the passage stays open.
        clock.now_us = left_us + round((GAP_S + 1.5) * US)
        assert engine.tick() == 0
        assert _stored(conn).empty
        # Past gap + skew on the clock it is stored, although no later read came.
        clock.now_us = left_us + round((GAP_S + 2.8) * US)
        assert engine.tick() == 1
        stored = _stored(conn)
        want = fold_passages(visit, gap_s=GAP_S)
        assert stored["n"].tolist() == [21]
        assert stored["closest_at_us"].tolist() == want["closest_at_us"].tolist()


def test_tick_follows_elapsed_time_so_a_replay_pause_closes_nothing_early(db_url: str) -> None:
    # Reads from an hour ago (a replay, a gateway's spool): the clock is an hour ahead of
    # them. A 3 s pause must move event time on by those 3 s less the skew, not by an hour.
    clock = Clock(T0_US + 3600 * US)
    with psycopg.connect(db_url) as conn:
        engine = Engine(conn, gap_s=GAP_S, wall_clock_us=clock, idle_skew_s=2.0)
        engine.process([_batch(_visit("A1", "R1", T0_US), 1)])
        clock.now_us += 3 * US
        assert engine.tick() == 0
        assert engine.watermark_us == T0_US + 4 * US + 1 * US
        # The replay goes on after the pause: the same visit, one passage.
        engine.process([_batch(_visit("A1", "R1", T0_US + 4_200_000), 2)])
        engine.flush()
        assert _stored(conn)["n"].tolist() == [42]


def test_tick_never_runs_event_time_past_the_clock(db_url: str) -> None:
    # A reader whose clock runs 50 s ahead (within max_future_s) carries the watermark with
    # its reads; a quiet spell must not carry it on any further from there.
    clock = Clock(T0_US)
    with psycopg.connect(db_url) as conn:
        engine = Engine(conn, gap_s=GAP_S, wall_clock_us=clock, max_future_s=60.0)
        engine.process([_batch(_visit("A1", "R9", T0_US + 50 * US, n=3), 1)])
        assert engine.watermark_us == T0_US + 50_400_000
        clock.now_us += 5 * US
        engine.tick()
        assert engine.watermark_us == T0_US + 50_400_000


def test_a_batch_arriving_after_its_passage_was_stored_merges_into_it(db_url: str) -> None:
    visit = _visit("A1", "R1", T0_US, n=40)  # 0-7.8 s
    middle = visit["read_at_us"].between(T0_US + 3 * US, T0_US + 6 * US)
    early_late = visit[~middle]
    late = visit[middle]
    with psycopg.connect(db_url) as conn:
        engine = Engine(conn, gap_s=2.0, allowed_lateness_s=120.0)
        engine.process([_batch(early_late, 1)])
        # Other traffic moves event time 90 s on: the visit's passages are stored by then.
        engine.process([_batch(_visit("B2", "R2", T0_US + 90 * US), 2)])
        before = _stored(conn)
        assert before[before["tag_id"] == "A1"]["n"].sum() == len(early_late)
        # The middle batch comes 90 s late (redelivered after the broker's ack wait).
        engine.process([_batch(late, 3)])
        engine.process([_batch(_visit("B2", "R2", T0_US + 100 * US), 4)])
        after = _stored(conn)
        # ...and again (a second redelivery, its reads stored already): no count changes.
        engine.process([_batch(late, 5)])
        engine.process([_batch(early_late, 6)])
        engine.process([_batch(_visit("B2", "R2", T0_US + 110 * US), 7)])
        again = _stored(conn)
    a1 = after[after["tag_id"] == "A1"]
    want = fold_passages(visit, gap_s=2.0)
    assert len(before[before["tag_id"] == "A1"]) == 2  # the hole was wider than the gap
    assert a1["n"].tolist() == [len(visit)]
    assert a1["first_at_us"].tolist() == want["first_at_us"].tolist()
    assert a1["last_at_us"].tolist() == want["last_at_us"].tolist()
    assert a1["closest_at_us"].tolist() == want["closest_at_us"].tolist()  # refitted
    pd.testing.assert_frame_equal(again[again["tag_id"] == "A1"], a1)


def test_reads_later_than_the_allowed_lateness_start_a_passage_of_their_own(
    db_url: str,
) -> None:
    visit = _visit("A1", "R1", T0_US, n=40)
    late = visit.iloc[20:]
    with psycopg.connect(db_url) as conn:
        engine = Engine(conn, gap_s=2.0, allowed_lateness_s=30.0)
        engine.process([_batch(visit.iloc[:20], 1)])
        engine.process([_batch(_visit("B2", "R2", T0_US + 60 * US), 2)])
        engine.process([_batch(late, 3)])
        engine.flush()
        stored = _stored(conn)
    assert stored[stored["tag_id"] == "A1"]["n"].tolist() == [20, 20]


reads_strategy = st.lists(
    st.tuples(
        st.sampled_from(["A1", "B2", "C3"]),
        st.sampled_from(["R1", "R2"]),
        st.integers(1, 2),
        st.integers(-90, -30),
        st.integers(0, 240 * 10),  # tenths of a second over 4 minutes
    ),
    min_size=1,
    max_size=120,
    unique_by=lambda r: (r[0], r[1], r[2], r[4]),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=reads_strategy,
    batch_size=st.integers(1, 40),
    seed=st.integers(0, 2**16),
    redeliver=st.integers(0, 3),
)
def test_micro_batches_in_any_order_store_what_one_fold_over_every_read_gives(
    db_url: str,
    rows: list[tuple[str, str, int, int, int]],
    batch_size: int,
    seed: int,
    redeliver: int,
) -> None:
    reads = pd.DataFrame(rows, columns=["tag_id", "reader_id", "antenna", "rssi_dbm", "t"])
    reads["read_at_us"] = T0_US + reads.pop("t") * 100_000
    reads["rssi_dbm"] = reads["rssi_dbm"].astype(float)
    chunks = [reads.iloc[i : i + batch_size] for i in range(0, len(reads), batch_size)]
    rng = np.random.default_rng(seed)
    # Every lateness within the allowed one, and a few batches delivered twice.
    order = [int(i) for i in rng.permutation(len(chunks))]
    order += [int(i) for i in rng.integers(0, len(chunks), size=redeliver)]
    with psycopg.connect(db_url) as conn:
        conn.execute("TRUNCATE reads, passages")
        conn.commit()
        engine = Engine(conn, gap_s=10.0, max_passage_s=10_000.0, allowed_lateness_s=600.0)
        for n, i in enumerate(order):
            engine.process([_batch(chunks[i], n)])
        engine.flush()
        got = _stored(conn)
    want = fold_passages(reads, gap_s=10.0)
    want = want.sort_values(["tag_id", "reader_id", "first_at_us"]).reset_index(drop=True)
    assert got["n"].sum() == len(reads)
    pd.testing.assert_frame_equal(
        got.drop(columns="n"),
        want[["tag_id", "reader_id", "first_at_us", "last_at_us", "closest_at_us"]],
        check_dtype=False,
    )


def test_after_a_restart_a_late_batch_still_merges_and_a_repeat_changes_nothing(
    db_url: str,
) -> None:
    visit = _visit("A1", "R1", T0_US, n=40)  # 0-7.8 s
    middle = visit["read_at_us"].between(T0_US + 3 * US, T0_US + 6 * US)
    parked = _visit("P9", "R3", T0_US + 50 * US, n=10)  # still open when the engine dies
    with psycopg.connect(db_url) as conn:
        engine = Engine(conn, gap_s=2.0)
        engine.process([_batch(visit[~middle], 1)])
        engine.process([_batch(_visit("B2", "R2", T0_US + 40 * US), 2)])
        engine.process([_batch(parked, 3)])
        assert _stored(conn)[lambda f: f["tag_id"] == "A1"]["n"].tolist() == [15, 9]
        # The engine dies here: no flush, P9's passage only exists as reads.
    with psycopg.connect(db_url) as conn:
        engine = Engine(conn, gap_s=2.0)  # recovers the stored reads of the last 124 s
        engine.process([_batch(visit[middle], 4)])  # redelivered after the restart
        engine.process([_batch(visit[~middle], 5)])  # and a batch stored before the crash
        engine.process([_batch(_visit("B2", "R2", T0_US + 70 * US), 6)])
        stored = _stored(conn)
    want = fold_passages(pd.concat([visit, parked]), gap_s=2.0)
    got = stored[stored["tag_id"].isin(["A1", "P9"])].reset_index(drop=True)
    assert got["n"].tolist() == [40, 10]
    assert got["closest_at_us"].tolist() == want["closest_at_us"].tolist()
