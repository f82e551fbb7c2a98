"""The PostgreSQL adapter of the engine's storage port: the engine's own SQL.

Reads and passages go through the COPY writer (:mod:`track_engine.db.writer`); the watch
list is :func:`track_engine.db.watchlist.watched_tags`. The engine shell owns the connection's
transactions through :meth:`PostgresStorage.transaction`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

import numpy as np
import pandas as pd
import psycopg
from numpy.typing import NDArray
from psycopg.pq import TransactionStatus

from track_engine.core.port import ReadCopy, Recent
from track_engine.core.rows import ReadRows
from track_engine.core.state import AlertDraft
from track_engine.db import watchlist
from track_engine.db.writer import PartitionKeeper, copying_reads, retire_passages, store_passages

_AT_US = "timestamptz 'epoch' + %s * interval '1 microsecond'"
_INSERT_ALERT = f"""INSERT INTO alerts (watch_id, tag_id, reader_id, read_at)
    VALUES (%s, %s, %s, {_AT_US})
    ON CONFLICT DO NOTHING RETURNING alert_id"""


class PostgresStorage:
    """The engine's storage on one PostgreSQL connection (see :class:`EngineStorage`)."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.partitions = PartitionKeeper()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A transaction on the connection (nested: a savepoint)."""
        with self.conn.transaction():
            yield

    def in_transaction(self) -> bool:
        """Whether the connection is inside a transaction."""
        return self.conn.info.transaction_status != TransactionStatus.IDLE

    def watched_tags(self) -> pd.DataFrame:
        """Tags under an open watch right now (committed: no transaction left open)."""
        watch = watchlist.watched_tags(self.conn)
        self.conn.commit()
        return watch

    def antenna_headings(self) -> dict[str, list[float]]:
        """Antenna headings of the readers with more than one antenna."""
        rows = self.conn.execute(
            "SELECT reader_id, antenna_headings FROM readers"
            " WHERE cardinality(antenna_headings) > 1"
        ).fetchall()
        self.conn.commit()
        return {str(reader_id): list(headings) for reader_id, headings in rows}

    def recent(self, *, back_us: int, reach_us: int) -> Recent:
        """The reads and passages an engine restarting refolds (see the port)."""
        row = self.conn.execute(
            "SELECT (extract(epoch from max(read_at)) * 1000000)::bigint FROM reads"
        ).fetchone()
        self.conn.commit()
        if row is None or row[0] is None:
            return Recent(None)
        since_us = int(row[0]) - back_us
        # The reach bound lets PostgreSQL skip older partitions.
        stored = self.conn.execute(
            f"""SELECT tag_id, reader_id, (extract(epoch from first_at) * 1000000)::bigint,
                       (extract(epoch from last_at) * 1000000)::bigint, read_count
                FROM passages WHERE last_at >= {_AT_US} AND first_at >= {_AT_US}""",
            (since_us, since_us - reach_us),
        ).fetchall()
        if stored:
            since_us = min(since_us, min(int(r[2]) for r in stored))
        reads = self.conn.execute(
            f"""SELECT tag_id, (extract(epoch from read_at) * 1000000)::bigint, reader_id,
                       antenna, rssi_dbm
                FROM reads WHERE read_at >= {_AT_US}""",
            (since_us,),
        ).fetchall()
        self.conn.commit()
        return Recent(int(row[0]), list(stored), list(reads))

    def missing_partitions(self, times_us: NDArray[np.int64]) -> bool:
        """Whether the partition cache lacks a day of ``times_us``."""
        return bool(
            self.partitions.missing_days("reads", times_us)
            or self.partitions.missing_days("passages", times_us)
        )

    def ensure_partitions(self, times_us: NDArray[np.int64]) -> int:
        """Create the days' partitions of reads and passages, in a transaction of their own."""
        if not self.missing_partitions(times_us):
            return 0
        with self.conn.transaction():
            created = self.partitions.ensure(self.conn, "reads", times_us)
            self.partitions.ensure(self.conn, "passages", times_us)
        return created

    def forget_partitions(self) -> None:
        """Forget the partition cache (its partitions may have been rolled back)."""
        self.partitions = PartitionKeeper()

    def copying_reads(self, rows: ReadRows) -> AbstractContextManager[ReadCopy]:
        """Binary COPY of the reads while the block runs (:func:`copying_reads`)."""
        return copying_reads(self.conn, rows, partitions=self.partitions)

    def store_passages(self, passages: pd.DataFrame) -> int:
        """Upsert closed passages."""
        return store_passages(self.conn, passages, partitions=self.partitions)

    def retire_passages(self, keys: pd.DataFrame) -> int:
        """Remove the stored passages a merge replaced."""
        return retire_passages(self.conn, keys)

    def insert_alerts(self, drafts: Sequence[AlertDraft]) -> list[int | None]:
        """Insert the alerts in one pipelined round trip; None for one stored already."""
        if not drafts:
            return []
        params = [(d.watch_id, d.tag_id, d.reader_id, d.read_at_us) for d in drafts]
        ids: list[int | None] = []
        with self.conn.cursor() as cur:
            cur.executemany(_INSERT_ALERT, params, returning=True)
            while True:
                row = cur.fetchone()
                ids.append(None if row is None else int(row[0]))
                if not cur.nextset():
                    break
        return ids
