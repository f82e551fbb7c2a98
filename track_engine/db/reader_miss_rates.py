"""The reader miss-rate job: learn each reader's miss rate from the stored passages.

Path choice weighs every reader a candidate path passes silently by that reader's miss rate.
The registry's figure (``readers.miss_rate``, surveyed or a default) is the *prior*; this job
measures what the passages say (:func:`track_engine.miss_rates.learn_miss_rates`) and stores
it next to it (migration 0045)::

    miss_rate_learned     posterior mean; NULL where the window held no evidence
    miss_rate_passes      expected passes of a tag during continuous rides (the evidence)
    miss_rate_learned_at  when this job wrote them

Everything that builds reader paths from the database then uses
``coalesce(miss_rate_learned, miss_rate)`` (:func:`track_engine.db.network.load_network`).

One run reads about ``max_passages`` passages of the last ``days`` — all the passages of whole
tags, taken by smallest ``md5(tag_id)``: a deterministic sample, so two runs over the same week
agree — because learning costs ~0.5 ms per passage and round (four rounds; measured in
docs/accuracy.md): 200,000 passages (about 100 interior passes a reader in a city of 2,000
readers) take ~6 min of one core on the test city, more on a large city's graph. Runs are
serialised by an advisory lock (several engine workers, a manual run); the loading and the
writing are short transactions, the learning in between holds none.

The engine runs the job every few hours (:mod:`track_engine.db.miss_rate_schedule`).

A reader *looks deaf* when it is learned to miss at least ``DEAF_MISS_RATE`` of the tags that
pass it, over at least ``DEAF_MIN_PASSES`` passes: it answers heartbeats but hears almost
nothing. The job logs a warning for each one the registry thinks is fine (< ``REGISTRY_FINE``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg
from psycopg.rows import class_row

from track_engine.db import network, passage_rows
from track_engine.db.connect import one_run_at_a_time
from track_engine.miss_rates import learn_miss_rates, tracks_from_passages

log = logging.getLogger(__name__)

DEFAULT_DAYS = 7
DEFAULT_MAX_PASSAGES = 200_000
# "Deaf": learned to miss this share or more of the passing tags, with this much evidence.
DEAF_MISS_RATE = 0.8
DEAF_MIN_PASSES = 20.0
# A deaf reader is news (a warning) when the registry believes it hears better than this.
REGISTRY_FINE = 0.6

_LOCK_KEY = 0x7A67_6D69_7373  # arbitrary constant: one learning run at a time per database
_EPOCH_US = "(extract(epoch from {col}) * 1000000)::bigint"
_SAMPLE = f"""
    WITH counts AS (
        SELECT tag_id, count(*) AS n FROM passages
        WHERE first_at >= %(since)s AND first_at < %(until)s AND reader_id = ANY(%(readers)s)
        GROUP BY tag_id),
    running AS (
        SELECT tag_id, sum(n) OVER (ORDER BY md5(tag_id), tag_id) - n AS before FROM counts),
    sample AS (SELECT tag_id FROM running WHERE before < %(max_passages)s)
    SELECT p.tag_id, p.reader_id, {_EPOCH_US.format(col="p.first_at")},
           {_EPOCH_US.format(col="p.last_at")}, {_EPOCH_US.format(col="p.closest_at")},
           p.peak_rssi_dbm, p.read_count, p.direction
    FROM passages p JOIN sample USING (tag_id)
    WHERE p.first_at >= %(since)s AND p.first_at < %(until)s AND p.reader_id = ANY(%(readers)s)"""
_STORE = """
    UPDATE readers r
    SET miss_rate_learned = v.learned, miss_rate_passes = v.passes,
        miss_rate_learned_at = CASE WHEN v.learned IS NULL THEN NULL ELSE %(at)s END
    FROM unnest(%(ids)s::text[], %(learned)s::real[], %(passes)s::real[])
         AS v(reader_id, learned, passes)
    WHERE r.reader_id = v.reader_id"""


def looks_deaf(miss_rate_learned: float | None, passes: float | None) -> bool:
    """Whether a learned miss rate says the reader hears (almost) nothing."""
    return (
        miss_rate_learned is not None
        and passes is not None
        and miss_rate_learned >= DEAF_MISS_RATE
        and passes >= DEAF_MIN_PASSES
    )


@dataclass(frozen=True, slots=True)
class LearnedReader:
    """One reader after a run: the registry's figure and what the passages said.

    ``miss_rate_learned`` and ``passes`` are None when the window held no evidence about the
    reader (it then keeps its registry figure in path choice)."""

    reader_id: str
    registry_miss_rate: float
    miss_rate_learned: float | None
    passes: float | None
    heard: int
    silent: float

    @property
    def deaf(self) -> bool:
        """Learned to miss most passing tags, with enough evidence."""
        return looks_deaf(self.miss_rate_learned, self.passes)

    @property
    def unexpectedly_deaf(self) -> bool:
        """Deaf while the registry believes it hears well: worth a warning."""
        return self.deaf and self.registry_miss_rate < REGISTRY_FINE


@dataclass(frozen=True)
class LearnRun:
    """What one run learned (and, once :func:`store` ran, wrote)."""

    learned_at: datetime
    since: datetime
    tags: int
    passages: int
    readers: tuple[LearnedReader, ...]
    seconds: float

    @property
    def deaf(self) -> list[LearnedReader]:
        """The readers that look deaf."""
        return [r for r in self.readers if r.deaf]


@dataclass(frozen=True, slots=True)
class StoredMissRate:
    """A reader's miss rates as stored: the registry's and the learned one."""

    reader_id: str
    miss_rate: float
    miss_rate_learned: float | None
    miss_rate_passes: float | None
    miss_rate_learned_at: datetime | None

    @property
    def deaf(self) -> bool:
        """Learned to miss most passing tags, with enough evidence."""
        return looks_deaf(self.miss_rate_learned, self.miss_rate_passes)


def sample_passages(
    conn: psycopg.Connection,
    *,
    since: datetime,
    until: datetime,
    max_passages: int,
    readers: list[str],
) -> pd.DataFrame:
    """Passages at ``readers`` with ``first_at`` in ``[since, until)``, all of each tag's,
    of whole tags taken by smallest ``md5(tag_id)`` (the same tags every time) while fewer
    than ``max_passages`` are taken, as ``passage_rows.PASSAGE_COLUMNS``."""
    if max_passages < 1:
        raise ValueError("max_passages must be at least 1")
    rows = conn.execute(
        _SAMPLE,
        {"since": since, "until": until, "max_passages": max_passages, "readers": readers},
    ).fetchall()
    return passage_rows.passages_frame(rows)


def learn(
    conn: psycopg.Connection,
    *,
    days: float = DEFAULT_DAYS,
    max_passages: int = DEFAULT_MAX_PASSAGES,
    now: datetime | None = None,
) -> LearnRun | None:
    """Learn every reader of the active network's miss rate from the passages of the ``days``
    before ``now``, with the registry's figures as the prior; None without an active network.

    Reads in one short transaction (commits it if it opened it); writes nothing."""
    if days <= 0:
        raise ValueError("days must be positive")
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    since = now - timedelta(days=days)
    with conn.transaction():
        arrays = network.load_network(conn, learned=False)  # the registry's figures: the prior
        if arrays is None:
            return None
        readers = arrays.readers["reader_id"].astype(str).tolist()
        passages = sample_passages(
            conn, since=since, until=now, max_passages=max_passages, readers=readers
        )
    reader_paths = arrays.reader_paths(arrays.road_graph())
    tracks = tracks_from_passages(passages)
    learned = learn_miss_rates(tracks, reader_paths)
    out = []
    for reader_id in readers:  # learn_miss_rates answers for every reader of the paths
        entry = learned[reader_id]
        evidence = entry.passes > 0.0
        out.append(
            LearnedReader(
                reader_id=reader_id,
                registry_miss_rate=entry.prior,
                miss_rate_learned=entry.miss_rate if evidence else None,
                passes=entry.passes if evidence else None,
                heard=entry.heard,
                silent=entry.silent,
            )
        )
    return LearnRun(
        learned_at=now,
        since=since,
        tags=len(tracks),
        passages=len(passages),
        readers=tuple(out),
        seconds=time.perf_counter() - started,
    )


def store(conn: psycopg.Connection, run: LearnRun) -> int:
    """Write a run's learned rates, evidence and time to ``readers`` in one statement
    (readers without evidence get NULLs, not the prior); returns the rows updated. The caller
    owns the transaction."""
    cur = conn.execute(
        _STORE,
        {
            "at": run.learned_at,
            "ids": [r.reader_id for r in run.readers],
            "learned": [r.miss_rate_learned for r in run.readers],
            "passes": [r.passes for r in run.readers],
        },
    )
    return cur.rowcount


def warn_deaf(run: LearnRun) -> None:
    """Log a warning for each reader that looks deaf while the registry says it hears."""
    for r in run.readers:
        if r.unexpectedly_deaf:
            log.warning(
                "reader %s looks deaf: it missed %.0f%% of %.0f passes in the last %s (the "
                "registry says %.0f%%); check its antenna and cabling (docs/operations.md)",
                r.reader_id,
                100.0 * (r.miss_rate_learned or 0.0),
                r.passes or 0.0,
                run.learned_at - run.since,
                100.0 * r.registry_miss_rate,
            )


def run(
    database_url: str,
    *,
    days: float = DEFAULT_DAYS,
    max_passages: int = DEFAULT_MAX_PASSAGES,
    now: datetime | None = None,
    skip_if_newer_than: timedelta | None = None,
) -> LearnRun | None:
    """The job: learn, store, warn about deaf readers. None when it did not run: another run
    holds the lock, no network is active, or (with ``skip_if_newer_than``) the last run is
    that recent."""
    with (
        psycopg.connect(database_url, autocommit=True) as conn,
        one_run_at_a_time(conn, _LOCK_KEY) as locked,
    ):
        if not locked:
            log.info("reader miss rates: another run is in progress")
            return None
        if skip_if_newer_than is not None:
            last = last_learned_at(conn)
            if last is not None and last > (now or datetime.now(UTC)) - skip_if_newer_than:
                return None
        result = learn(conn, days=days, max_passages=max_passages, now=now)
        if result is None:
            log.info("reader miss rates: no active road network")
            return None
        with conn.transaction():
            store(conn, result)
    log.info(
        "reader miss rates: %d readers learned from %d passages of %d tags in %.1f s",
        sum(r.miss_rate_learned is not None for r in result.readers),
        result.passages,
        result.tags,
        result.seconds,
    )
    warn_deaf(result)
    return result


def last_learned_at(conn: psycopg.Connection) -> datetime | None:
    """When the job last stored a learned rate (None: never, or nothing was learned)."""
    row = conn.execute("SELECT max(miss_rate_learned_at) FROM readers").fetchone()
    return None if row is None else row[0]


def stored_miss_rates(
    conn: psycopg.Connection, *, reader_id: str | None = None
) -> dict[str, StoredMissRate]:
    """Every reader's (or one's) registry and learned miss rates."""
    with conn.cursor(row_factory=class_row(StoredMissRate)) as cur:
        rows = cur.execute(
            """SELECT reader_id, miss_rate, miss_rate_learned, miss_rate_passes,
                      miss_rate_learned_at
               FROM readers WHERE %(rid)s::text IS NULL OR reader_id = %(rid)s""",
            {"rid": reader_id},
        ).fetchall()
    return {r.reader_id: r for r in rows}
