"""The engine worker's database connections, and getting them back when the database goes away.

A worker holds two connections: ``conn`` for its micro-batches and ``listen`` for the
``tagtrail_watches`` notifications (a watch opened or closed). When the database goes away
(restart, failover, network) both are replaced, with backoff, until it is back or the worker
stops; nothing of the micro-batch in flight was acknowledged, so the worker then redoes it. A
Citus worker node that was away (:mod:`track_engine.db.distributed`) is handled the same way.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

import psycopg

from track_engine.consumer.config import EngineConfig, EngineCounters
from track_engine.db.distributed import is_worker_unavailable
from track_engine.metrics import EngineMetrics

__all__ = ["DatabaseLink"]

log = logging.getLogger(__name__)


def _no_rebind(_conn: psycopg.Connection) -> None:
    """Until the worker says what to do with a new connection: nothing."""


class DatabaseLink:
    """The worker's two connections, replaced (and counted) when they are lost.

    ``on_reconnect`` is given each new working connection before the link counts it restored
    (the engine takes it: :meth:`track_engine.pipeline.Engine.reconnect`); when it fails
    because the database is away again, the link tries again. ``stop``: set when the worker
    stops; the backoff then ends without a connection.
    """

    def __init__(
        self,
        config: EngineConfig,
        counters: EngineCounters,
        metrics: EngineMetrics,
        stop: threading.Event,
    ) -> None:
        self.config = config
        self.stop = stop
        self.on_reconnect: Callable[[psycopg.Connection], None] = _no_rebind
        self._counters = counters
        self._metrics = metrics
        self.conn = psycopg.connect(config.database_url)
        self.listen = self._connect_listener()

    def _connect_listener(self) -> psycopg.Connection:
        listen = psycopg.connect(self.config.database_url, autocommit=True)
        listen.execute("LISTEN tagtrail_watches")
        return listen

    def watches_changed(self) -> bool:
        """Whether a watch was opened or closed since the last look (never waits)."""
        return any(True for _ in self.listen.notifies(timeout=0, stop_after=64))

    def reconnect(self, exc: Exception) -> None:
        """Replace both database connections, retrying with backoff until it works or stop."""
        log.error("database connection lost (%s); reconnecting", str(exc).strip() or type(exc))
        for conn in (self.conn, self.listen):
            with contextlib.suppress(psycopg.Error):
                conn.close()
        delay = self.config.reconnect_min_s
        while not self.stop.is_set():
            try:
                self.conn = psycopg.connect(self.config.database_url, connect_timeout=5)
                self.listen = self._connect_listener()
                self.on_reconnect(self.conn)
            except psycopg.OperationalError as again:
                for conn in (self.conn, self.listen):
                    with contextlib.suppress(psycopg.Error):
                        conn.close()  # closing a closed connection is a no-op
                log.warning("database still unreachable (%s); next try in %.1f s", again, delay)
                self.stop.wait(delay)  # backoff, not synchronisation
                delay = min(delay * 2, self.config.reconnect_max_s)
                continue
            with self._counters.lock:
                self._counters.db_reconnects += 1
            self._metrics.db_reconnects.inc()
            log.warning("database connection restored")
            return

    def worker_unavailable(self, exc: Exception) -> bool:
        """A Citus worker was away (track_engine.db.distributed): reconnect, wait a moment and
        redo the micro-batch, as for a lost connection of our own; never quarantine it."""
        if not is_worker_unavailable(exc):
            return False
        self.reconnect(exc)
        self.stop.wait(self.config.reconnect_min_s)  # backoff, not synchronisation
        return True

    def close(self) -> None:
        """Close both connections."""
        self.conn.close()
        self.listen.close()
