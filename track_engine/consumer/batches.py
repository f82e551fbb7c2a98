"""One micro-batch of messages: stored in one transaction (redone until it commits), then acked.

Faults, and what happens to the micro-batch:

- the database goes away: the transaction fails, the engine's memory is put back as it was
  (:meth:`track_engine.pipeline.Engine.micro_batch`), nothing is acknowledged; the worker
  reconnects with backoff (:mod:`.recovery`) and redoes the same messages;
- the database refuses a value in a batch that passed the wire checks (a time out of range,
  say), or the engine fails on it: the micro-batch is redone one message at a time and the
  message refused is quarantined with the reason, so that one bad batch can never stop the
  worker (redelivered forever, it would);
- messages that broke the wire contract, or some of whose reads were screened out on arrival
  (:mod:`.incoming`), are quarantined in the micro-batch's transaction and the reads refused
  counted by reason.

Alerts are committed and published before the micro-batch's COPY and fold, and the daily
partitions it needs are created before its transaction, in one of their own.
"""

from __future__ import annotations

import logging
import time

import paho.mqtt.client as mqtt
import psycopg

from track_engine.consumer.config import EngineCounters
from track_engine.consumer.incoming import Received
from track_engine.consumer.recovery import DatabaseLink
from track_engine.consumer.session import BrokerSession
from track_engine.db import quarantine
from track_engine.db.live_notify import AfterCommit
from track_engine.metrics import EngineMetrics
from track_engine.pipeline import Engine, ProcessResult
from track_engine.screening import Refusal

__all__ = ["MicroBatches"]

log = logging.getLogger(__name__)

# The open-tags gauge counts distinct tags over every pending read (a million or more at full
# rate); refreshed at most this often instead of after every micro-batch.
_OPEN_TAGS_EVERY_S = 1.0


class MicroBatches:
    """Stores micro-batches through the engine and counts what they did (counters, metrics)."""

    def __init__(
        self,
        engine: Engine,
        db: DatabaseLink,
        session: BrokerSession,
        live: AfterCommit,
        counters: EngineCounters,
        metrics: EngineMetrics,
    ) -> None:
        self._engine = engine
        self._db = db
        self._session = session
        self._live = live
        self._counters = counters
        self._metrics = metrics
        self._next_open_tags = 0.0

    def add_passages_stored(self, stored: int) -> None:
        """Passages stored outside a micro-batch (a tick, the final flush): metric and counter."""
        self._live.passages(self._db.conn, stored)
        if stored:
            self._metrics.passages_stored.inc(stored)
            with self._counters.lock:
                self._counters.passages_stored += stored

    def process(self, messages: list[Received]) -> None:
        """Store one micro-batch (redone until it commits), then acknowledge its messages."""
        while True:
            try:
                self._store(messages)
                break
            except psycopg.OperationalError as exc:
                self._db.reconnect(exc)
                if self._db.stop.is_set():
                    return  # not acknowledged: the broker redelivers to the next worker
            except Exception as exc:
                if self._db.worker_unavailable(exc):
                    if self._db.stop.is_set():
                        return  # not acknowledged: the broker redelivers to the next worker
                    continue
                # The database refused something in a wire-valid batch (or the engine failed
                # on it: a bug, which must not stop the worker and have the broker redeliver
                # the batch to every restart). Find the message(s), quarantine them, store
                # the rest.
                if isinstance(exc, psycopg.Error):
                    log.warning("micro-batch refused (%s); retrying message by message", exc)
                else:
                    log.exception("micro-batch failed in the engine; retrying message by message")
                for item in messages:
                    self._store_or_quarantine(item)
                break
        self._session.settle(messages)
        with self._counters.lock:
            self._counters.messages_acked += len(messages)

    def _store(self, messages: list[Received]) -> ProcessResult:
        """Quarantine what breaks the wire contract and store the rest, in one transaction."""
        batches = [item.batch for item in messages if item.batch is not None]
        bad = [(item.msg, item.problem) for item in messages if item.problem is not None]
        started = time.monotonic()
        prepared = self._engine.prepare(batches)
        # Partitions in a short transaction of their own, committed before the micro-batch's:
        # the micro-batch then takes no lock on the partitioned tables' catalog.
        self._engine.ensure_partitions(prepared)
        # Alerts first, committed on their own: the duty desk hears a stolen bike without
        # waiting for the micro-batch's COPY and fold (and on MQTT right away).
        alerts = self._engine.raise_alerts(prepared)
        self._live.alerts(self._db.conn, [(a.alert_id, a.bike_id) for a in alerts])
        self._session.publish_alerts(alerts)
        with self._engine.micro_batch():
            for msg, reason in bad:
                self._quarantine(msg, reason)
            result = self._engine.process(prepared, alerts=False)
        self._live.passages(self._db.conn, result.passages_stored)
        result.alerts = alerts
        self._observe(len(messages), result, time.monotonic() - started)
        refused: dict[Refusal, int] = {}
        for item in messages:
            for why, count in item.refused.items():
                refused[why] = refused.get(why, 0) + count
        self._count(len(batches), len(bad), result, refused)
        return result

    def _store_or_quarantine(self, item: Received) -> ProcessResult:
        while True:
            try:
                return self._store([item])
            except psycopg.OperationalError as exc:
                self._db.reconnect(exc)
                if self._db.stop.is_set():
                    raise
            except Exception as exc:
                if self._db.worker_unavailable(exc):
                    if self._db.stop.is_set():
                        raise
                    continue
                by_database = isinstance(exc, psycopg.Error)
                who = "database refused" if by_database else "engine failed on"
                reason = f"{who} the batch: {type(exc).__name__}: {exc}"
                try:
                    with self._engine.micro_batch():
                        self._quarantine(item.msg, reason[:2000])
                except psycopg.OperationalError as lost:  # the database went away meanwhile
                    self._db.reconnect(lost)
                    if self._db.stop.is_set():
                        raise
                    continue  # the message again, from the start, once it is back
                refused = dict(item.refused)
                if item.batch is not None and len(item.batch):
                    why = Refusal.REFUSED_BY_DATABASE if by_database else Refusal.ENGINE_ERROR
                    refused[why] = len(item.batch)
                self._count(0, 1, ProcessResult(), refused)
                return ProcessResult()

    def _quarantine(self, msg: mqtt.MQTTMessage, reason: str) -> None:
        log.warning("quarantined a message on %s: %s", msg.topic, reason)
        quarantine.keep(
            self._db.conn, source=f"engine:{msg.topic}", reason=reason, payload=bytes(msg.payload)
        )

    def _count(
        self,
        batches: int,
        quarantined: int,
        result: ProcessResult,
        refused: dict[Refusal, int] | None = None,
    ) -> None:
        self._metrics.quarantined.inc(quarantined)
        for why, count in (refused or {}).items():
            self._metrics.reads_quarantined.labels(reason=why.value).inc(count)
        with self._counters.lock:
            self._counters.quarantined += quarantined
            for why, count in (refused or {}).items():
                total = self._counters.reads_quarantined
                total[why.value] = total.get(why.value, 0) + count
            self._counters.batches += batches
            self._counters.reads_received += result.reads_received
            self._counters.reads_stored += result.reads_stored
            self._counters.passages_stored += result.passages_stored
            self._counters.alerts += len(result.alerts)
            self._counters.last_batch_at = time.monotonic()

    def _observe(self, messages: int, result: ProcessResult, seconds: float) -> None:
        m = self._metrics
        m.messages.inc(messages)
        m.reads_received.inc(result.reads_received)
        m.reads_stored.inc(result.reads_stored)
        m.passages_stored.inc(result.passages_stored)
        m.alerts.inc(len(result.alerts))
        m.batch_reads.observe(result.reads_received)
        m.batch_seconds.observe(seconds)
        now = time.monotonic()
        if now >= self._next_open_tags:  # a distinct count over every pending read: not per batch
            self._next_open_tags = now + _OPEN_TAGS_EVERY_S
            m.open_tags.set(self._engine.open_tags)
        m.pending_reads.set(self._engine.pending_reads)
        m.held_reads.set(self._engine.held_reads)
        m.inbox_messages.set(self._session.inbox_messages)
        if result.reads_received and self._engine.watermark_us:
            lag = time.time() - self._engine.watermark_us / 1e6
            m.lag_seconds.observe(max(lag, 0.0))
            m.last_lag_seconds.set(lag)
