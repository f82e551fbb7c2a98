"""One engine worker: consume wire batches with QoS 1, process micro-batches, then ack.

paho runs its network loop in its own thread; ``on_message`` only decodes and enqueues
(:mod:`.session`, :mod:`.incoming`). The worker thread (:meth:`EngineService.run`) drains the
inbox into micro-batches, runs them through :class:`track_engine.pipeline.Engine` in one
transaction and acknowledges the messages only after the commit (:mod:`.batches`), so a crash
redelivers them instead of losing them. Between micro-batches it lets the watermark follow the
clock (idle ticks), picks up watch changes, and runs the housekeeping (partitions ahead of the
clock, retention, TimescaleDB policies).

Faults, and what the worker does about them:

- the database goes away (restart, failover, network): nothing is acknowledged; the worker
  reconnects with backoff (:mod:`.recovery`) and redoes the same messages;
- the database refuses a value in a batch that passed the wire checks, or a batch holds reads
  dated far from the engine's own clock or unsafe ids: the message is quarantined with the
  reason and the rest stored (:mod:`.batches`, :mod:`track_engine.screening`);
- the broker goes away: paho reconnects to the persistent session and the broker redelivers
  what was not acknowledged; storage is idempotent, so a repeat is stored once;
- the broker crashes and loses what it had acknowledged to a gateway (Mosquitto saves its
  queues only now and then): after each commit the worker confirms the stored batches to their
  gateways on ``<prefix>/stored/<gateway_id>``, and announces on ``<prefix>/stored`` whenever it
  (re)subscribes; a gateway keeps every batch in its spool until it is confirmed and sends the
  unconfirmed ones again (docs/reliability.md, R7).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

import psycopg

from track_engine.consumer.batches import MicroBatches
from track_engine.consumer.config import EngineConfig, EngineCounters
from track_engine.consumer.recovery import DatabaseLink
from track_engine.consumer.session import BrokerSession
from track_engine.db.live_notify import AfterCommit
from track_engine.db.timescale_jobs import PolicyRunner
from track_engine.metrics import EngineMetrics
from track_engine.pipeline import Engine
from track_engine.retention import apply_retention
from track_engine.screening import ReadWindow

__all__ = ["EngineService"]

log = logging.getLogger(__name__)

# A worker busy with micro-batches still lets the watermark follow the clock this often.
_TICK_EVERY_S = 1.0
# After a tick the database refused, the next one waits this long (no log line every 0.2 s).
_TICK_RETRY_S = 5.0


class EngineService:
    """One engine worker: owns a set of shards, one DB connection and one MQTT session."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.counters = EngineCounters()
        self.metrics = EngineMetrics()
        self._next_housekeeping = 0.0
        self._next_tick = 0.0
        self._tick_paused_until = 0.0
        self._stop = threading.Event()
        window = ReadWindow(config.read_max_age_s, config.read_max_ahead_s)
        self._db = DatabaseLink(config, self.counters, self.metrics, self._stop)
        self.engine = Engine(
            self._db.conn,
            gap_s=config.gap_s,
            max_future_s=config.max_future_s,
            allowed_lateness_s=config.allowed_lateness_s,
            idle_skew_s=config.idle_skew_s,
        )
        self._db.on_reconnect = self.engine.reconnect
        self.engine.unknown_readers.on_held = self.metrics.reads_unknown_reader.inc
        live = AfterCommit(self._db.conn)
        self._policies = PolicyRunner(config.database_url)
        self._session = BrokerSession(config, window, self._stop)
        self.connected = self._session.connected
        self._batches = MicroBatches(
            self.engine, self._db, self._session, live, self.counters, self.metrics
        )

    @property
    def inbox_messages(self) -> int:
        """Messages received and waiting for the worker (at most ``max_inbox_messages``)."""
        return self._session.inbox_messages

    def start(self) -> None:
        """Connect, start paho's network thread and (if configured) the metrics exporter."""
        if self.config.metrics_port is not None:
            self.metrics.serve(self.config.metrics_port, self.config.metrics_addr)
        self._session.start()

    def housekeeping(self, now: datetime | None = None) -> None:
        """Create partitions ahead of the clock and apply retention (run hourly by :meth:`step`)."""
        now = now or datetime.now(UTC)
        with self._db.conn.transaction():
            self.engine.partitions.ensure_ahead(
                self._db.conn, int(now.timestamp() * 1e6), self.config.partition_ahead_days
            )
        self._run_timescale_jobs()
        if self.config.retention_days is not None:
            result = apply_retention(
                self._db.conn, retention_days=self.config.retention_days, now=now
            )
            if result.partitions_dropped:
                log.info(
                    "retention: dropped %d partitions, kept %d held reads",
                    len(result.partitions_dropped),
                    result.reads_held,
                )

    def _run_timescale_jobs(self) -> None:
        """TimescaleDB policies its scheduler fails to run (track_engine.db.timescale_jobs)."""
        try:
            done = self._policies.run_due()
        except psycopg.OperationalError:
            raise  # the database is away: step() reconnects and retries housekeeping
        except psycopg.Error as exc:
            log.error("timescaledb: policy jobs not checked: %s", exc)
            return
        self.metrics.timescale_jobs.labels(outcome="ran").inc(len(done.ran))
        self.metrics.timescale_jobs.labels(outcome="failed").inc(len(done.failed))
        self.metrics.timescale_jobs_failing.set(done.scheduler_failing)

    def run(self, stop: threading.Event) -> None:
        """Process micro-batches until ``stop`` is set, then store every open passage.

        Their reads are stored and acknowledged already: left open, the last passages of a
        clean stop would exist only as reads until a restart refolded them.
        """
        # The session and the database link wait on the same stop as the loop.
        self._stop = self._db.stop = self._session.stop = stop
        while not stop.is_set():
            self.step(timeout_s=0.2)
        try:
            stored = self.flush()
        except psycopg.Error as exc:  # the next start refolds them from the stored reads
            log.error("could not store the open passages at stop: %s", exc)
            return
        log.info("stopped: stored %d open passages", stored)

    def step(self, timeout_s: float) -> int:
        """Process at most one micro-batch; returns how many messages it took."""
        try:
            if self._db.watches_changed():
                self.engine.refresh_watches()
            if time.monotonic() >= self._next_housekeeping:
                self._next_housekeeping = time.monotonic() + self.config.housekeeping_interval_s
                self.housekeeping()
        except psycopg.OperationalError as exc:
            self._db.reconnect(exc)
            self._next_housekeeping = 0.0  # do it as soon as the database is back
            return 0
        messages = self._session.take(timeout_s)
        if not messages:
            self._tick(idle=True)
            return 0
        self._batches.process(messages)
        if time.monotonic() >= self._next_tick:  # a stream of late batches is no idle time
            self._tick(idle=False)
        return len(messages)

    def _tick(self, *, idle: bool) -> None:
        """Let the watermark follow the clock while reads do not move it (Engine.tick)."""
        now = time.monotonic()
        if now < self._tick_paused_until:
            return
        self._next_tick = now + _TICK_EVERY_S
        try:
            stored = self.engine.tick(idle=idle)
        except psycopg.OperationalError as exc:
            self._db.reconnect(exc)
            return
        except psycopg.Error as exc:
            # Refused while storing what closed (the engine's memory is as it was): the next
            # micro-batch's fold, or a tick a little later, tries again. Not a stop.
            log.error("storing passages closed by the clock failed: %s", exc)
            self._tick_paused_until = now + _TICK_RETRY_S
            return
        self._batches.add_passages_stored(stored)

    def flush(self) -> int:
        """Close all open passages now (end of a finite run)."""
        stored = self.engine.flush()
        self._batches.add_passages_stored(stored)
        return stored

    def close(self) -> None:
        """Disconnect from the broker and the database."""
        self._stop.set()  # paho's thread may be waiting for room in the inbox
        self._session.close()
        self._db.close()
