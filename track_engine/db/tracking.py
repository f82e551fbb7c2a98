"""Read-side queries for following a bike: last seen, likely next readers, companions.

Re-exported by :mod:`track_engine.db.queries`, the API's one door to SQL. Times come back as
aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np
import pandas as pd
import psycopg

from track_engine.companions import SHARED_COLUMNS, score_companions
from track_engine.roads import ReaderPaths

_EPOCH_US = "(extract(epoch from {col}) * 1000000)::bigint"
# A next passage further away than this is another trip, not a transition.
_TRANSITION_MAX = timedelta(minutes=30)
# History looked at for reader-to-reader transitions, and how many departures at most.
_HISTORY = timedelta(days=30)
_HISTORY_DEPARTURES = 5000
# Fewer departures than this and the road graph fills in the rest.
_MIN_TRANSITIONS = 5
_TYPICAL_SPEED_MPS = 4.5


class HasReaderPaths(Protocol):
    """Whatever holds the loaded network: the API's ``LoadedNetwork`` fits."""

    @property
    def reader_paths(self) -> ReaderPaths: ...


@dataclass(frozen=True, slots=True)
class LastSeen:
    """Where and when a bike was last heard."""

    tag_id: str
    reader_id: str
    at: datetime
    lon: float | None
    lat: float | None
    source: str  # "passage" (closed passage, closest approach) or "read" (newest raw read)


@dataclass(frozen=True, slots=True)
class NextReader:
    """A reader the bike will likely pass next, with the estimated time of arrival."""

    reader_id: str
    probability: float
    eta: datetime
    travel_s: float
    distance_m: float
    source: str  # "history" (transitions seen at this reader) or "road" (graph neighbours)


@dataclass(frozen=True, slots=True)
class Companion:
    """A tag that passed the same readers as the target, together, more often than chance."""

    tag_id: str
    bike_id: int | None
    shared: int
    readers: int
    expected: float
    score: float
    passages: list[tuple[str, datetime, datetime]] = field(default_factory=list)


def last_seen(conn: psycopg.Connection, *, bike_id: int) -> LastSeen | None:
    """The newest sighting of any tag bound to the bike (raw reads beat a closed passage)."""
    row = conn.execute(
        """WITH tags AS (SELECT tag_id, valid FROM tag_bindings WHERE bike_id = %s)
           SELECT * FROM (
             (SELECT p.tag_id, p.reader_id, p.closest_at AS at, 'passage' AS source
              FROM passages p JOIN tags t ON t.tag_id = p.tag_id AND p.closest_at <@ t.valid
              ORDER BY p.first_at DESC LIMIT 1)
             UNION ALL
             (SELECT r.tag_id, r.reader_id, r.read_at AS at, 'read' AS source
              FROM reads r JOIN tags t ON t.tag_id = r.tag_id AND r.read_at <@ t.valid
              ORDER BY r.read_at DESC LIMIT 1)) s
           ORDER BY at DESC, source LIMIT 1""",
        (bike_id,),
    ).fetchone()
    if row is None:
        return None
    where = conn.execute("SELECT lon, lat FROM readers WHERE reader_id = %s", (row[1],)).fetchone()
    return LastSeen(
        tag_id=str(row[0]),
        reader_id=str(row[1]),
        at=row[2].astimezone(UTC),
        lon=None if where is None else float(where[0]),
        lat=None if where is None else float(where[1]),
        source=str(row[3]),
    )


def next_readers(
    conn: psycopg.Connection, *, bike_id: int, network: HasReaderPaths, limit: int = 5
) -> list[NextReader]:
    """Likely next readers after the bike's last passage, most probable first.

    From history: where tags that passed the same reader went next (within 30 minutes), with
    the median travel time. When the reader has little history the nearest readers by road
    fill the list, at a typical e-bike speed, weighted by closeness.
    """
    seen = last_seen(conn, bike_id=bike_id)
    if seen is None:
        return []
    history = _transitions(conn, seen.reader_id, seen.at)
    out: list[NextReader] = []
    total = int(history["n"].sum()) if not history.empty else 0
    if total >= _MIN_TRANSITIONS:
        for rid, n, travel_s in history.head(limit).itertuples(index=False):
            out.append(
                NextReader(
                    reader_id=str(rid),
                    probability=float(n) / total,
                    eta=seen.at + timedelta(seconds=float(travel_s)),
                    travel_s=float(travel_s),
                    distance_m=_distance(network.reader_paths, seen.reader_id, str(rid)),
                    source="history",
                )
            )
    if len(out) < limit:
        known = {n.reader_id for n in out}
        left = max(1.0 - sum(n.probability for n in out), 0.0)
        out += _road_neighbours(network.reader_paths, seen, limit - len(out), known, left)
    return out


def _transitions(conn: psycopg.Connection, reader_id: str, before: datetime) -> pd.DataFrame:
    rows = conn.execute(
        f"""SELECT nx.reader_id, count(*) AS n,
                   percentile_cont(0.5) WITHIN GROUP (
                       ORDER BY extract(epoch FROM nx.closest_at - p.closest_at)) AS travel_s
            FROM (SELECT tag_id, first_at, closest_at FROM passages
                  WHERE reader_id = %(r)s AND first_at >= %(since)s AND first_at < %(before)s
                  ORDER BY first_at DESC LIMIT {_HISTORY_DEPARTURES}) p
            CROSS JOIN LATERAL (
                SELECT q.reader_id, q.closest_at FROM passages q
                WHERE q.tag_id = p.tag_id AND q.first_at > p.first_at
                  AND q.first_at < p.first_at + %(gap)s
                ORDER BY q.first_at LIMIT 1) nx
            WHERE nx.reader_id <> %(r)s
            GROUP BY nx.reader_id
            ORDER BY n DESC, travel_s""",
        {"r": reader_id, "since": before - _HISTORY, "before": before, "gap": _TRANSITION_MAX},
    ).fetchall()
    return pd.DataFrame(rows, columns=["reader_id", "n", "travel_s"])


def _distance(paths: ReaderPaths, a: str, b: str) -> float:
    try:
        return paths.distance_m(a, b)
    except KeyError:
        return float("nan")


def _road_neighbours(
    paths: ReaderPaths, seen: LastSeen, count: int, skip: set[str], mass: float
) -> list[NextReader]:
    """The nearest readers by road from the last one, sharing ``mass`` by inverse distance."""
    if seen.reader_id not in paths.reader_node or count <= 0:
        return []
    row = paths.distance_matrix_m[paths.reader_ids.index(seen.reader_id)]
    ids = np.asarray(paths.reader_ids, dtype=object)
    same = np.asarray([r in skip or r == seen.reader_id for r in paths.reader_ids])
    ok = np.isfinite(row) & (row > 0) & ~same
    order = np.flatnonzero(ok)[np.argsort(row[ok], kind="stable")][:count]
    if order.size == 0:
        return []
    weight = 1.0 / row[order]
    share = mass * weight / weight.sum()
    return [
        NextReader(
            reader_id=str(ids[i]),
            probability=float(p),
            eta=seen.at + timedelta(seconds=float(row[i]) / _TYPICAL_SPEED_MPS),
            travel_s=float(row[i]) / _TYPICAL_SPEED_MPS,
            distance_m=float(row[i]),
            source="road",
        )
        for i, p in zip(order.tolist(), share.tolist(), strict=True)
    ]


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
        f"""SELECT q.tag_id, q.reader_id, {_EPOCH_US.format(col="t.closest_at")},
                   {_EPOCH_US.format(col="q.closest_at")}
            FROM passages t
            JOIN passages q ON q.reader_id = t.reader_id
             AND q.first_at BETWEEN t.first_at - %(w)s - interval '1 hour' AND t.last_at + %(w)s
             AND abs(extract(epoch FROM q.closest_at - t.closest_at)) <= %(ws)s
            WHERE t.tag_id = %(tag)s AND t.first_at >= %(since)s AND t.first_at < %(until)s
              AND q.tag_id <> %(tag)s""",
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
    out: list[Companion] = []
    for rec in scored.to_dict("records"):
        tag = str(rec["tag_id"])
        mine = co[co["tag_id"] == tag].sort_values("target_at_us")
        out.append(
            Companion(
                tag_id=tag,
                bike_id=None if tag not in bikes else int(bikes[tag]),
                shared=int(rec["shared"]),
                readers=int(rec["readers"]),
                expected=float(rec["expected"]),
                score=float(rec["score"]),
                passages=[
                    (str(r), _utc(a), _utc(b))
                    for r, a, b in zip(
                        mine["reader_id"],
                        mine["target_at_us"],
                        mine["companion_at_us"],
                        strict=True,
                    )
                ],
            )
        )
    return out


def _utc(t_us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(t_us))
