"""The live engine's incremental folding stores exactly what one fold over all reads gives.

The engine folds only the (tag, reader) groups that can close, sweeps busy groups every 30 s
of event time and evicts passages longer than ``max_passage_s``; whatever order the reads come
in, after a flush the stored passages must equal :func:`fold_passages` over every read (with
eviction out of reach), and a parked tag must not make every fold cost its reads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reader_gateway.wire import ReadBatch, batch_from_columns
from track_engine.core import folding
from track_engine.passages import Fold, fold_coded, fold_passages
from track_engine.pipeline import Engine

T0_US = 1_764_396_000_000_000
US = 1_000_000


def _batch(reads: pd.DataFrame, seq: int) -> ReadBatch:
    return batch_from_columns(
        gateway_id="gw-fold", batch_seq=seq, sent_at_us=T0_US,
        reader_ids=reads["reader_id"].tolist(), antenna=reads["antenna"].tolist(),
        tag=reads["tag_id"].tolist(), rssi_dbm=reads["rssi_dbm"].tolist(),
        read_at_us=reads["read_at_us"].tolist(), seq=list(range(len(reads))),
    )  # fmt: skip


def _stored(conn: psycopg.Connection) -> pd.DataFrame:
    rows = conn.execute(
        """SELECT tag_id, reader_id,
                  (extract(epoch from first_at) * 1000000)::bigint,
                  (extract(epoch from last_at) * 1000000)::bigint,
                  (extract(epoch from closest_at) * 1000000)::bigint, read_count
           FROM passages ORDER BY 1, 2, 3"""
    ).fetchall()
    return pd.DataFrame(
        rows, columns=["tag_id", "reader_id", "first_at_us", "last_at_us", "closest_at_us", "n"]
    )


reads_strategy = st.lists(
    st.tuples(
        st.sampled_from(["A1", "B2", "C3", "D4"]),
        st.sampled_from(["R1", "R2", "R3"]),
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
    piece=st.sampled_from([3, 1_000_000]),
)
def test_incremental_folding_equals_one_fold_over_every_read(
    db_url: str, rows: list[tuple[str, str, int, int, int]], batch_size: int, seed: int, piece: int
) -> None:
    reads = pd.DataFrame(rows, columns=["tag_id", "reader_id", "antenna", "rssi_dbm", "t"])
    reads["read_at_us"] = T0_US + reads.pop("t") * 100_000
    reads["rssi_dbm"] = reads["rssi_dbm"].astype(float)
    # Micro-batches in time order, each shuffled inside. (Reads later than one passage gap
    # behind the watermark may legitimately start a passage of their own; not tested here.)
    reads = reads.sort_values("read_at_us", kind="stable").reset_index(drop=True)
    chunks = [
        reads.iloc[i : i + batch_size].sample(frac=1.0, random_state=seed)
        for i in range(0, len(reads), batch_size)
    ]
    with psycopg.connect(db_url) as conn:
        conn.execute("TRUNCATE reads, passages")
        conn.commit()
        engine = Engine(conn, gap_s=10.0, max_passage_s=10_000.0)
        engine.max_fold_reads = piece  # 3: every fold in pieces of whole groups
        for n, chunk in enumerate(chunks):
            engine.process([_batch(chunk, n)])
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


def test_a_parked_tag_is_folded_only_on_sweeps_and_a_returning_tag_closes(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    folded: list[int] = []

    def counting_fold(*args: Any, **kwargs: Any) -> Fold:
        folded.append(len(args[0]))
        return fold_coded(*args, **kwargs)

    monkeypatch.setattr(folding, "fold_coded", counting_fold)
    with psycopg.connect(db_url) as conn:
        engine = Engine(conn, gap_s=10.0, max_passage_s=300.0)
        # PARK is heard every second at R1 for 100 s; AWAY passes R2 at 0-4 s and again at
        # 40-44 s (it left and came back: its first passage closed while the group is busy).
        for s in range(100):
            tags, readers = ["PA00"], ["R1"]
            if s < 5 or 40 <= s < 45:
                tags.append("AA00")
                readers.append("R2")
            frame = pd.DataFrame(
                {"tag_id": tags, "reader_id": readers, "antenna": 1, "rssi_dbm": -60.0,
                 "read_at_us": T0_US + s * US}
            )  # fmt: skip
            engine.process([_batch(frame, s)])
            if s == 35:  # AWAY's first passage closed in a quiet group: stored by now
                assert conn.execute(
                    "SELECT count(*) FROM passages WHERE tag_id = 'AA00'"
                ).fetchone() == (1,)
        # The parked tag's passage is still open: nothing stored for it.
        assert conn.execute("SELECT count(*) FROM passages WHERE tag_id = 'PA00'").fetchone() == (
            0,
        )
        # Folds come every 2 s of event time; refolding the parked group at each would have
        # cost ~2,400 reads. Only quiet groups and the 30 s sweeps reach fold_coded.
        assert sum(folded) < 400, folded
        engine.flush()
        stored = _stored(conn)
    assert stored[stored["tag_id"] == "PA00"]["n"].tolist() == [100]
    assert stored[stored["tag_id"] == "AA00"]["n"].tolist() == [5, 5]
    assert np.all(stored["first_at_us"] <= stored["closest_at_us"])
