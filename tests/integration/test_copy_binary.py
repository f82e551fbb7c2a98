"""Binary COPY built with numpy: PostgreSQL stores exactly the values it was given.

Rows of several text-length layouts (tag ids of different lengths, empty and non-ASCII names),
every column type the engine writes, timestamps before and after PostgreSQL's 2000 epoch;
read back from a real table and compared value by value.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from track_engine.db.copy_binary import (
    HEADER,
    TRAILER,
    Fixed,
    PlainText,
    Text,
    Timestamp,
    copy_binary,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAMES = ["R0001", "", "Zürich-Ost-3", "AT-0000ABCD"]

_row = st.tuples(
    st.text("0123456789ABCDEF", min_size=1, max_size=24),  # tag
    st.integers(-(2**50), 2**52),  # µs since 1970
    st.integers(0, len(_NAMES) - 1),  # reader name code
    st.integers(-(2**15), 2**15 - 1),  # smallint
    st.floats(-1000, 1000, width=32),  # real
    st.integers(-(2**63), 2**63 - 1),  # bigint
)


def _objects(values: list[str]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


@pytest.fixture
def table(db_url: str) -> str:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE cb (tag text, at timestamptz, reader text, a smallint, r real, s bigint)"
        )
    return db_url


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(_row, max_size=60))
def test_every_value_comes_back_as_written(table: str, rows: list[tuple]) -> None:
    data = copy_binary(
        [
            PlainText(_objects([r[0] for r in rows])),
            Timestamp(np.array([r[1] for r in rows], dtype=np.int64)),
            Text(np.array([r[2] for r in rows], dtype=np.int32), _NAMES),
            Fixed(np.array([r[3] for r in rows], dtype=">i2"), ">i2"),
            Fixed(np.array([r[4] for r in rows], dtype=">f4"), ">f4"),
            Fixed(np.array([r[5] for r in rows], dtype=">i8"), ">i8"),
        ]
    )
    with psycopg.connect(table, autocommit=True) as conn:
        conn.execute("TRUNCATE cb")
        with conn.cursor() as cur, cur.copy("COPY cb FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(data)
        got = conn.execute("SELECT tag, at, reader, a, r::float8, s FROM cb").fetchall()
    want = [
        (tag, _EPOCH + timedelta(microseconds=at), _NAMES[code], a, r, s)
        for tag, at, code, a, r, s in rows
    ]
    assert sorted(got) == sorted(want)  # groups of one layout are written together


def test_no_rows_is_header_and_trailer_only() -> None:
    empty = np.array([], dtype=np.int64)
    assert copy_binary([Timestamp(empty), PlainText(_objects([]))]) == HEADER + TRAILER


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="different lengths"):
        copy_binary([Timestamp(np.zeros(2, np.int64)), PlainText(_objects(["A"]))])
