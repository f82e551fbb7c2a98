"""The tracking domain's SQL: a bike's last sighting and passages, current plates and the bike
a plate names (where tags went after a reader: :mod:`api.tracking.departure_store`).

Each hot lookup is a :class:`Lookup` (one statement, its parameters, and how its rows become
the answer), written once and run on a blocking connection (:meth:`Lookup.run`) or on the
API's asyncio one (:meth:`Lookup.run_async`): no sync and async twins to fix twice. The audited
lookups put the audit row in front of their own statement as a data-modifying ``WITH``
(always executed, in the caller's transaction, which rolls it back with a 404) and fetch the
active network's id as a scalar subquery: one statement per round trip (a pipeline of four
statements costs ~0.35 ms of client CPU in psycopg async, one statement ~0.1 ms). Times come
back as aware UTC datetimes.

On Citus a few lookups run a twin statement with the same answer (:mod:`api.tracking.dialect_store`:
Citus cannot push down a ``LATERAL … LIMIT`` over a reference table); companions are in
:mod:`api.tracking.companion_store`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import pandas as pd
import psycopg

from api.registry import audit
from api.tracking.dialect_store import on_citus, on_citus_async
from api.tracking.values import LastSeen, OpenTheftSeen, PlateBike
from track_engine.db import passage_rows
from track_engine.errors import NotFoundError
from track_engine.identifiers import normalize_plate

T = TypeVar("T")
Row = tuple[Any, ...]

_EPOCH_US = "(extract(epoch from {col}) * 1000000)::bigint"


@dataclass(frozen=True, slots=True)
class Lookup(Generic[T]):
    """One statement with its parameters, and how its rows become the answer; ``citus``: the
    statement's twin where Citus cannot run it (same parameters, same answer)."""

    statement: str
    params: Mapping[str, Any] | Sequence[Any]
    answer: Callable[[list[Row]], T]
    citus: str | None = None

    def run(self, conn: psycopg.Connection) -> T:
        """The answer, on a blocking connection."""
        statement = self.citus if self.citus and on_citus(conn) else self.statement
        return self.answer(conn.execute(statement, self.params).fetchall())

    async def run_async(self, conn: psycopg.AsyncConnection[Any]) -> T:
        """The answer, on an asyncio connection."""
        statement = self.citus if self.citus and await on_citus_async(conn) else self.statement
        cur = await conn.execute(statement, self.params)
        return self.answer(await cur.fetchall())


# --- Session settings ------------------------------------------------------------------------
# No JIT (the planner's cost of a LIMIT 1 lookup over a large partition passes
# jit_above_cost, and compiling took 0.5-1 s a query, against ~1 ms to run it) and no parallel
# workers (starting them costs more than these short scans).
_LOOKUP_SETTINGS = (
    "SELECT set_config('jit', 'off', {local}), "
    "set_config('max_parallel_workers_per_gather', '0', {local})"
)


def lookup_settings(conn: psycopg.Connection) -> None:
    """Tune the rest of this transaction for short indexed lookups (no JIT, no parallel
    workers). Queue it first in a pipeline and it costs no round trip of its own."""
    conn.execute(_LOOKUP_SETTINGS.format(local="true"))


async def configure_lookup_connection(conn: psycopg.AsyncConnection[Any]) -> None:
    """:func:`lookup_settings` for the whole session of a connection that serves only these
    short indexed lookups (a pool's ``configure``), instead of once per transaction."""
    await conn.execute(_LOOKUP_SETTINGS.format(local="false"))
    await conn.commit()


# --- Last seen -------------------------------------------------------------------------------
# The bike's last sighting, in one statement: the newest closed passage of each tag bound to
# it (by its primary key, tag first) and the newest alert of its watches (an alert is raised
# per read of a watched tag, before the passage closes), then the reader's position. Raw reads
# are not searched: ``reads`` is keyed by time first (migration 0025, for ingest), so "the
# newest read of a tag" would be a scan of recent reads (at 20k reads/s, 600k rows for 30 s).
# A passage is stored about ``passage_gap_s`` + 3 s after its last read, on the engine's clock
# even when no later read comes (Engine.tick), so for a bike nobody watches the answer lags by
# that much; a watched bike's alerts are live.
_NEWEST_PASSAGE = """
       FROM tags t CROSS JOIN LATERAL (
         SELECT p.tag_id, p.reader_id, p.closest_at, p.first_at FROM passages p
         WHERE p.tag_id = t.tag_id AND p.closest_at <@ t.valid
         ORDER BY p.first_at DESC LIMIT 1) p"""
# On Citus: the bike's passages within their bindings, newest first, without the per-tag
# LATERAL (refused there); each shard sends its newest and the coordinator keeps one.
_NEWEST_PASSAGE_CITUS = """
       FROM tags t JOIN passages p ON p.tag_id = t.tag_id AND p.closest_at <@ t.valid"""
_LAST_SEEN_SQL = """
    WITH tags AS (SELECT tag_id, valid FROM tag_bindings WHERE bike_id = {bike})
    SELECT s.tag_id, s.reader_id, s.at, s.source, rd.lon, rd.lat FROM (
      (SELECT p.tag_id, p.reader_id, p.closest_at AS at, 'passage' AS source{passage}
       ORDER BY p.first_at DESC LIMIT 1)
      UNION ALL
      (SELECT a.tag_id, a.reader_id, a.read_at AS at, 'read' AS source
       FROM tags t JOIN alerts a ON a.tag_id = t.tag_id AND a.read_at <@ t.valid
       WHERE a.watch_id IN (SELECT watch_id FROM watches WHERE bike_id = {bike})
       ORDER BY a.read_at DESC LIMIT 1)) s
    LEFT JOIN readers rd ON rd.reader_id = s.reader_id
    ORDER BY s.at DESC, s.source LIMIT 1"""
_LAST_SEEN_OF = _LAST_SEEN_SQL.replace("{passage}", _NEWEST_PASSAGE)
_LAST_SEEN = _LAST_SEEN_OF.format(bike="%(bike)s")
_LAST_SEEN_CITUS = _LAST_SEEN_SQL.replace("{passage}", _NEWEST_PASSAGE_CITUS).format(
    bike="%(bike)s"
)


def _last_seen_of(row: Row | None) -> LastSeen | None:
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


def last_seen_lookup(bike_id: int) -> Lookup[LastSeen | None]:
    """The newest sighting of any tag bound to the bike: its newest closed passage (at the
    closest approach), or a newer raw read (an alert of a watched tag); a tie goes to the
    passage."""
    return Lookup(
        _LAST_SEEN,
        {"bike": bike_id},
        lambda rows: _last_seen_of(_first(rows)),
        citus=_LAST_SEEN_CITUS,
    )


def last_seen(conn: psycopg.Connection, *, bike_id: int) -> LastSeen | None:
    """:func:`last_seen_lookup`'s answer on a blocking connection."""
    return last_seen_lookup(bike_id).run(conn)


_ACTIVE_NETWORK = "(SELECT network_id FROM road_networks WHERE active)"

# The bike's existence, its last sighting (_LAST_SEEN, columns 2-7, NULL when never seen) and
# the active network's id, with the audit row.
_AUDITED_LAST_SEEN_SQL = f"""{audit.CTE_NAMED},
    seen AS ({{seen}})
    SELECT EXISTS (SELECT 1 FROM bikes b JOIN owners o USING (owner_id)
                   WHERE b.bike_id = %(bike)s),
           seen.*, {_ACTIVE_NETWORK}
    FROM (VALUES (1)) AS one (x) LEFT JOIN seen ON true"""
_AUDITED_LAST_SEEN = _AUDITED_LAST_SEEN_SQL.replace("{seen}", _LAST_SEEN)
_AUDITED_LAST_SEEN_CITUS = _AUDITED_LAST_SEEN_SQL.replace("{seen}", _LAST_SEEN_CITUS)


def audited_last_seen(
    *, bike_id: int, record: audit.AuditRow
) -> Lookup[tuple[LastSeen | None, int | None]]:
    """In one round trip: ``record`` appended to the audit log, the bike's last sighting
    (:func:`last_seen_lookup`) and the active network's id. The answer raises
    :class:`NotFoundError` for an unknown bike."""

    def answer(rows: list[Row]) -> tuple[LastSeen | None, int | None]:
        row = rows[0]  # one row, always (VALUES (1) LEFT JOIN)
        if not row[0]:
            raise NotFoundError(f"no bike {bike_id}")
        seen = None if row[1] is None else _last_seen_of(row[1:7])
        return seen, None if row[7] is None else int(row[7])

    params = {**audit.named_params(record), "bike": bike_id}
    return Lookup(_AUDITED_LAST_SEEN, params, answer, citus=_AUDITED_LAST_SEEN_CITUS)


# --- Open thefts' last sightings (the duty desk's overview map) -------------------------------
# Every open theft with its bike's current plate and the bike's last sighting (_LAST_SEEN per
# bike, NULLs when never seen). Not a hot lookup: the caller audits what it showed.
_OPEN_THEFTS = """
    SELECT th.theft_id, th.bike_id,
           (SELECT p.plate FROM plates p WHERE p.bike_id = th.bike_id
            ORDER BY upper_inf(p.valid) DESC, lower(p.valid) DESC LIMIT 1) AS plate,
           th.case_number, th.status, th.stolen_at{seen}
    FROM thefts th{join}
    WHERE th.status IN ('reported', 'confirmed')
    ORDER BY th.stolen_at DESC, th.theft_id DESC"""
_OPEN_THEFTS_LAST_SEEN = _OPEN_THEFTS.format(
    seen=", seen.*",
    join=f"\n    LEFT JOIN LATERAL ({_LAST_SEEN_OF.format(bike='th.bike_id')}) seen ON true",
)


def open_thefts_last_seen(conn: psycopg.Connection) -> list[OpenTheftSeen]:
    """Every open theft (reported or confirmed), newest theft first, with its bike's last
    sighting (:func:`last_seen_lookup`)."""
    if on_citus(conn):
        # Citus cannot run the LATERAL per theft: one last-seen lookup per open theft instead.
        thefts = conn.execute(_OPEN_THEFTS.format(seen="", join="")).fetchall()
        rows = [_with_seen(row, last_seen(conn, bike_id=int(row[1]))) for row in thefts]
    else:
        rows = conn.execute(_OPEN_THEFTS_LAST_SEEN).fetchall()
    return [
        OpenTheftSeen(
            theft_id=int(r[0]),
            bike_id=int(r[1]),
            plate=r[2],
            case_number=r[3],
            status=str(r[4]),
            stolen_at=r[5].astimezone(UTC),
            last_seen=None if r[6] is None else _last_seen_of(r[6:12]),
        )
        for r in rows
    ]


def _with_seen(theft: Row, seen: LastSeen | None) -> Row:
    """A theft's row with its sighting's columns, as ``_OPEN_THEFTS_LAST_SEEN`` has them."""
    if seen is None:
        return (*theft, None, None, None, None, None, None)
    return (*theft, seen.tag_id, seen.reader_id, seen.at, seen.source, seen.lon, seen.lat)


# --- A bike's passages -----------------------------------------------------------------------
_BIKE_PASSAGES = f"""
    SELECT p.tag_id, p.reader_id, {_EPOCH_US.format(col="p.first_at")},
           {_EPOCH_US.format(col="p.last_at")}, {_EPOCH_US.format(col="p.closest_at")},
           p.peak_rssi_dbm, p.read_count, p.direction
    FROM tag_bindings tb
    JOIN passages p ON p.tag_id = tb.tag_id AND p.closest_at <@ tb.valid
    WHERE tb.bike_id = %s AND p.first_at >= %s - interval '1 hour'
      AND p.closest_at BETWEEN %s AND %s
    ORDER BY p.closest_at"""

# The same statement as a subquery (positional parameters), in the same order: by closest
# approach (the fifth column, in microseconds), with the active network's id first.
_AUDITED_BIKE_PASSAGES = f"""{audit.CTE_POSITIONAL}
    SELECT {_ACTIVE_NETWORK}, q.* FROM ({_BIKE_PASSAGES}) AS q ORDER BY 6"""


def bike_passages(
    conn: psycopg.Connection, *, bike_id: int, since: datetime, until: datetime
) -> pd.DataFrame:
    """Passages of every tag bound to the bike, each within its binding, ordered by time
    (``passage_rows.PASSAGE_COLUMNS``)."""
    rows = conn.execute(_BIKE_PASSAGES, (bike_id, since, since, until)).fetchall()
    return passage_rows.passages_frame(rows)


def _passage_rows_of(rows: list[Row]) -> tuple[list[Row], int | None]:
    network_id = rows[0][0] if rows else None
    return [row[1:] for row in rows], None if network_id is None else int(network_id)


def audited_bike_passage_rows(
    *, bike_id: int, since: datetime, until: datetime, record: audit.AuditRow
) -> Lookup[tuple[list[Row], int | None]]:
    """In one round trip: ``record`` appended to the audit log, the rows of
    :func:`bike_passages` (``passage_rows.PASSAGE_COLUMNS``; ``passage_rows.passages_frame``
    makes the frame) and the active network's id (None also when there are no rows)."""
    params = (*record.values(), bike_id, since, since, until)
    return Lookup(_AUDITED_BIKE_PASSAGES, params, _passage_rows_of)


# --- The bike a plate names, current plates ---------------------------------------------------
# The bike ``bike_search.find_bike(plate=…)`` finds (same joins, filter and order), without its
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


def _plate_bike_of(rows: list[Row]) -> PlateBike | None:
    row = _first(rows)
    return None if row is None else PlateBike(int(row[0]), str(row[1]), row[2])


def plate_bike(plate: str) -> Lookup[PlateBike | None]:
    """The registered bike a plate (normalized) names, as ``bike_search.find_bike`` finds it."""
    return Lookup(_PLATE_BIKE, (normalize_plate(plate),), _plate_bike_of)


def current_plates(conn: psycopg.Connection, bike_ids: list[int]) -> dict[int, str]:
    """The plate each of ``bike_ids`` carries now (bikes without one are left out)."""
    if not bike_ids:
        return {}
    rows = conn.execute(
        "SELECT bike_id, plate FROM plates WHERE bike_id = ANY(%s) AND valid @> now()",
        (bike_ids,),
    ).fetchall()
    return {int(b): str(p) for b, p in rows}


def _first(rows: list[Row]) -> Row | None:
    return rows[0] if rows else None
