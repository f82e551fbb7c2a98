"""Binary COPY built with numpy: PostgreSQL stores exactly the values it was given.

Rows of several text-length layouts (tag ids of different lengths, empty and non-ASCII names),
every column type the engine writes, timestamps before and after PostgreSQL's 2000 epoch;
read back from a real table and compared value by value. Any text PostgreSQL can hold comes
back unchanged in either text column kind; text it cannot hold (NUL, lone surrogates), values
that are not ``str`` and dictionary codes outside the names are refused, never stored changed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from track_engine.db.copy_binary import (
    HEADER,
    TRAILER,
    CopyValueError,
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


# Any text PostgreSQL can hold: every code point but NUL and the surrogates (no UTF-8 form).
_storable = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=8)
# Hex ids beside multi-byte text, so that values of one character length but different byte
# lengths (and the reverse) meet in one COPY.
_any_id = st.one_of(st.text("0123456789ABCDEF", max_size=8), _storable)
_unstorable = st.one_of(
    st.tuples(_storable, _storable).map(lambda t: t[0] + "\x00" + t[1]),  # NUL, also last
    st.tuples(_storable, st.characters(categories=["Cs"])).map("".join),  # a lone surrogate
    st.integers(),
    st.binary(max_size=6),
    st.none(),
)


@pytest.fixture
def table(db_url: str) -> str:
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute("SHOW server_encoding").fetchone() == ("UTF8",)
        conn.execute(
            "CREATE TABLE cb (tag text, at timestamptz, reader text, a smallint, r real, s bigint)"
        )
        conn.execute("CREATE TABLE ids (tag text, reader text)")
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


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    tags=st.lists(_any_id, max_size=30),
    names=st.lists(_any_id, min_size=1, max_size=6, unique=True),
    data=st.data(),
)
@example(tags=["É", "AB", "日本", "😀\u0301", ""], names=["Zürich-Ost-3", "R1", "ß"], data=None)
def test_any_storable_text_comes_back_unchanged(
    table: str, tags: list[str], names: list[str], data: st.DataObject | None
) -> None:
    if data is None:
        codes = [i % len(names) for i in range(len(tags))]
    else:
        pick = st.integers(0, len(names) - 1)
        codes = data.draw(st.lists(pick, min_size=len(tags), max_size=len(tags)))
    payload = copy_binary([PlainText(_objects(tags)), Text(np.array(codes, np.int32), names)])
    with psycopg.connect(table, autocommit=True) as conn:
        conn.execute("TRUNCATE ids")
        with conn.cursor() as cur, cur.copy("COPY ids FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(payload)
        got = conn.execute(
            "SELECT tag, reader, octet_length(tag), octet_length(reader) FROM ids"
        ).fetchall()
    want = [
        (t, names[c], len(t.encode()), len(names[c].encode()))
        for t, c in zip(tags, codes, strict=True)
    ]
    assert sorted(got) == sorted(want)


@settings(max_examples=80, deadline=None)
@given(
    good=st.lists(_any_id, max_size=8),
    bad=_unstorable,
    where=st.integers(0, 8),
    as_name=st.booleans(),
)
@example(good=["ABC"], bad="ABC\x00", where=1, as_name=False)  # was stored as "ABC"
@example(good=["ABC"], bad=12, where=0, as_name=False)  # was stored as "12"
def test_text_that_cannot_be_stored_unchanged_is_refused(
    good: list[str], bad: object, where: int, as_name: bool
) -> None:
    values = [*good[:where], bad, *good[where:]]
    column = (
        Text(np.arange(len(values), dtype=np.int32), values)  # type: ignore[arg-type]
        if as_name
        else PlainText(_objects(values))  # type: ignore[arg-type]
    )
    with pytest.raises(CopyValueError, match=r"NUL|UTF-8|not str"):
        copy_binary([Timestamp(np.zeros(len(values), np.int64)), column])


@pytest.mark.parametrize("code", [-1, 2])
def test_dictionary_codes_outside_the_names_are_refused(code: int) -> None:
    # pandas.factorize gives -1 for a missing value: it must not become the last name.
    with pytest.raises(CopyValueError, match=f"dictionary code {code} "):
        copy_binary([Text(np.array([0, code, 1], np.int32), ["R1", "R2"])])
