"""The way-prior job: learn how the fleet rides the ways between reader pairs, and store it.

Path choice between two consecutive sightings adds, to each candidate way, the log of the share
of the fleet's rides between those two readers that took it (:mod:`track_engine.way_prior`).
This job learns those shares from the stored passages of the last ``days`` — the same
deterministic sample of whole tags as the miss-rate job
(:func:`track_engine.db.reader_miss_rates.sample_passages`), each tag's passages cut into rides
at silences over ``MAX_GAP_S`` — weighing readers that missed the tag by the miss rates path
choice uses (learned where known), and replaces the prior in table ``way_priors`` (migration
0150).
:func:`track_engine.db.network.load_network` loads it with the network, so every route built
from the database uses it.

The engine runs it right after each miss-rate run, in the same child process
(:mod:`track_engine.db.miss_rate_schedule`): the rates it weighs silence by are then fresh.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from track_engine.db import network
from track_engine.db.connect import one_run_at_a_time
from track_engine.db.reader_miss_rates import (
    DEFAULT_DAYS,
    DEFAULT_MAX_PASSAGES,
    sample_passages,
)
from track_engine.roads import DEFAULT_MISS_RATE
from track_engine.way_prior import Ride, WayPrior, learn_way_prior, rides_of

__all__ = ["MAX_GAP_S", "WayPriorRun", "last_learned_at", "learn", "run", "store"]

log = logging.getLogger(__name__)

MAX_GAP_S = 300.0  # a silence longer than this ends a ride (parked)
_LOCK_KEY = 0x7A67_7761_7973  # arbitrary constant: one way-prior run at a time per database
_STORE = """
    INSERT INTO way_priors (from_reader, to_reader, via, rides, learned_at)
    SELECT a, b, v::jsonb, n, %(at)s
    FROM unnest(%(a)s::text[], %(b)s::text[], %(v)s::text[], %(n)s::real[]) AS t(a, b, v, n)
    ON CONFLICT (from_reader, to_reader, via)
    DO UPDATE SET rides = excluded.rides, learned_at = excluded.learned_at"""
# Ways an earlier run learned and this one did not: no longer ridden (no role may DELETE).
_FORGET = "UPDATE way_priors SET rides = 0 WHERE learned_at < %(at)s AND rides > 0"


@dataclass(frozen=True)
class WayPriorRun:
    """What one run learned: the prior, from how many rides, passages and tags, and when."""

    learned_at: datetime
    since: datetime
    prior: WayPrior
    rides: int
    passages: int
    tags: int
    seconds: float


def learn(
    conn: psycopg.Connection,
    *,
    days: float = DEFAULT_DAYS,
    max_passages: int = DEFAULT_MAX_PASSAGES,
    now: datetime | None = None,
) -> WayPriorRun | None:
    """The fleet way prior of the passages of the ``days`` before ``now``; None without an
    active network. Reads in one short transaction; writes nothing."""
    if days <= 0:
        raise ValueError("days must be positive")
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    since = now - timedelta(days=days)
    with conn.transaction():
        arrays = network.load_network(conn)  # the miss rates path choice uses
        if arrays is None:
            return None
        readers = arrays.readers["reader_id"].astype(str).tolist()
        passages = sample_passages(
            conn, since=since, until=now, max_passages=max_passages, readers=readers
        )
    rates = arrays.miss_rates()
    rides: list[Ride] = []
    ordered = passages.sort_values(["tag_id", "closest_at_us", "reader_id"], kind="mergesort")
    for _, ps in ordered.groupby("tag_id", sort=False):
        rides += rides_of(
            ps["reader_id"].astype(str).tolist(), ps["closest_at_us"].tolist(), max_gap_s=MAX_GAP_S
        )
    prior = learn_way_prior(rides, lambda r: rates.get(r, DEFAULT_MISS_RATE))
    return WayPriorRun(
        learned_at=now,
        since=since,
        prior=prior,
        rides=len(rides),
        passages=len(passages),
        tags=int(passages["tag_id"].nunique()) if len(passages) else 0,
        seconds=time.perf_counter() - started,
    )


def store(conn: psycopg.Connection, result: WayPriorRun) -> int:
    """Replace the stored prior with a run's (its ways upserted, the others' rides set to 0);
    returns the rows written. The caller owns the transaction."""
    a: list[str] = []
    b: list[str] = []
    v: list[str] = []
    n: list[float] = []
    for (x, y), ways in result.prior.rides.items():
        for via, rides in ways.items():
            a.append(x)
            b.append(y)
            v.append(json.dumps(list(via)))
            n.append(rides)
    cur = conn.execute(_STORE, {"at": result.learned_at, "a": a, "b": b, "v": v, "n": n})
    conn.execute(_FORGET, {"at": result.learned_at})
    return cur.rowcount


def run(
    database_url: str,
    *,
    days: float = DEFAULT_DAYS,
    max_passages: int = DEFAULT_MAX_PASSAGES,
    now: datetime | None = None,
) -> WayPriorRun | None:
    """The job: learn and store. None when it did not run (another run holds the lock, or no
    network is active)."""
    with (
        psycopg.connect(database_url, autocommit=True) as conn,
        one_run_at_a_time(conn, _LOCK_KEY) as locked,
    ):
        if not locked:
            log.info("way priors: another run is in progress")
            return None
        result = learn(conn, days=days, max_passages=max_passages, now=now)
        if result is None:
            log.info("way priors: no active road network")
            return None
        with conn.transaction():
            store(conn, result)
    log.info(
        "way priors: %d reader pairs learned from %d rides (%d passages of %d tags) in %.1f s",
        len(result.prior.rides),
        result.rides,
        result.passages,
        result.tags,
        result.seconds,
    )
    return result


def last_learned_at(conn: psycopg.Connection) -> datetime | None:
    """When the job last stored a prior (None: never, or it was empty)."""
    row = conn.execute("SELECT max(learned_at) FROM way_priors").fetchone()
    return None if row is None else row[0]
