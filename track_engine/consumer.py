"""The engine's MQTT shell: consume wire batches with QoS 1, process micro-batches, then ack.

paho runs its network loop in its own thread; ``on_message`` only enqueues (a callback that
raises would kill that thread). The worker thread drains the queue into micro-batches, runs
them through :class:`track_engine.pipeline.Engine` in one transaction, and acknowledges the
messages only after the commit, so a crash redelivers them instead of losing them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from reader_gateway.wire import WireError, decode_batch, mqtt_endpoint, reads_topic
from track_engine.db import queries
from track_engine.metrics import EngineMetrics
from track_engine.pipeline import Alert, Engine, ProcessResult
from track_engine.retention import apply_retention

log = logging.getLogger(__name__)


@dataclass
class EngineCounters:
    """Running totals, read by the demo, the health endpoint and the metrics."""

    batches: int = 0
    reads_received: int = 0
    reads_stored: int = 0
    passages_stored: int = 0
    alerts: int = 0
    quarantined: int = 0
    last_batch_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


@dataclass(frozen=True)
class EngineConfig:
    """Where the engine reads from and writes to."""

    database_url: str
    mqtt_url: str
    topic_prefix: str = "tagtrail/v1"
    shards: tuple[int, ...] = (0, 1, 2, 3)
    client_id: str = "tagtrail-engine-0"
    # A persistent session keeps QoS 1 messages for us while we are down; finite runs (demo,
    # tests) use a clean one so that they leave no session behind in the broker.
    persistent_session: bool = True
    gap_s: float = 10.0
    max_batch_messages: int = 64
    max_wait_s: float = 0.1
    # Prometheus exporter port (None: no exporter, e.g. in tests and the demo).
    metrics_port: int | None = None
    metrics_addr: str = "127.0.0.1"
    # Housekeeping: partitions ahead of the clock, and raw-read retention (None: keep all).
    retention_days: int | None = None
    partition_ahead_days: int = 3
    housekeeping_interval_s: float = 3600.0


def alert_payload(alert: Alert) -> bytes:
    """JSON published on ``<prefix>/alerts/<watch_id>`` for live clients."""
    return orjson.dumps(
        {
            "alert_id": alert.alert_id,
            "watch_id": alert.watch_id,
            "bike_id": alert.bike_id,
            "kind": alert.kind,
            "tag_id": alert.tag_id,
            "reader_id": alert.reader_id,
            "read_at_us": alert.read_at_us,
        }
    )


class EngineService:
    """One engine worker: owns a set of shards, one DB connection and one MQTT session."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.counters = EngineCounters()
        self.metrics = EngineMetrics()
        self._next_housekeeping = 0.0
        self._inbox: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._conn = psycopg.connect(config.database_url)
        self._listen = psycopg.connect(config.database_url, autocommit=True)
        self._listen.execute("LISTEN tagtrail_watches")
        self.engine = Engine(self._conn, gap_s=config.gap_s)
        host, port = mqtt_endpoint(config.mqtt_url)
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            clean_session=not config.persistent_session,
            manual_ack=True,
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(min_delay=1, max_delay=10)
        self._client.connect_async(host, port, keepalive=30)
        self.connected = threading.Event()

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:
        prefix = f"{self.config.topic_prefix}/reads"
        client.subscribe([(reads_topic(shard, prefix), 1) for shard in self.config.shards])

    def _on_subscribe(self, *_: object) -> None:
        # Ready only once the broker has acknowledged the subscriptions: a message published
        # before the SUBACK would not be routed to us.
        self.connected.set()

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        self._inbox.put(msg)

    def start(self) -> None:
        """Connect, start paho's network thread and (if configured) the metrics exporter."""
        if self.config.metrics_port is not None:
            self.metrics.serve(self.config.metrics_port, self.config.metrics_addr)
        self._client.loop_start()

    def housekeeping(self, now: datetime | None = None) -> None:
        """Create partitions ahead of the clock and apply retention (run hourly by :meth:`step`)."""
        now = now or datetime.now(UTC)
        with self._conn.transaction():
            self.engine.partitions.ensure_ahead(
                self._conn, int(now.timestamp() * 1e6), self.config.partition_ahead_days
            )
        if self.config.retention_days is not None:
            result = apply_retention(self._conn, retention_days=self.config.retention_days, now=now)
            if result.partitions_dropped:
                log.info(
                    "retention: dropped %d partitions, kept %d held reads",
                    len(result.partitions_dropped),
                    result.reads_held,
                )

    def run(self, stop: threading.Event) -> None:
        """Process micro-batches until ``stop`` is set."""
        while not stop.is_set():
            self.step(timeout_s=0.2)

    def step(self, timeout_s: float) -> int:
        """Process at most one micro-batch; returns how many messages it took."""
        self._poll_watch_changes()
        if time.monotonic() >= self._next_housekeeping:
            self._next_housekeeping = time.monotonic() + self.config.housekeeping_interval_s
            self.housekeeping()
        try:
            first = self._inbox.get(timeout=timeout_s)
        except queue.Empty:
            return 0
        messages = [first]
        deadline = time.monotonic() + self.config.max_wait_s
        while len(messages) < self.config.max_batch_messages:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                messages.append(self._inbox.get(timeout=remaining))
            except queue.Empty:
                break
        self._process(messages)
        return len(messages)

    def _process(self, messages: list[mqtt.MQTTMessage]) -> None:
        batches = []
        for msg in messages:
            try:
                batches.append(decode_batch(bytes(msg.payload)))
            except WireError as exc:
                with self._conn.transaction():
                    queries.quarantine(
                        self._conn,
                        source=f"engine:{msg.topic}",
                        reason=str(exc),
                        payload=bytes(msg.payload),
                    )
                with self.counters.lock:
                    self.counters.quarantined += 1
                self.metrics.quarantined.inc()
        started = time.monotonic()
        result = self.engine.process(batches)
        self._observe(len(messages), result, time.monotonic() - started)
        for msg in messages:
            self._client.ack(msg.mid, msg.qos)
        for alert in result.alerts:
            self._client.publish(
                f"{self.config.topic_prefix}/alerts/{alert.watch_id}", alert_payload(alert), qos=1
            )
        with self.counters.lock:
            self.counters.batches += len(batches)
            self.counters.reads_received += result.reads_received
            self.counters.reads_stored += result.reads_stored
            self.counters.passages_stored += result.passages_stored
            self.counters.alerts += len(result.alerts)
            self.counters.last_batch_at = time.monotonic()

    def _observe(self, messages: int, result: ProcessResult, seconds: float) -> None:
        m = self.metrics
        m.messages.inc(messages)
        m.reads_received.inc(result.reads_received)
        m.reads_stored.inc(result.reads_stored)
        m.passages_stored.inc(result.passages_stored)
        m.alerts.inc(len(result.alerts))
        m.batch_reads.observe(result.reads_received)
        m.batch_seconds.observe(seconds)
        m.open_tags.set(self.engine.open_tags)
        m.pending_reads.set(self.engine.pending_reads)
        if result.reads_received and self.engine.watermark_us:
            lag = time.time() - self.engine.watermark_us / 1e6
            m.lag_seconds.observe(max(lag, 0.0))
            m.last_lag_seconds.set(lag)

    def _poll_watch_changes(self) -> None:
        if any(True for _ in self._listen.notifies(timeout=0, stop_after=64)):
            self.engine.refresh_watches()

    def flush(self) -> int:
        """Close all open passages now (end of a finite run)."""
        stored = self.engine.flush()
        with self.counters.lock:
            self.counters.passages_stored += stored
        return stored

    def close(self) -> None:
        """Disconnect from the broker and the database."""
        self._client.disconnect()
        self._client.loop_stop()
        self._conn.close()
        self._listen.close()
