"""Where tags went after a reader: the history the next-readers answer blends with the road
model (:mod:`api.tracking.prediction`), counted in one statement.

For the reader of the bike's last sighting, the newest departures of the 30 days before it
(at most ``_HISTORY_DEPARTURES``): each one's next passage at another reader within 30
minutes, and the passage before it at another reader within 30 minutes. Counted by next
reader: all departures, those that came from the bike's own previous reader (found in the same
statement), the bike's own tag's, and the 10th/50th/90th percentile of travel time. One more
index probe per departure than the plain count (the previous passage), on the same
(tag, first_at) key.

The bike's own tag counts only since its custody began: since the tag was bound to this bike,
and since the bike's latest theft (or the recovery that ended it) before the sighting. A stolen
bike's owner's rides say nothing about where the thief goes next, as the bike's own departures
or among the fleet's (the personal way prior is cut at the theft the same way).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from api.tracking.caches import caches_of
from api.tracking.prediction import HasReaderPaths, predict_next_readers
from api.tracking.store import Lookup, last_seen
from api.tracking.values import LastSeen, NextReader
from track_engine.next_readers import Departures, TravelTimes

Row = tuple[Any, ...]

# A passage further away than this is another trip, not a transition.
_TRANSITION_MAX = timedelta(minutes=30)
# History looked at, and how many departures at most.
_HISTORY = timedelta(days=30)
_HISTORY_DEPARTURES = 5000

# The bike's previous reader (``me``) always comes back, in a row of its own when the reader has
# no departures at all (the road model still wants the heading).
_COUNT = """
    SELECT (SELECT reader_id FROM me), agg.next_reader, agg.n, agg.heading_n, agg.own_n, agg.q
    FROM (SELECT 1) one LEFT JOIN (
        SELECT next_reader, count(*) AS n,
               count(*) FILTER (WHERE prev_reader = (SELECT reader_id FROM me)) AS heading_n,
               count(*) FILTER (WHERE tag_id = %(tag)s) AS own_n,
               percentile_cont(ARRAY[0.1, 0.5, 0.9]) WITHIN GROUP (ORDER BY travel) AS q
        FROM d GROUP BY next_reader) agg ON true
    ORDER BY agg.n DESC NULLS LAST, agg.next_reader"""
_ME = """
    custody AS (
        SELECT coalesce(greatest(lower(b.valid), (
                   SELECT max(CASE WHEN t.recovered_at <= %(before)s THEN t.recovered_at
                                   ELSE t.stolen_at END)
                   FROM thefts t WHERE t.bike_id = b.bike_id AND t.stolen_at <= %(before)s)),
               '-infinity') AS since
        FROM (SELECT 1) one LEFT JOIN tag_bindings b
          ON b.tag_id = %(tag)s AND b.valid @> %(before)s::timestamptz),
    me AS (SELECT q.reader_id FROM passages q
           WHERE q.tag_id = %(tag)s AND q.first_at >= %(before)s - %(gap)s
             AND q.first_at < %(before)s AND q.closest_at < %(before)s AND q.reader_id <> %(r)s
           ORDER BY q.first_at DESC LIMIT 1),
    p AS (SELECT tag_id, first_at, closest_at FROM passages
          WHERE reader_id = %(r)s AND first_at >= %(since)s AND first_at < %(before)s
          ORDER BY first_at DESC LIMIT {limit})"""
_DEPARTURES = f"""
    WITH {_ME.format(limit=_HISTORY_DEPARTURES)},
    d AS (
        SELECT p.tag_id, nx.reader_id AS next_reader, pv.reader_id AS prev_reader,
               extract(epoch FROM nx.closest_at - p.closest_at) AS travel
        FROM p
        CROSS JOIN LATERAL (
            SELECT q.reader_id, q.closest_at FROM passages q
            WHERE q.tag_id = p.tag_id AND q.first_at > p.first_at
              AND q.first_at < p.first_at + %(gap)s
            ORDER BY q.first_at LIMIT 1) nx
        LEFT JOIN LATERAL (
            SELECT q.reader_id FROM passages q
            WHERE q.tag_id = p.tag_id AND q.first_at < p.first_at
              AND q.first_at > p.first_at - %(gap)s AND q.reader_id <> %(r)s
            ORDER BY q.first_at DESC LIMIT 1) pv ON true
        WHERE nx.reader_id <> %(r)s
          AND (p.tag_id <> %(tag)s OR p.first_at >= (SELECT since FROM custody)))
    {_COUNT}"""
# On Citus (no LATERAL … LIMIT over the departures' intermediate result): each departure's
# next and previous passages by DISTINCT ON, which each shard answers for its tags.
_DEPARTURES_CITUS = f"""
    WITH {_ME.format(limit=_HISTORY_DEPARTURES)},
    nx AS (
        SELECT DISTINCT ON (p.tag_id, p.first_at) p.tag_id, p.first_at, q.reader_id,
               extract(epoch FROM q.closest_at - p.closest_at) AS travel
        FROM p JOIN passages q ON q.tag_id = p.tag_id AND q.first_at > p.first_at
         AND q.first_at < p.first_at + %(gap)s
        ORDER BY p.tag_id, p.first_at, q.first_at),
    pv AS (
        SELECT DISTINCT ON (p.tag_id, p.first_at) p.tag_id, p.first_at, q.reader_id
        FROM p JOIN passages q ON q.tag_id = p.tag_id AND q.first_at < p.first_at
         AND q.first_at > p.first_at - %(gap)s AND q.reader_id <> %(r)s
        ORDER BY p.tag_id, p.first_at, q.first_at DESC),
    d AS (
        SELECT nx.tag_id, nx.reader_id AS next_reader, pv.reader_id AS prev_reader, nx.travel
        FROM nx LEFT JOIN pv ON pv.tag_id = nx.tag_id AND pv.first_at = nx.first_at
        WHERE nx.reader_id <> %(r)s
          AND (nx.tag_id <> %(tag)s OR nx.first_at >= (SELECT since FROM custody)))
    {_COUNT}"""


def _departures_of(rows: list[Row]) -> Departures:
    previous = str(rows[0][0]) if rows and rows[0][0] is not None else ""
    fleet: dict[str, int] = {}
    heading: dict[str, int] = {}
    own: dict[str, int] = {}
    travel: dict[str, TravelTimes] = {}
    for _, reader, n, heading_n, own_n, q in rows:
        if reader is None:  # the reader has no departures: only the previous reader came back
            continue
        r = str(reader)
        fleet[r] = int(n)
        if heading_n:
            heading[r] = int(heading_n)
        if own_n:
            own[r] = int(own_n)
        travel[r] = TravelTimes(int(n), float(q[0]), float(q[1]), float(q[2]))
    return Departures(
        previous_reader=previous, fleet=fleet, heading=heading, own=own, travel=travel
    )


def departures(tag_id: str, reader_id: str, before: datetime) -> Lookup[Departures]:
    """What the history says about leaving ``reader_id``, for ``tag_id`` last seen there at
    ``before`` (see the module docstring)."""
    params = {
        "tag": tag_id, "r": reader_id, "since": before - _HISTORY, "before": before,
        "gap": _TRANSITION_MAX,
    }  # fmt: skip
    return Lookup(_DEPARTURES, params, _departures_of, citus=_DEPARTURES_CITUS)


def next_readers(
    conn: psycopg.Connection,
    *,
    bike_id: int,
    network: HasReaderPaths,
    limit: int = 5,
    seen: LastSeen | None = None,
) -> list[NextReader]:
    """Likely next readers after the bike's last passage, most probable first
    (:func:`api.tracking.prediction.predict_next_readers` on :func:`departures`, kept in the
    network's caches, :mod:`api.tracking.caches`). ``seen``: the bike's
    :func:`api.tracking.store.last_seen`, when the caller has it already."""
    seen = seen or last_seen(conn, bike_id=bike_id)
    if seen is None:
        return []
    history = caches_of(network).departures.get(
        (seen.tag_id, seen.reader_id, seen.at),
        lambda: departures(seen.tag_id, seen.reader_id, seen.at).run(conn),
    )
    return predict_next_readers(network, seen, history, limit)
