"""The engine's MQTT shell: consume wire batches with QoS 1, process micro-batches, then ack.

paho runs its network loop in its own thread; ``on_message`` only enqueues (a callback that
raises would kill that thread). The worker thread drains the queue into micro-batches, runs
them through :class:`track_engine.pipeline.Engine` in one transaction, and acknowledges the
messages only after the commit, so a crash redelivers them instead of losing them.

Faults, and what the worker does about them:

- the database goes away (restart, failover, network): the micro-batch's transaction fails,
  the engine's memory is put back as it was (:meth:`Engine.micro_batch`), nothing is
  acknowledged; the worker reconnects with backoff and redoes the same messages;
- the database refuses a value in a batch that passed the wire checks (a time out of range,
  say): the micro-batch is redone one message at a time and the message it refuses is
  quarantined with the database's reason, so that one bad batch can never stop the worker
  (redelivered forever, it would);
- a batch (from a gateway, or forged and published straight on the broker) holds reads dated
  far from the engine's own clock, or unsafe ids: those reads are screened out when the
  message arrives (:mod:`track_engine.screening`), counted by reason and the message
  quarantined with the reason, and the rest of the batch is stored. The daily partitions a
  micro-batch needs are created before its transaction, in one of their own;
- the broker goes away: paho reconnects to the persistent session and the broker redelivers
  what was not acknowledged; storage is idempotent, so a repeat is stored once;
- the broker crashes and loses what it had acknowledged to a gateway (Mosquitto saves its
  queues only now and then): after each commit the worker confirms the stored batches to their
  gateways on ``<prefix>/stored/<gateway_id>``, and announces on ``<prefix>/stored`` whenever it
  (re)subscribes; a gateway keeps every batch in its spool until it is confirmed and sends the
  unconfirmed ones again (docs/reliability.md, R7).
"""

from __future__ import annotations

import contextlib
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

from reader_gateway.brokers import BrokerFailover, mqtt_targets
from reader_gateway.wire import (
    DEFAULT_SHARD_COUNT,
    TOPIC_ROOT,
    ReadBatch,
    WireError,
    decode_batch,
    encode_stored,
    reads_topic,
    stored_topic,
    topic_safe_id,
)
from track_engine.db import quarantine
from track_engine.db.distributed import is_worker_unavailable
from track_engine.db.live_notify import AfterCommit
from track_engine.db.timescale_jobs import PolicyRunner
from track_engine.metrics import EngineMetrics
from track_engine.pipeline import Alert, Engine, ProcessResult
from track_engine.retention import apply_retention
from track_engine.screening import UNBOUNDED, ReadWindow, Refusal, screen

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
    reads_quarantined: dict[str, int] = field(default_factory=dict)  # by Refusal
    messages_acked: int = 0
    db_reconnects: int = 0
    last_batch_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


@dataclass(frozen=True)
class EngineConfig:
    """Where the engine reads from and writes to."""

    database_url: str
    mqtt_url: str
    topic_prefix: str = TOPIC_ROOT
    shards: tuple[int, ...] = tuple(range(DEFAULT_SHARD_COUNT))
    client_id: str = "tagtrail-engine-0"
    # A persistent session keeps QoS 1 messages for us while we are down; finite runs (demo,
    # tests) use a clean one so that they leave no session behind in the broker.
    persistent_session: bool = True
    gap_s: float = 10.0
    # A read arriving up to this much event time after its passage closed is merged into it
    # (a batch the broker redelivers after its ack wait), not stored as a second passage.
    allowed_lateness_s: float = 120.0
    # While no reads arrive, the watermark follows the engine's clock this much behind it,
    # so that passages close on time in a quiet city (Engine.tick).
    idle_skew_s: float = 2.0
    max_batch_messages: int = 64
    max_wait_s: float = 0.1
    # Messages received and not yet taken by the worker. When it is full, paho's network thread
    # waits, TCP pushes back and the backlog stays in the broker (which keeps it on disk) rather
    # than in our memory: Mosquitto 2.0's max_inflight_messages does not bound what it sends
    # a subscriber that acks (docs/deployment.md).
    max_inbox_messages: int = 128
    # Prometheus exporter port (None: no exporter, e.g. in tests and the demo).
    metrics_port: int | None = None
    metrics_addr: str = "127.0.0.1"
    # Housekeeping: partitions ahead of the clock, and raw-read retention (None: keep all).
    retention_days: int | None = None
    partition_ahead_days: int = 3
    housekeeping_interval_s: float = 3600.0
    # The watermark never runs ahead of wall clock + this (a reader clock jumping forward);
    # None turns the cap off.
    max_future_s: float | None = 60.0
    # Reads older than this, or further ahead of the engine's clock than that, are not stored
    # but quarantined and counted (None: no bound that side but 2000-2100). The window also
    # bounds how many daily partitions one batch can need. Settings.read_max_age_days and
    # Settings.read_max_ahead_s set them for `tagtrail engine`.
    read_max_age_s: float | None = 30 * 86_400.0
    read_max_ahead_s: float | None = 300.0
    # Backoff between attempts to reach a database that went away.
    reconnect_min_s: float = 0.2
    reconnect_max_s: float = 5.0


# The open-tags gauge counts distinct tags over every pending read (a million or more at full
# rate); refreshed at most this often instead of after every micro-batch.
_OPEN_TAGS_EVERY_S = 1.0
# A worker busy with micro-batches still lets the watermark follow the clock this often.
_TICK_EVERY_S = 1.0
# After a tick the database refused, the next one waits this long (no log line every 0.2 s).
_TICK_RETRY_S = 5.0
# How often paho's thread, waiting for room in a full inbox, checks for a stop.
_INBOX_WAIT_S = 0.5


@dataclass(frozen=True, slots=True)
class Received:
    """A message as it came off the broker, already decoded and checked.

    Decoding happens on paho's network thread, when the message arrives: it then overlaps the
    worker's waits on PostgreSQL (a busy worker spends half its time waiting for the COPY).
    """

    msg: mqtt.MQTTMessage
    batch: ReadBatch | None  # the reads that may be stored (None: none may)
    problem: str | None  # why the message (or some of its reads) goes to the quarantine
    origin: tuple[str, int] | None = None  # (gateway id, batch_seq) to confirm once committed
    refused: dict[Refusal, int] = field(default_factory=dict)  # reads not stored, by reason


def _origin(payload: bytes) -> tuple[str, int] | None:
    """(gateway id, batch_seq) of a payload that broke the wire contract, if it names them:
    a quarantined batch is dealt with, and its gateway must not send it again forever."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    gateway_id, seq = doc.get("gateway_id"), doc.get("batch_seq")
    if isinstance(gateway_id, str) and isinstance(seq, int) and not isinstance(seq, bool):
        return gateway_id, seq
    return None


def receive(
    msg: mqtt.MQTTMessage, *, window: ReadWindow = UNBOUNDED, now_us: int | None = None
) -> Received:
    """Decode and screen one message; never raises (a bad message is quarantined, not lost).

    Read times are judged against ``window`` around ``now_us`` (default: the engine's clock
    now), not against the gateway's clock: the engine trusts no publisher.
    """
    payload = bytes(msg.payload)
    try:
        batch = decode_batch(payload)
    except WireError as exc:
        return Received(msg, None, str(exc), _origin(payload))
    except Exception as exc:  # a decoder bug must not stop the worker: keep the message
        log.exception("decoding a batch failed unexpectedly")
        return Received(msg, None, f"undecodable ({type(exc).__name__}: {exc})", _origin(payload))
    origin = (batch.gateway_id, batch.batch_seq)
    try:
        now = time.time_ns() // 1000 if now_us is None else now_us
        screened = screen(batch, window=window, now_us=now)
    except Exception as exc:
        log.exception("checking a batch failed unexpectedly")
        return Received(msg, None, f"uncheckable ({type(exc).__name__}: {exc})", origin)
    return Received(msg, screened.batch, screened.problem, origin, screened.refused)


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
        self._next_open_tags = 0.0
        self._next_tick = 0.0
        self._tick_paused_until = 0.0
        self._inbox: queue.Queue[Received] = queue.Queue(maxsize=config.max_inbox_messages)
        self._stop = threading.Event()
        self._window = ReadWindow(config.read_max_age_s, config.read_max_ahead_s)
        self._conn = psycopg.connect(config.database_url)
        self._listen = self._connect_listener()
        self.engine = Engine(
            self._conn,
            gap_s=config.gap_s,
            max_future_s=config.max_future_s,
            allowed_lateness_s=config.allowed_lateness_s,
            idle_skew_s=config.idle_skew_s,
        )
        self.engine.unknown_readers.on_held = self.metrics.reads_unknown_reader.inc
        self._live = AfterCommit(self._conn)
        self._policies = PolicyRunner(config.database_url)
        # A cluster's brokers as a list (mqtt://a:1883,b:1883,c:1883): reconnects go round them.
        self._brokers = BrokerFailover(mqtt_targets(config.mqtt_url), keepalive=30)
        target = self._brokers.current
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            clean_session=not config.persistent_session,
            manual_ack=True,
        )
        target.configure(self._client)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._client.on_connect_fail = self._next_broker
        self._client.reconnect_delay_set(min_delay=1, max_delay=10)
        self._client.connect_async(target.host, target.port, keepalive=30)
        self.connected = threading.Event()

    def _connect_listener(self) -> psycopg.Connection:
        listen = psycopg.connect(self.config.database_url, autocommit=True)
        listen.execute("LISTEN tagtrail_watches")
        return listen

    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, reason: object, *_: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            # Wrong password, not authorised: paho retries; say why, once per attempt.
            log.error("mqtt: broker refused the connection: %s", reason)
            return
        prefix = f"{self.config.topic_prefix}/reads"
        client.subscribe([(reads_topic(shard, prefix), 1) for shard in self.config.shards])

    def _next_broker(
        self, client: mqtt.Client, _u: object, _f: object = None, reason: object = None, *_: object
    ) -> None:
        target = self._brokers.next(client, reason)
        if len(self._brokers.targets) > 1:
            log.warning("mqtt: connection lost or refused; next try %s", target.redacted_url())

    def _on_subscribe(self, client: mqtt.Client, *_: object) -> None:
        # Ready only once the broker has acknowledged the subscriptions: a message published
        # before the SUBACK would not be routed to us. A broker that lost our session (a
        # crash) dropped the batches published before now: tell the gateways to send their
        # unconfirmed ones again.
        self.connected.set()
        announcement = orjson.dumps({"v": 1, "engine": self.config.client_id})
        client.publish(stored_topic(self.config.topic_prefix), announcement, qos=1)

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        item = receive(msg, window=self._window)
        while not self._stop.is_set():
            try:
                self._inbox.put(item, timeout=_INBOX_WAIT_S)
                return
            except queue.Full:
                continue  # the worker is behind: wait here, so the broker waits too
        # Stopping: dropped unacknowledged, so the broker delivers it again.

    @property
    def inbox_messages(self) -> int:
        """Messages received and waiting for the worker (at most ``max_inbox_messages``)."""
        return self._inbox.qsize()

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
        self._run_timescale_jobs()
        if self.config.retention_days is not None:
            result = apply_retention(self._conn, retention_days=self.config.retention_days, now=now)
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
        self._stop = stop
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
            self._poll_watch_changes()
            if time.monotonic() >= self._next_housekeeping:
                self._next_housekeeping = time.monotonic() + self.config.housekeeping_interval_s
                self.housekeeping()
        except psycopg.OperationalError as exc:
            self._reconnect(exc)
            self._next_housekeeping = 0.0  # do it as soon as the database is back
            return 0
        try:
            first = self._inbox.get(timeout=timeout_s)
        except queue.Empty:
            self._tick(idle=True)
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
            self._reconnect(exc)
            return
        except psycopg.Error as exc:
            # Refused while storing what closed (the engine's memory is as it was): the next
            # micro-batch's fold, or a tick a little later, tries again. Not a stop.
            log.error("storing passages closed by the clock failed: %s", exc)
            self._tick_paused_until = now + _TICK_RETRY_S
            return
        self._add_passages_stored(stored)

    def _add_passages_stored(self, stored: int) -> None:
        """Passages stored outside a micro-batch (a tick, the final flush): metric and counter."""
        self._live.passages(self._conn, stored)
        if stored:
            self.metrics.passages_stored.inc(stored)
            with self.counters.lock:
                self.counters.passages_stored += stored

    def _process(self, messages: list[Received]) -> None:
        """Store one micro-batch (redone until it commits), then acknowledge its messages."""
        while True:
            try:
                self._store(messages)
                break
            except psycopg.OperationalError as exc:
                self._reconnect(exc)
                if self._stop.is_set():
                    return  # not acknowledged: the broker redelivers to the next worker
            except Exception as exc:
                if self._worker_unavailable(exc):
                    if self._stop.is_set():
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
        self._confirm(messages)
        for item in messages:
            self._client.ack(item.msg.mid, item.msg.qos)
        with self.counters.lock:
            self.counters.messages_acked += len(messages)

    def _confirm(self, messages: list[Received]) -> None:
        """Tell each gateway which of its batches are committed (stored or quarantined), so
        that it may delete them from its spool. A lost confirmation only means a batch is
        sent again and stored once."""
        by_gateway: dict[str, list[int]] = {}
        for item in messages:
            if item.origin is not None and topic_safe_id(item.origin[0]):
                by_gateway.setdefault(item.origin[0], []).append(item.origin[1])
        prefix = self.config.topic_prefix
        for gateway_id, seqs in by_gateway.items():
            self._client.publish(
                stored_topic(prefix, gateway_id), encode_stored(gateway_id, seqs), qos=1
            )

    def _publish_alerts(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self._client.publish(
                f"{self.config.topic_prefix}/alerts/{alert.watch_id}", alert_payload(alert), qos=1
            )

    def _store(self, messages: list[Received]) -> ProcessResult:
        """Quarantine what breaks the wire contract and store the rest, in one transaction."""
        batches = [item.batch for item in messages if item.batch is not None]
        bad = [(item.msg, item.problem) for item in messages if item.problem is not None]
        started = time.monotonic()
        prepared = self.engine.prepare(batches)
        # Partitions in a short transaction of their own, committed before the micro-batch's:
        # the micro-batch then takes no lock on the partitioned tables' catalog.
        self.engine.ensure_partitions(prepared)
        # Alerts first, committed on their own: the duty desk hears a stolen bike without
        # waiting for the micro-batch's COPY and fold (and on MQTT right away).
        alerts = self.engine.raise_alerts(prepared)
        self._live.alerts(self._conn, [(a.alert_id, a.bike_id) for a in alerts])
        self._publish_alerts(alerts)
        with self.engine.micro_batch():
            for msg, reason in bad:
                self._quarantine(msg, reason)
            result = self.engine.process(prepared, alerts=False)
        self._live.passages(self._conn, result.passages_stored)
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
                self._reconnect(exc)
                if self._stop.is_set():
                    raise
            except Exception as exc:
                if self._worker_unavailable(exc):
                    if self._stop.is_set():
                        raise
                    continue
                by_database = isinstance(exc, psycopg.Error)
                who = "database refused" if by_database else "engine failed on"
                reason = f"{who} the batch: {type(exc).__name__}: {exc}"
                try:
                    with self.engine.micro_batch():
                        self._quarantine(item.msg, reason[:2000])
                except psycopg.OperationalError as lost:  # the database went away meanwhile
                    self._reconnect(lost)
                    if self._stop.is_set():
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
            self._conn, source=f"engine:{msg.topic}", reason=reason, payload=bytes(msg.payload)
        )

    def _count(
        self,
        batches: int,
        quarantined: int,
        result: ProcessResult,
        refused: dict[Refusal, int] | None = None,
    ) -> None:
        self.metrics.quarantined.inc(quarantined)
        for why, count in (refused or {}).items():
            self.metrics.reads_quarantined.labels(reason=why.value).inc(count)
        with self.counters.lock:
            self.counters.quarantined += quarantined
            for why, count in (refused or {}).items():
                total = self.counters.reads_quarantined
                total[why.value] = total.get(why.value, 0) + count
            self.counters.batches += batches
            self.counters.reads_received += result.reads_received
            self.counters.reads_stored += result.reads_stored
            self.counters.passages_stored += result.passages_stored
            self.counters.alerts += len(result.alerts)
            self.counters.last_batch_at = time.monotonic()

    def _reconnect(self, exc: Exception) -> None:
        """Replace both database connections, retrying with backoff until it works or stop."""
        log.error("database connection lost (%s); reconnecting", str(exc).strip() or type(exc))
        for conn in (self._conn, self._listen):
            with contextlib.suppress(psycopg.Error):
                conn.close()
        delay = self.config.reconnect_min_s
        while not self._stop.is_set():
            try:
                self._conn = psycopg.connect(self.config.database_url, connect_timeout=5)
                self._listen = self._connect_listener()
                self.engine.reconnect(self._conn)
            except psycopg.OperationalError as again:
                for conn in (self._conn, self._listen):
                    with contextlib.suppress(psycopg.Error):
                        conn.close()  # closing a closed connection is a no-op
                log.warning("database still unreachable (%s); next try in %.1f s", again, delay)
                self._stop.wait(delay)  # backoff, not synchronisation
                delay = min(delay * 2, self.config.reconnect_max_s)
                continue
            with self.counters.lock:
                self.counters.db_reconnects += 1
            self.metrics.db_reconnects.inc()
            log.warning("database connection restored")
            return

    def _worker_unavailable(self, exc: Exception) -> bool:
        """A Citus worker was away (track_engine.db.distributed): reconnect, wait a moment and
        redo the micro-batch, as for a lost connection of our own; never quarantine it."""
        if not is_worker_unavailable(exc):
            return False
        self._reconnect(exc)
        self._stop.wait(self.config.reconnect_min_s)  # backoff, not synchronisation
        return True

    def _observe(self, messages: int, result: ProcessResult, seconds: float) -> None:
        m = self.metrics
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
            m.open_tags.set(self.engine.open_tags)
        m.pending_reads.set(self.engine.pending_reads)
        m.held_reads.set(self.engine.held_reads)
        m.inbox_messages.set(self.inbox_messages)
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
        self._add_passages_stored(stored)
        return stored

    def close(self) -> None:
        """Disconnect from the broker and the database."""
        self._stop.set()  # paho's thread may be waiting for room in the inbox
        self._client.disconnect()
        self._client.loop_stop()
        self._conn.close()
        self._listen.close()
