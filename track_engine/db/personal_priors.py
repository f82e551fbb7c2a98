"""The personal-prior job: learn how each tag rides the ways between reader pairs, and store it.

Riders ride the same ways day after day (to work and back). Path choice adds a tag's own way
prior to the fleet's (:mod:`track_engine.way_prior`; ``fleet.combined(own, PERSONAL_SHARE)``),
so where two ways fit a stretch equally well the one this tag usually rides wins. This job
learns every registered tag's prior from its stored passages of the last ``days``, in
batches of ``batch_tags`` tags (one short read, then the learning, then one upsert: memory
stays bounded however large the fleet), and stores one row per tag in ``personal_way_priors``
(migration 0160).

Bounded storage: a tag with fewer than ``MIN_PERSONAL_RIDES`` rides in the window gets no
ways; only pairs it rode ``MIN_PAIR_RIDES`` times or more are kept (1: all; 2 cost recall,
docs/accuracy.md "Priors"); and the window is the retention: a tag that stopped riding its
ways has them forgotten at the next run (``ways`` [] and ``rides`` 0; no role may DELETE).

**Thefts**: a stolen bike no longer rides its owner's ways. A passage feeds its tag's prior
only while the tag is bound to a bike and that bike is not stolen (no theft of it with
``stolen_at <= closest_at`` and not recovered before it): for a bike with an open theft only
the rides before the theft count. The API, for its part, uses the prior only on the stretches
that start before the open theft's ``stolen_at`` (:mod:`api.tracking.service`).

The engine runs it after each miss-rate run and the fleet's way-prior run, in the same child
process (:mod:`track_engine.db.miss_rate_schedule`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from track_engine.db import network
from track_engine.db.connect import one_run_at_a_time
from track_engine.db.reader_miss_rates import DEFAULT_DAYS
from track_engine.db.way_priors import MAX_GAP_S
from track_engine.roads import DEFAULT_MISS_RATE
from track_engine.way_prior import WayPrior, learn_personal_prior, rides_of

__all__ = [
    "BATCH_TAGS",
    "LOAD_SQL",
    "PersonalPriorRun",
    "decode_ways",
    "encode_ways",
    "learn_and_store",
    "load",
    "prior_of_rows",
    "run",
]

log = logging.getLogger(__name__)

BATCH_TAGS = 2000  # tags learned per read and upsert
_LOCK_KEY = 0x7A67_7065_7273  # arbitrary constant: one personal-prior run at a time
_EPOCH_US = "(extract(epoch from {col}) * 1000000)::bigint"
# Registered tags bound to a bike at some time in the window, in key order.
_TAGS = """
    SELECT DISTINCT tag_id FROM tag_bindings WHERE valid && tstzrange(%(since)s, %(until)s)
    ORDER BY tag_id"""
# A batch's passages that may feed their tags' priors: while bound, never while stolen.
_PASSAGES = f"""
    SELECT p.tag_id, p.reader_id, {_EPOCH_US.format(col="p.closest_at")}
    FROM passages p
    JOIN tag_bindings b ON b.tag_id = p.tag_id AND b.valid @> p.closest_at
    WHERE p.tag_id = ANY(%(tags)s) AND p.first_at >= %(since)s AND p.first_at < %(until)s
      AND p.reader_id = ANY(%(readers)s)
      AND NOT EXISTS (
        SELECT 1 FROM thefts t
        WHERE t.bike_id = b.bike_id AND t.stolen_at <= p.closest_at
          AND (t.recovered_at IS NULL OR p.closest_at < t.recovered_at))
    ORDER BY p.tag_id, p.closest_at, p.reader_id"""
_STORE = """
    INSERT INTO personal_way_priors (tag_id, ways, rides, learned_at)
    SELECT t, w::jsonb, n, %(at)s
    FROM unnest(%(t)s::text[], %(w)s::text[], %(n)s::int[]) AS x(t, w, n)
    ON CONFLICT (tag_id)
    DO UPDATE SET ways = excluded.ways, rides = excluded.rides, learned_at = excluded.learned_at"""
# Tags this run learned nothing for (no longer riding, not enough rides, stolen): forgotten.
_FORGET = """
    UPDATE personal_way_priors SET ways = '[]', rides = 0, learned_at = %(at)s
    WHERE learned_at < %(at)s AND rides > 0"""
LOAD_SQL = """
    SELECT tag_id, ways, learned_at FROM personal_way_priors
    WHERE tag_id = ANY(%s) AND rides > 0"""


@dataclass(frozen=True)
class PersonalPriorRun:
    """What one run did: when, over which window, how many tags it read and kept a prior for,
    how many passages, pairs and JSON bytes it stored, and how long it took."""

    learned_at: datetime
    since: datetime
    tags_read: int
    tags_kept: int
    passages: int
    pairs: int
    stored_bytes: int
    seconds: float


def encode_ways(prior: WayPrior) -> str:
    """A tag's prior as stored: ``[[from, to, [via…], rides], …]`` (rides to 3 decimals)."""
    return json.dumps(
        [
            [a, b, list(via), round(float(n), 3)]
            for (a, b), ways in prior.rides.items()
            for via, n in ways.items()
        ],
        separators=(",", ":"),
    )


def decode_ways(
    ways: Iterable[Sequence[Any]],
) -> dict[tuple[str, str], dict[tuple[str, ...], float]]:
    """:func:`encode_ways`'s rows (parsed JSON) back as a prior's rides."""
    out: dict[tuple[str, str], dict[tuple[str, ...], float]] = {}
    for a, b, via, n in ways:
        pair = out.setdefault((str(a), str(b)), {})
        key = tuple(str(r) for r in via)
        pair[key] = pair.get(key, 0.0) + float(n)
    return out


def prior_of_rows(rows: Sequence[Sequence[Any]]) -> tuple[WayPrior, datetime | None]:
    """The rows of :data:`LOAD_SQL` (a bike's tags) as one prior, and when it was learned."""
    # decode_ways sums a way met twice, so the tags' rows decode as one.
    rides = decode_ways(way for _, ways, _ in rows for way in ways)
    return WayPrior(rides), max((at for _, _, at in rows), default=None)


def load(conn: psycopg.Connection, tag_ids: Sequence[str]) -> tuple[WayPrior, datetime | None]:
    """The personal prior of ``tag_ids`` (a bike's tags; empty when none was learned)."""
    return prior_of_rows(conn.execute(LOAD_SQL, (list(tag_ids),)).fetchall())


def learn_and_store(
    conn: psycopg.Connection,
    *,
    days: float = DEFAULT_DAYS,
    now: datetime | None = None,
    batch_tags: int = BATCH_TAGS,
) -> PersonalPriorRun | None:
    """Learn and store every registered tag's prior, batch by batch (each read and each write
    its own short transaction on ``conn``, an autocommit connection); None without an active
    network."""
    if days <= 0 or batch_tags <= 0:
        raise ValueError("days and batch_tags must be positive")
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    since = now - timedelta(days=days)
    window = {"since": since, "until": now}
    with conn.transaction():
        arrays = network.load_network(conn)  # the miss rates path choice uses
        if arrays is None:
            return None
        tags = [str(r[0]) for r in conn.execute(_TAGS, window).fetchall()]
    readers = arrays.readers["reader_id"].astype(str).tolist()
    rates = arrays.miss_rates()

    def miss_rate_of(reader: str) -> float:
        return rates.get(reader, DEFAULT_MISS_RATE)

    kept = passages = pairs = stored = 0
    for start in range(0, len(tags), batch_tags):
        batch = tags[start : start + batch_tags]
        rows = conn.execute(_PASSAGES, {**window, "tags": batch, "readers": readers}).fetchall()
        passages += len(rows)
        out_t: list[str] = []
        out_w: list[str] = []
        out_n: list[int] = []
        for tag, readers_of, times_of in _by_tag(rows):
            rides = rides_of(readers_of, times_of, max_gap_s=MAX_GAP_S)
            prior = learn_personal_prior(rides, miss_rate_of)
            if not prior:
                continue
            out_t.append(tag)
            out_w.append(encode_ways(prior))
            out_n.append(len(rides))
            pairs += len(prior.rides)
        if out_t:
            with conn.transaction():
                conn.execute(_STORE, {"at": now, "t": out_t, "w": out_w, "n": out_n})
        kept += len(out_t)
        stored += sum(len(w) for w in out_w)
    with conn.transaction():
        conn.execute(_FORGET, {"at": now})
    return PersonalPriorRun(
        learned_at=now, since=since, tags_read=len(tags), tags_kept=kept, passages=passages,
        pairs=pairs, stored_bytes=stored, seconds=time.perf_counter() - started,
    )  # fmt: skip


def _by_tag(rows: list[tuple[Any, ...]]) -> Iterable[tuple[str, list[str], list[int]]]:
    """Rows ordered by tag then time, as (tag, readers, closest times µs) per tag."""
    tag: str | None = None
    readers: list[str] = []
    times: list[int] = []
    for t, r, at in rows:
        if t != tag:
            if tag is not None:
                yield tag, readers, times
            tag, readers, times = str(t), [], []
        readers.append(str(r))
        times.append(int(at))
    if tag is not None:
        yield tag, readers, times


def run(
    database_url: str, *, days: float = DEFAULT_DAYS, now: datetime | None = None
) -> PersonalPriorRun | None:
    """The job. None when it did not run (another run holds the lock, or no network)."""
    with (
        psycopg.connect(database_url, autocommit=True) as conn,
        one_run_at_a_time(conn, _LOCK_KEY) as locked,
    ):
        if not locked:
            log.info("personal priors: another run is in progress")
            return None
        result = learn_and_store(conn, days=days, now=now)
    if result is None:
        log.info("personal priors: no active road network")
        return None
    log.info(
        "personal priors: %d of %d tags kept (%d pairs, %d bytes) from %d passages in %.1f s",
        result.tags_kept, result.tags_read, result.pairs, result.stored_bytes, result.passages,
        result.seconds,
    )  # fmt: skip
    return result
