"""The engine on PostgreSQL: the pure core (:mod:`track_engine.core`) wired to the PostgreSQL
adapter of its storage port (:mod:`track_engine.storage.postgres`).

This is what the engine shell (:mod:`track_engine.consumer`) runs. The steps of a micro-batch,
its transaction and its rollback are described in :mod:`track_engine.core.engine`. The
caller acknowledges the MQTT messages only after :meth:`Engine.process` returns, so a crash
redelivers instead of losing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import psycopg

from reader_gateway.wire import ReadBatch
from track_engine.core import engine as core
from track_engine.core.state import Alert, PreparedBatch, ProcessResult
from track_engine.db.writer import PartitionKeeper
from track_engine.storage.postgres import PostgresStorage
from track_engine.unknown_readers import UnknownReaders

__all__ = ["Alert", "Engine", "PreparedBatch", "ProcessResult"]


class Engine(core.Engine):
    """The engine core on one PostgreSQL connection (one worker, one shard set).

    Reads of readers the registry does not know are taken out of each micro-batch before the
    core sees them, stored apart and counted (:mod:`track_engine.unknown_readers`).
    """

    storage: PostgresStorage

    def __init__(
        self,
        conn: psycopg.Connection,
        *,
        gap_s: float = 10.0,
        max_passage_s: float = 300.0,
        max_future_s: float | None = None,
        wall_clock_us: Callable[[], int] | None = None,
        allowed_lateness_s: float = 120.0,
        idle_skew_s: float = 2.0,
    ) -> None:
        # Before the core's start-up, which calls refresh_readers.
        self.unknown_readers = UnknownReaders()
        super().__init__(
            PostgresStorage(conn),
            gap_s=gap_s,
            max_passage_s=max_passage_s,
            max_future_s=max_future_s,
            wall_clock_us=wall_clock_us,
            allowed_lateness_s=allowed_lateness_s,
            idle_skew_s=idle_skew_s,
        )

    @property
    def conn(self) -> psycopg.Connection:
        """The database connection the engine stores through."""
        return self.storage.conn

    @property
    def partitions(self) -> PartitionKeeper:
        """Which daily partitions are known to exist (the housekeeping creates more)."""
        return self.storage.partitions

    def refresh_readers(self) -> None:
        """Reload antenna headings and which readers the registry knows."""
        super().refresh_readers()
        with self.conn.transaction():
            self.unknown_readers.load(self.conn)

    def prepare(self, batches: Sequence[ReadBatch]) -> PreparedBatch:
        """The core's :meth:`~track_engine.core.engine.Engine.prepare`, after the reads of
        unknown readers are held apart."""
        return super().prepare(self.unknown_readers.hold_apart(self.conn, batches))

    def reconnect(self, conn: psycopg.Connection) -> None:  # type: ignore[override]
        """Continue on a new database connection (the old one was lost)."""
        super().reconnect(PostgresStorage(conn))
