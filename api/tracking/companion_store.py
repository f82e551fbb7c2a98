"""Companions: tags that passed the same readers as a target tag, close in time, more often
than chance would have them (the SQL of :func:`api.tracking.lookups.companions`)."""

from __future__ import annotations

from collections.abc import Hashable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import psycopg

from api.tracking.dialect_store import on_citus
from api.tracking.values import Companion
from track_engine.companions import SHARED_COLUMNS, score_companions

_EPOCH_US = "(extract(epoch from {col}) * 1000000)::bigint"

# Passages of other tags at the target's readers within the window of one of its passages.
_CO_PASSAGES = f"""
    SELECT q.tag_id, q.reader_id, {_EPOCH_US.format(col="t.closest_at")},
           {_EPOCH_US.format(col="q.closest_at")}
    FROM passages t
    JOIN passages q ON q.reader_id = t.reader_id
     AND q.first_at BETWEEN t.first_at - %(w)s - interval '1 hour' AND t.last_at + %(w)s
     AND abs(extract(epoch FROM q.closest_at - t.closest_at)) <= %(ws)s
    WHERE t.tag_id = %(tag)s AND t.first_at >= %(since)s AND t.first_at < %(until)s
      AND q.tag_id <> %(tag)s"""
# On Citus the self-join on the reader is not on the distribution column, which it refuses
# (it would repartition): the target's passages become a materialized CTE, an intermediate
# result it joins on every shard. (Not on plain PostgreSQL: there the CTE would forbid the
# parallel hash join it picks for a busy reader.)
_CO_PASSAGES_CITUS = f"""
    WITH t AS MATERIALIZED (
        SELECT reader_id, first_at, last_at, closest_at FROM passages
        WHERE tag_id = %(tag)s AND first_at >= %(since)s AND first_at < %(until)s)
    SELECT q.tag_id, q.reader_id, {_EPOCH_US.format(col="t.closest_at")},
           {_EPOCH_US.format(col="q.closest_at")}
    FROM t
    JOIN passages q ON q.reader_id = t.reader_id
     AND q.first_at BETWEEN t.first_at - %(w)s - interval '1 hour' AND t.last_at + %(w)s
     AND abs(extract(epoch FROM q.closest_at - t.closest_at)) <= %(ws)s
    WHERE q.tag_id <> %(tag)s"""


def companions(
    conn: psycopg.Connection,
    *,
    tag_id: str,
    since: datetime,
    until: datetime,
    window_s: float = 10.0,
    min_shared: int = 2,
    limit: int = 20,
) -> list[Companion]:
    """Tags that passed the target's readers within ``window_s`` more than by chance.

    Scored by :func:`track_engine.companions.score_companions`; each comes with its shared
    passages (reader, target's time, companion's time) and its bike when bound.
    """
    if since.tzinfo is None or until.tzinfo is None or until <= since:
        raise ValueError("since and until must be aware and since < until")
    window = timedelta(seconds=window_s)
    target = pd.DataFrame(
        conn.execute(
            "SELECT reader_id, first_at, last_at, closest_at FROM passages "
            "WHERE tag_id = %s AND first_at >= %s AND first_at < %s",
            (tag_id, since, until),
        ).fetchall(),
        columns=["reader_id", "first_at", "last_at", "closest_at"],
    )
    if target.empty:
        return []
    co_rows = conn.execute(
        _CO_PASSAGES_CITUS if on_citus(conn) else _CO_PASSAGES,
        {"w": window, "ws": window_s, "tag": tag_id, "since": since, "until": until},
    ).fetchall()
    co = pd.DataFrame(co_rows, columns=SHARED_COLUMNS)
    candidates = co.groupby("tag_id")["target_at_us"].nunique()
    candidates = candidates[candidates >= min_shared]
    if candidates.empty:
        return []
    readers = sorted(set(target["reader_id"]))
    counts = pd.DataFrame(
        conn.execute(
            """SELECT tag_id, reader_id, count(*) FROM passages
               WHERE tag_id = ANY(%s) AND reader_id = ANY(%s)
                 AND first_at >= %s AND first_at < %s
               GROUP BY tag_id, reader_id""",
            (list(candidates.index), readers, since, until),
        ).fetchall(),
        columns=["tag_id", "reader_id", "passages"],
    )
    scored = score_companions(
        co,
        counts,
        target,
        window_s=window_s,
        duration_s=(until - since).total_seconds(),
        min_shared=min_shared,
    ).head(limit)
    bikes: dict[str, int] = dict(
        conn.execute(
            "SELECT tag_id, bike_id FROM tag_bindings WHERE tag_id = ANY(%s) AND valid @> %s",
            (list(scored["tag_id"]), until),
        ).fetchall()
    )
    return [_companion(rec, co, bikes) for rec in scored.to_dict("records")]


def _companion(rec: dict[Hashable, Any], co: pd.DataFrame, bikes: dict[str, int]) -> Companion:
    tag = str(rec["tag_id"])
    # Ties broken by the other columns: rows come back in no set order (on Citus, by shard).
    mine = co[co["tag_id"] == tag].sort_values(["target_at_us", "companion_at_us", "reader_id"])
    return Companion(
        tag_id=tag,
        bike_id=None if tag not in bikes else int(bikes[tag]),
        shared=int(rec["shared"]),
        readers=int(rec["readers"]),
        expected=float(rec["expected"]),
        score=float(rec["score"]),
        passages=[
            (str(r), _utc(a), _utc(b))
            for r, a, b in zip(
                mine["reader_id"], mine["target_at_us"], mine["companion_at_us"], strict=True
            )
        ],
    )


def _utc(t_us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(t_us))
