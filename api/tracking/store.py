"""Read-side queries for following a bike: last seen, likely next readers, companions.

Re-exported by :mod:`track_engine.db.queries`, the API's one door to SQL. Times come back as
aware UTC datetimes.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np
import pandas as pd
import psycopg

from track_engine.companions import SHARED_COLUMNS, score_companions
from track_engine.db import audit, queries
from track_engine.errors import NotFoundError
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
    source: str  # "passage" (closed passage, closest approach) or "read" (a watched tag's alert)


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


# The bike's last sighting, in one statement: the newest closed passage of each tag bound to
# it (by its primary key, tag first) and the newest alert of its watches (an alert is raised
# per read of a watched tag, before the passage closes), then the reader's position. Raw reads
# are not searched: ``reads`` is keyed by time first (migration 0025, for ingest), so "the
# newest read of a tag" would be a scan of recent reads (at 20k reads/s, 600k rows for 30 s).
# A passage is stored about ``passage_gap_s`` + 3 s after its last read, on the engine's clock
# even when no later read comes (Engine.tick), so for a bike nobody watches the answer lags by
# that much; a watched bike's alerts are live.
_LAST_SEEN = """
    WITH tags AS (SELECT tag_id, valid FROM tag_bindings WHERE bike_id = %(bike)s)
    SELECT s.tag_id, s.reader_id, s.at, s.source, rd.lon, rd.lat FROM (
      (SELECT p.tag_id, p.reader_id, p.closest_at AS at, 'passage' AS source
       FROM tags t CROSS JOIN LATERAL (
         SELECT p.tag_id, p.reader_id, p.closest_at, p.first_at FROM passages p
         WHERE p.tag_id = t.tag_id AND p.closest_at <@ t.valid
         ORDER BY p.first_at DESC LIMIT 1) p
       ORDER BY p.first_at DESC LIMIT 1)
      UNION ALL
      (SELECT a.tag_id, a.reader_id, a.read_at AS at, 'read' AS source
       FROM tags t JOIN alerts a ON a.tag_id = t.tag_id AND a.read_at <@ t.valid
       WHERE a.watch_id IN (SELECT watch_id FROM watches WHERE bike_id = %(bike)s)
       ORDER BY a.read_at DESC LIMIT 1)) s
    LEFT JOIN readers rd ON rd.reader_id = s.reader_id
    ORDER BY s.at DESC, s.source LIMIT 1"""

# For the rest of the transaction: no JIT (the planner's cost of a LIMIT 1 lookup over a
# large partition passes jit_above_cost, and compiling took 0.5-1 s a query, against ~1 ms to
# run it) and no parallel workers (starting them costs more than these short scans).
_LOOKUP_SETTINGS = (
    "SELECT set_config('jit', 'off', true), "
    "set_config('max_parallel_workers_per_gather', '0', true)"
)


def lookup_settings(conn: psycopg.Connection) -> None:
    """Tune the rest of this transaction for short indexed lookups (no JIT, no parallel
    workers). Queue it first in a pipeline and it costs no round trip of its own."""
    conn.execute(_LOOKUP_SETTINGS)


_BIKE_EXISTS = "SELECT 1 FROM bikes b JOIN owners o USING (owner_id) WHERE b.bike_id = %s"


def bike_exists(conn: psycopg.Connection, bike_id: int) -> bool:
    """Whether the bike is registered (with its owner), whatever its state."""
    return conn.execute(_BIKE_EXISTS, (bike_id,)).fetchone() is not None


def last_seen(conn: psycopg.Connection, *, bike_id: int) -> LastSeen | None:
    """The newest sighting of any tag bound to the bike: its newest closed passage (at the
    closest approach), or a newer raw read (an alert of a watched tag, or a read not yet in a
    passage); a tie goes to the passage."""
    return _last_seen_of(conn.execute(_LAST_SEEN, _last_seen_args(bike_id)).fetchone())


def start_last_seen(
    conn: psycopg.Connection, *, bike_id: int, check_bike: bool = False
) -> Callable[[], LastSeen | None]:
    """Send the last-seen query (and, with ``check_bike``, the bike's existence check: then
    the answer raises :class:`NotFoundError` for an unknown bike) without waiting for the
    answer; call the result to get it. In a pipeline (``conn.pipeline()``) the statements
    travel with whatever else is queued, in one round trip."""
    exists = conn.execute(_BIKE_EXISTS, (bike_id,)) if check_bike else None
    cur = conn.execute(_LAST_SEEN, _last_seen_args(bike_id))

    def answer() -> LastSeen | None:
        if exists is not None and exists.fetchone() is None:
            raise NotFoundError(f"no bike {bike_id}")
        return _last_seen_of(cur.fetchone())

    return answer


def _last_seen_args(bike_id: int) -> dict[str, Any]:
    return {"bike": bike_id}


def _last_seen_of(row: tuple[Any, ...] | None) -> LastSeen | None:
    if row is None:
        return None
    return LastSeen(
        tag_id=str(row[0]),
        reader_id=str(row[1]),
        at=row[2].astimezone(UTC),
        lon=None if row[4] is None else float(row[4]),
        lat=None if row[5] is None else float(row[5]),
        source=str(row[3]),
    )


def next_readers(
    conn: psycopg.Connection,
    *,
    bike_id: int,
    network: HasReaderPaths,
    limit: int = 5,
    seen: LastSeen | None = None,
) -> list[NextReader]:
    """Likely next readers after the bike's last passage, most probable first.

    From history: where tags that passed the same reader went next (within 30 minutes), with
    the median travel time. When the reader has little history the nearest readers by road
    fill the list, at a typical e-bike speed, weighted by closeness. ``seen``: the bike's
    :func:`last_seen`, when the caller has it already.

    The history of a (reader, time) is kept for ``TransitionCache.ttl_s`` with the network's
    reader paths (per process): it is thousands of index probes over 30 days of passages, the
    same for every officer following a parked bike, and a minute-old count predicts as well.
    """
    seen = seen or last_seen(conn, bike_id=bike_id)
    if seen is None:
        return []
    cache = network.reader_paths.memo(_HISTORY_MEMO, TransitionCache)
    history = cache.get(
        (seen.reader_id, seen.at), lambda: _transitions(conn, seen.reader_id, seen.at)
    )
    return predict_next_readers(network, seen, history, limit)


def predict_next_readers(
    network: HasReaderPaths, seen: LastSeen, history: _Transitions, limit: int
) -> list[NextReader]:
    """:func:`next_readers`' answer from the reader's ``history`` (the transitions query's
    rows: ``(next reader, departures, median travel seconds)``, most frequent first)."""
    out: list[NextReader] = []
    total = sum(n for _, n, _ in history)
    if total >= _MIN_TRANSITIONS:
        for rid, n, travel_s in history[:limit]:
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


_HISTORY_MEMO = "tracking.transitions"
_Transitions = list[tuple[str, int, float]]


def transition_cache(network: HasReaderPaths) -> TransitionCache:
    """The transitions kept with this network's reader paths (per process)."""
    return network.reader_paths.memo(_HISTORY_MEMO, TransitionCache)


class TransitionCache:
    """Recent answers of the transitions query by (reader, time), each for ``ttl_s`` seconds;
    at most ``max_entries`` (the oldest go first). Thread-safe; a miss computes outside the
    lock, so two requests may both compute the same answer."""

    def __init__(self, ttl_s: float = 60.0, max_entries: int = 4096) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, datetime], tuple[float, _Transitions]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, datetime], compute: Callable[[], _Transitions]) -> _Transitions:
        """The cached answer for ``key``, or ``compute()``'s, remembered."""
        now = time.monotonic()
        hit = self.peek(key, now)
        if hit is not None:
            return hit
        value = compute()
        self.put(key, value, now)
        return value

    def peek(self, key: tuple[str, datetime], now: float | None = None) -> _Transitions | None:
        """The cached answer for ``key`` if it is younger than ``ttl_s``; None otherwise."""
        now = time.monotonic() if now is None else now
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and now - hit[0] < self.ttl_s:
                return hit[1]
        return None

    def put(self, key: tuple[str, datetime], value: _Transitions, at: float) -> None:
        """Remember ``value`` for ``key``, computed from data read at ``at`` (monotonic)."""
        with self._lock:
            self._entries[key] = (at, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


_TRANSITIONS = f"""
    SELECT nx.reader_id, count(*) AS n,
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
    ORDER BY n DESC, travel_s"""


def _transitions_args(reader_id: str, before: datetime) -> dict[str, Any]:
    return {"r": reader_id, "since": before - _HISTORY, "before": before, "gap": _TRANSITION_MAX}


def _transitions(
    conn: psycopg.Connection, reader_id: str, before: datetime
) -> list[tuple[str, int, float]]:
    """(next reader, departures, median travel seconds), most frequent first."""
    rows: list[tuple[str, int, float]] = conn.execute(
        _TRANSITIONS, _transitions_args(reader_id, before)
    ).fetchall()
    return rows


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


# --- The hot lookups on an asyncio connection -------------------------------------------------
# The API answers route, last-seen and next-readers on its event loop, with no thread hop per
# dependency. These functions send their synchronous twins' statements (here, in ``queries``,
# ``accounts`` and ``audit``) on a psycopg ``AsyncConnection``, joined into one statement per
# round trip instead of a pipeline: the audit row is a data-modifying ``WITH`` of the lookup
# (always executed, in the caller's transaction, which rolls it back with a 404), the active
# network's id a scalar subquery. A pipeline of four statements costs ~0.35 ms of client CPU
# in psycopg (async), one statement ~0.1 ms.

_LOOKUP_SESSION_SETTINGS = (
    "SELECT set_config('jit', 'off', false), "
    "set_config('max_parallel_workers_per_gather', '0', false)"
)


async def configure_lookup_connection(conn: psycopg.AsyncConnection[Any]) -> None:
    """:func:`lookup_settings` for the whole session of a connection that serves only these
    short indexed lookups (a pool's ``configure``), instead of once per transaction."""
    await conn.execute(_LOOKUP_SESSION_SETTINGS)
    await conn.commit()


@dataclass(frozen=True, slots=True)
class PlateBike:
    """What a route needs of the bike a plate names."""

    bike_id: int
    plate: str
    stolen_at: datetime | None


# The bike ``queries.find_bike(plate=…)`` finds (same joins, filter and order), without its
# owner, tags and case: only what a route lookup uses.
_PLATE_BIKE = """
    SELECT b.bike_id, p.plate, th.stolen_at
    FROM bikes b
    JOIN owners o USING (owner_id)
    JOIN plates p ON p.bike_id = b.bike_id AND upper_inf(p.valid)
    LEFT JOIN LATERAL (
        SELECT stolen_at FROM thefts
        WHERE bike_id = b.bike_id AND status IN ('reported', 'confirmed')
        ORDER BY stolen_at DESC LIMIT 1) th ON true
    WHERE p.plate_key = %s
    ORDER BY b.deregistered_at NULLS FIRST, b.registered_at DESC
    LIMIT 1"""


def current_plates(conn: psycopg.Connection, bike_ids: list[int]) -> dict[int, str]:
    """The plate each of ``bike_ids`` carries now (bikes without one are left out)."""
    if not bike_ids:
        return {}
    rows = conn.execute(
        "SELECT bike_id, plate FROM plates WHERE bike_id = ANY(%s) AND valid @> now()",
        (bike_ids,),
    ).fetchall()
    return {int(b): str(p) for b, p in rows}


def plate_bike(conn: psycopg.Connection, plate: str) -> PlateBike | None:
    """The registered bike a plate (normalized) names, as ``queries.find_bike`` finds it."""
    return _plate_bike_of(conn.execute(_PLATE_BIKE, _plate_args(plate)).fetchone())


async def plate_bike_async(conn: psycopg.AsyncConnection[Any], plate: str) -> PlateBike | None:
    """:func:`plate_bike` on an asyncio connection."""
    cur = await conn.execute(_PLATE_BIKE, _plate_args(plate))
    return _plate_bike_of(await cur.fetchone())


def _plate_args(plate: str) -> tuple[str]:
    from track_engine.identifiers import normalize_plate

    return (normalize_plate(plate),)


def _plate_bike_of(row: tuple[Any, ...] | None) -> PlateBike | None:
    return None if row is None else PlateBike(int(row[0]), str(row[1]), row[2])


# audit.append's INSERT, as a data-modifying WITH in front of a lookup (with named or with
# positional parameters, to suit the lookup's).
_AUDIT_NAMES = tuple(f"audit_{c.strip()}" for c in audit.COLUMNS.split(","))
_AUDIT_CTE = f"""
    WITH audit_row AS (
        INSERT INTO audit_log ({audit.COLUMNS})
        VALUES ({", ".join(f"%({n})s" for n in _AUDIT_NAMES)}))"""
_AUDIT_CTE_POSITIONAL = f"""
    WITH audit_row AS ({audit.INSERT})"""


def _audit_params(row: audit.AuditRow) -> dict[str, Any]:
    """``row`` as the named parameters of :data:`_AUDIT_CTE`."""
    return dict(zip(_AUDIT_NAMES, row.values(), strict=True))


_ACTIVE_NETWORK = "(SELECT network_id FROM road_networks WHERE active)"

# The bike's existence (as _BIKE_EXISTS), its last sighting (_LAST_SEEN, columns 2-7, NULL
# when never seen) and the active network's id, with the audit row.
_AUDITED_LAST_SEEN = f"""{_AUDIT_CTE},
    seen AS ({_LAST_SEEN})
    SELECT EXISTS (SELECT 1 FROM bikes b JOIN owners o USING (owner_id)
                   WHERE b.bike_id = %(bike)s),
           seen.*, {_ACTIVE_NETWORK}
    FROM (VALUES (1)) AS one (x) LEFT JOIN seen ON true"""


async def audited_last_seen_async(
    conn: psycopg.AsyncConnection[Any], *, bike_id: int, record: audit.AuditRow
) -> tuple[LastSeen | None, int | None]:
    """In one round trip: ``record`` appended to the audit log, the bike's :func:`last_seen` and the
    active network's id. Raises :class:`NotFoundError` for an unknown bike."""
    cur = await conn.execute(
        _AUDITED_LAST_SEEN, {**_audit_params(record), **_last_seen_args(bike_id)}
    )
    row = await cur.fetchone()
    assert row is not None  # one row, always
    if not row[0]:
        raise NotFoundError(f"no bike {bike_id}")
    seen = None if row[1] is None else _last_seen_of(row[1:7])
    return seen, None if row[7] is None else int(row[7])


def audited_bike_passage_rows(
    conn: psycopg.Connection,
    *,
    bike_id: int,
    since: datetime,
    until: datetime,
    record: audit.AuditRow,
) -> tuple[list[tuple[Any, ...]], int | None]:
    """In one round trip: ``record`` appended to the audit log, the rows of
    ``queries.start_bike_passage_rows`` and the active network's id (None also when there
    are no rows)."""
    rows = conn.execute(
        _audited_bike_passages(), _bike_passage_args(record, bike_id, since, until)
    ).fetchall()
    return _passage_rows_of(rows)


async def audited_bike_passage_rows_async(
    conn: psycopg.AsyncConnection[Any],
    *,
    bike_id: int,
    since: datetime,
    until: datetime,
    record: audit.AuditRow,
) -> tuple[list[tuple[Any, ...]], int | None]:
    """:func:`audited_bike_passage_rows` on an asyncio connection."""
    cur = await conn.execute(
        _audited_bike_passages(), _bike_passage_args(record, bike_id, since, until)
    )
    return _passage_rows_of(await cur.fetchall())


@functools.cache
def _audited_bike_passages() -> str:
    # Its statement as a subquery (positional parameters), in the same order: by closest
    # approach (the fifth column, in microseconds).
    return f"""{_AUDIT_CTE_POSITIONAL}
        SELECT {_ACTIVE_NETWORK}, q.* FROM ({queries._BIKE_PASSAGES}) AS q ORDER BY 6"""


def _bike_passage_args(
    record: audit.AuditRow, bike_id: int, since: datetime, until: datetime
) -> tuple[Any, ...]:
    return (*record.values(), bike_id, since, since, until)


def _passage_rows_of(rows: list[tuple[Any, ...]]) -> tuple[list[tuple[Any, ...]], int | None]:
    network_id = rows[0][0] if rows else None
    return [row[1:] for row in rows], None if network_id is None else int(network_id)


async def transitions_async(
    conn: psycopg.AsyncConnection[Any], reader_id: str, before: datetime
) -> list[tuple[str, int, float]]:
    """The transitions query of :func:`next_readers` on an asyncio connection."""
    cur = await conn.execute(_TRANSITIONS, _transitions_args(reader_id, before))
    rows: list[tuple[str, int, float]] = await cur.fetchall()
    return rows
