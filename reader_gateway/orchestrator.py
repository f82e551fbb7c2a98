"""The gateway process: transports in, spool in the middle, broker out.

Steps of one turn of :meth:`Gateway.step`, in order:
1. take what the transports queued (raw MQTT messages; serial chunks, decoded on their thread);
2. decode raw messages, count frames/rejects per reader, normalize the reads (each bound to
   the reader its topic or port proves; refusals counted and logged);
3. cut batches when one is full, the oldest pending read waited ``max_delay_s``, or raw
   messages are waiting for their acknowledgement and nothing else is queued;
   append them to the spool with one fsync, and only then acknowledge the raw messages
   (a read counts as accepted once it is spooled); when the spool cannot write, the cut's
   raw messages stay unacknowledged (the broker keeps them) and are handled again every
   ``_HOLD_RETRY_S``;
4. process PUBACKs and the engines' stored confirmations: a record leaves the spool once an
   engine confirmed it committed it (``spool.keep_until = "stored"``, the default; a broker's
   PUBACK is not durable: Mosquitto saves its queues only now and then), or at its PUBACK
   (``"published"``); unconfirmed records are published again after a reconnect, when an
   engine announces it (re)subscribed, and when none was confirmed for ``confirm_timeout_s``;
5. publish unsent spool records in order while fewer than ``max_inflight`` are unacknowledged
   or unconfirmed (and only while connected: what is not in flight waits on disk, not in
   paho's memory or the broker's);
6. publish reader status (retained) on a change and every ``status_interval_s``.
"""

from __future__ import annotations

import fnmatch
import logging
import queue
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from prometheus_client import start_http_server

from reader_gateway.config import GatewayConfig, MqttSubscriptionConfig
from reader_gateway.health import GatewayMetrics, ReaderHealth, Status
from reader_gateway.pipeline.clock import ClockEstimator
from reader_gateway.pipeline.normalize import Normalizer
from reader_gateway.pipeline.refusals import ReadWindow
from reader_gateway.protocols import DECODERS, make_decoder
from reader_gateway.protocols.base import Decoder, DecodeResult, PayloadError, Reject
from reader_gateway.quarantine import Quarantine, QuarantineEntry
from reader_gateway.spool import Spool, SpoolError, SpoolFullError
from reader_gateway.transport.llrp import LlrpReader, apply_state
from reader_gateway.transport.llrp_session import LlrpChunk, LlrpState
from reader_gateway.transport.mqtt_link import (
    MqttLink,
    RawMessage,
    reader_status_topic,
    topic_matches,
)
from reader_gateway.transport.serial import PortState, SerialChunk, SerialReader
from reader_gateway.wire import ReadBatch, encode_batch, reads_topic

log = logging.getLogger(__name__)

_RECORD_HEAD = struct.Struct(">HI")  # shard, number of reads; then the wire batch bytes
_MAX_TAKE = 10_000  # inbox items handled per step, so acks and publishing keep up
# Serial chunks (a few KiB of decoded frames each) may wait for the gateway thread up to this
# many; past it the reader threads wait, so a busy port backs up in the OS and the reader
# instead of in this process (unbounded, a gateway behind its ports held 1.7 GB of reads).
_MAX_QUEUED = 256
_FINISH_S = 5.0  # how long stopping may take to spool what the ports had read
_QUEUE_WAIT_S = 0.002
_STATUS_CHECK_S = 0.5
_REFUSAL_LOG_EVERY_S = 10.0
_HOLD_RETRY_S = 1.0  # how often raw messages the spool refused are handled again
_MAX_HELD = 10_000  # raw messages kept in memory for that; past it the broker keeps them
_QUARANTINE_LOG_BYTES = 512  # of a refused message, logged as evidence
_CONFIRM_BACKOFF = 16  # the wait for a confirmation grows to at most this many timeouts


def encode_record(shard: int, batch: ReadBatch) -> bytes:
    """Spool record of one batch: shard, read count, wire bytes."""
    return _RECORD_HEAD.pack(shard, len(batch)) + encode_batch(batch)


def decode_record(payload: bytes) -> tuple[int, int, bytes]:
    """(shard, read count, wire bytes) of a spool record."""
    shard, count = _RECORD_HEAD.unpack_from(payload)
    return shard, count, payload[_RECORD_HEAD.size :]


class Gateway:
    """One gateway: serial readers and raw MQTT subscriptions to spooled, published batches."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.metrics = GatewayMetrics()
        clock = config.clock
        self.normalizer = Normalizer(
            config.gateway_id,
            shard_count=config.shard_count,
            dedupe_window_s=config.batching.dedupe_window_s,
            max_batch_reads=config.batching.max_reads,
            clock=ClockEstimator(
                clock.offsets_s,
                window=clock.window,
                min_samples=clock.min_samples,
                enabled=clock.estimate,
            ),
            reader_aliases=config.reader_aliases,
            read_window=ReadWindow(clock.max_read_age_s, clock.max_read_lead_s),
        )
        self.spool = Spool(
            config.spool.dir,
            max_bytes=config.spool.max_bytes,
            segment_bytes=config.spool.segment_bytes,
        )
        self.metrics.spool_corrupt.set(self.spool.corrupt_segments)
        self.quarantine = Quarantine(config.spool.dir, max_bytes=config.spool.quarantine_max_bytes)
        self.readers: dict[str, ReaderHealth] = {
            s.reader_id: ReaderHealth(s.reader_id, s.protocol, connected=False)
            for s in config.serial
        } | {r.reader_id: ReaderHealth(r.reader_id, "llrp", connected=False) for r in config.llrp}
        self.messages_in = 0
        self.reads_accepted = 0
        self.reads_refused = 0  # serial reads the spool could not take: lost
        self.reads_deferred = 0  # reads of raw messages left unacknowledged for the broker
        self.raw_left_with_broker = 0  # held messages past _MAX_HELD: back after a reconnect
        self._held: list[RawMessage] = []  # raw messages whose cut the spool refused
        self._held_retry_at = 0.0
        # Reads of these readers come from serial ports, which cannot send them again.
        self._serial_names = {
            config.reader_aliases.get(s.reader_id, s.reader_id) for s in config.serial
        } | {config.reader_aliases.get(r.reader_id, r.reader_id) for r in config.llrp}
        self._serial_buses = [p for s in config.serial for p in s.frame_readers]
        self.batches_out = 0
        self.reads_out = 0
        self._inbox: queue.Queue[Any] = queue.Queue()
        self._acks: queue.Queue[int] = queue.Queue()
        self._confirms: queue.Queue[list[int]] = queue.Queue()
        self._keep_until_stored = config.spool.keep_until == "stored"
        # mid -> (record id, reads, republish round it was published in)
        self._inflight: dict[int, tuple[int, int, int]] = {}
        # record id -> when its PUBACK came: acknowledged by the broker, not yet confirmed by
        # an engine
        self._unconfirmed: dict[int, float] = {}
        self._reads_of: dict[int, int] = {}  # record id -> reads, from its first publish on
        self._round = 0  # bumped at every republish
        self._connects_seen = 0
        self._confirm_wait_s = config.spool.confirm_timeout_s
        self.reads_confirmed = 0
        self.batches_republished = 0
        self._unacked_raw: list[RawMessage] = []
        self._pending_since: float | None = None
        self._decoders: dict[tuple[str, str], Decoder] = {}
        self._status_sent: dict[str, tuple[Status, float]] = {}
        self._next_status_check = 0.0
        self._next_confirm_check = 0.0
        self._stepped = threading.Condition()
        self._metrics_server: Any = None
        self._next_refusal_log = 0.0
        self._next_quarantine_log: dict[tuple[str, str], float] = {}
        self.link = MqttLink(
            config,
            filters=[m.topic for m in config.mqtt],
            inbox=self._inbox,
            acks=self._acks,
            confirms=self._confirms if self._keep_until_stored else None,
        )
        self.connected = self.link.ready
        self._closing = threading.Event()
        self._reads_by_reader: Counter[str] = Counter()  # accepted, not yet in the metrics
        self.serial = [SerialReader(s, self._from_serial) for s in config.serial]
        # LLRP readers' reports, like serial bytes, exist nowhere else once read.
        self.llrp = [LlrpReader(r, self._from_serial) for r in config.llrp]

    def _from_serial(self, item: SerialChunk | PortState | LlrpChunk | LlrpState) -> None:
        """Queue a serial reader's output, waiting while the gateway thread is behind."""
        while self._inbox.qsize() >= _MAX_QUEUED and not self._closing.is_set():
            self._closing.wait(_QUEUE_WAIT_S)  # backpressure, not synchronisation
        self._inbox.put(item)

    def _ports(self) -> list[SerialReader | LlrpReader]:
        return [*self.serial, *self.llrp]

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Serve metrics, connect to the broker, open the serial ports."""
        port = self.config.health.metrics_port
        if port is not None:
            self._metrics_server = start_http_server(
                port, addr=self.config.health.metrics_host, registry=self.metrics.registry
            )
        self.link.start()
        for reader in self._ports():
            reader.start()

    def run(self, stop: threading.Event) -> None:
        """Run steps until ``stop`` is set, then stop the ports and spool what is pending."""
        while not stop.is_set():
            self.step(timeout_s=0.05)
        self.finish()

    def finish(self) -> None:
        """Stop the serial ports, then handle and spool everything they read.

        The ports stop first: a chunk a port read after the last drain would otherwise be
        in no spool (its bytes are gone from the port). The inbox is drained whole, past one
        step's item limit, within ``_FINISH_S`` (the broker side may still be delivering).
        """
        self._closing.set()  # a port waiting for room in the inbox puts its chunk and ends
        ports = self._ports()
        for port in ports:  # all asked first, so none reads on while another stops
            port.stop(timeout_s=0.0)
        for port in ports:
            port.stop()
        deadline = time.monotonic() + _FINISH_S
        while not self._inbox.empty() and time.monotonic() < deadline:
            self._drain_inbox(block_s=0)
        if not self._inbox.empty():
            log.error(
                "stopping: %d inbox items not handled within %.0f s (lost if serial)",
                self._inbox.qsize(),
                _FINISH_S,
            )
        if self.normalizer.pending_reads or self._unacked_raw:
            self._cut()

    def close(self) -> None:
        """Stop the ports, say offline, disconnect, close the spool and the metrics server."""
        self._closing.set()
        for port in self._ports():
            port.stop()
        self.link.close()
        self.spool.close()
        if self._metrics_server is not None:
            server, thread = self._metrics_server
            server.shutdown()
            thread.join(2)

    def idle(self) -> bool:
        """True when nothing is waiting to be decoded, spooled or acknowledged."""
        return (
            self._inbox.empty()
            and self.normalizer.pending_reads == 0
            and not self._unacked_raw
            and not self._held
            and self.spool.unacked == 0
        )

    @property
    def inflight(self) -> int:
        """Batches published and not yet acknowledged (never more than ``max_inflight``)."""
        return len(self._inflight)

    @property
    def inflight_reads(self) -> int:
        """Reads in the batches that are in flight."""
        return sum(reads for _, reads, _ in self._inflight.values())

    @property
    def unconfirmed(self) -> int:
        """Batches the broker acknowledged and no engine confirmed yet."""
        return len(self._unconfirmed)

    def wait_until(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Block until ``condition()`` holds after a step (for callers on other threads)."""
        with self._stepped:
            return self._stepped.wait_for(condition, timeout_s)

    # -- one step ----------------------------------------------------------------------------

    def step(self, timeout_s: float = 0.05) -> None:
        """One turn of the pipeline (see the module docstring)."""
        self._drain_inbox(block_s=timeout_s)
        now = time.monotonic()
        if self._held and now >= self._held_retry_at:
            self._retry_held()
        if self._should_cut(now):
            self._cut()
        self._drain_acks()
        self._pump()
        if now >= self._next_status_check:
            self._next_status_check = now + _STATUS_CHECK_S
            self._flush_read_counts()
            self._publish_status(time.time())
        with self._stepped:
            self._stepped.notify_all()

    def _drain_inbox(self, *, block_s: float) -> None:
        try:
            item = self._inbox.get(timeout=block_s) if block_s > 0 else self._inbox.get_nowait()
        except queue.Empty:
            return
        taken = 0
        while True:
            self._handle(item)
            taken += 1
            # Cut as soon as a batch is full, so that a burst never makes one oversized batch,
            # and publish what was cut right away: busy serial ports keep the inbox full, and
            # publishing only after the inbox was drained let the spool grow without bound
            # while the broker waited (reads accepted, not sent).
            if self.normalizer.fullest_batch >= self.config.batching.max_reads:
                self._cut()
                self._drain_acks()
                self._pump()
            # Stop before taking another item, never after: an item taken out of the inbox
            # and not handled is lost (its bytes are gone from the port). Busy ports keep the
            # inbox from emptying, so this limit is reached at an overfeed; the rest waits.
            if taken >= _MAX_TAKE:
                return
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return

    def _handle(self, item: RawMessage | SerialChunk | PortState | LlrpChunk | LlrpState) -> None:
        if isinstance(item, LlrpChunk):
            reader = item.config
            self._apply(reader.reader_id, "llrp", item.result, item.received_at, reader.antenna_map)
        elif isinstance(item, LlrpState):
            apply_state(item, self._health(item.config.reader_id, "llrp"), self.metrics)
            self._status_sent.pop(item.config.reader_id, None)  # publish the change now
            self._next_status_check = 0.0
        elif isinstance(item, RawMessage):
            self.messages_in += 1
            self._unacked_raw.append(item)
            self._handle_raw(item)
        elif isinstance(item, SerialChunk):
            cfg = item.config
            self._apply(
                cfg.reader_id,
                cfg.protocol,
                item.result,
                item.received_at,
                cfg.antenna_map,
                may_name=cfg.frame_readers,
            )
        else:
            health = self._health(item.config.reader_id, item.config.protocol)
            health.connected = item.connected
            self.metrics.port_open.labels(item.config.reader_id).set(1 if item.connected else 0)
            self._next_status_check = 0.0  # publish the change now

    def _handle_raw(self, raw: RawMessage, *, replay: bool = False) -> None:
        sub = self._subscription(raw.topic)
        parts = raw.topic.split("/")
        protocol = (sub.protocol if sub else None) or (parts[-2] if len(parts) > 1 else "")
        reader_id = (sub.reader_id if sub else None) or parts[-1]
        antenna_map = sub.antenna_map if sub else {}
        if protocol not in DECODERS:
            error = PayloadError(f"no decoder for protocol {protocol!r} (topic {raw.topic})")
            result = DecodeResult(rejects=[Reject(error, raw.payload)])
        else:
            decoder = self._decoders.get((protocol, reader_id))
            if decoder is None:
                decoder = self._decoders[(protocol, reader_id)] = make_decoder(protocol)
            result = decoder.decode(raw.payload, raw.received_at)
        self._apply(
            reader_id,
            protocol,
            result,
            raw.received_at,
            antenna_map,
            raw=raw.payload,
            replay=replay,
        )

    def _subscription(self, topic: str) -> MqttSubscriptionConfig | None:
        for sub in self.config.mqtt:
            if topic_matches(sub.topic, topic):
                return sub
        return None

    def _health(self, reader_id: str, protocol: str) -> ReaderHealth:
        health = self.readers.get(reader_id)
        if health is None:
            health = self.readers[reader_id] = ReaderHealth(reader_id, protocol)
        return health

    def _apply(
        self,
        reader_id: str,
        protocol: str,
        result: DecodeResult,
        received_at: datetime,
        antenna_map: dict[int, int],
        *,
        raw: bytes = b"",
        may_name: Sequence[str] = (),
        replay: bool = False,
    ) -> None:
        """Count a decoded message or chunk per reader and normalize its reads. A ``replay``
        (a held message handled again) only normalizes: it was counted the first time."""
        health = self._health(reader_id, protocol)
        reads = result.read_count
        if not replay:
            self._count_decoded(health, result, received_at)
        if not reads:
            return
        norm = self.normalizer
        try:
            kept = 0
            for block in result.blocks:
                kept += norm.add_block(
                    block,
                    reader_id=reader_id,
                    received_at=received_at,
                    antenna_map=antenna_map,
                    may_name=may_name,
                )
            kept += norm.add(
                result.reads,
                reader_id=reader_id,
                received_at=received_at,
                antenna_map=antenna_map,
                may_name=may_name,
            )
        except ValueError:  # a read no reader id can be given to: a config mistake (or a bug)
            health.rejects["no_reader_id"] += reads
            log.exception("reader %s: its reads could not be normalized", reader_id)
            # Refusals of this message's earlier blocks are its own: never filed under the next.
            norm.take_refusals()
            return
        if replay:
            norm.take_refusals()  # counted and quarantined the first time
        else:
            refused = self._count_refusals(health, raw, received_at)
            health.reads += kept
            health.duplicates += reads - kept - refused
            self.metrics.duplicates.labels(reader_id).inc(reads - kept - refused)
        # Every read kept is the transport's reader's (reads naming another were refused), so
        # the clock offset to show is that reader's.
        own = norm.reader_aliases.get(reader_id, reader_id)
        health.clock_offset_s = norm.clock.offset_us(own) / 1e6
        if kept and self._pending_since is None:
            self._pending_since = time.monotonic()

    def _count_decoded(
        self, health: ReaderHealth, result: DecodeResult, received_at: datetime
    ) -> None:
        """Count a message's frames and quarantine its rejects, per reader."""
        reader_id = health.reader_id
        health.messages += 1
        frames = result.read_count + len(result.events) + len(result.rejects)
        if frames:
            health.frames += frames
            health.last_heard_s = received_at.timestamp()
            if result.read_count:
                health.last_read_s = health.last_heard_s
            self.metrics.frames.labels(reader_id).inc(frames)
            self.metrics.last_heard.labels(reader_id).set(health.last_heard_s)
        for rej in result.rejects:
            health.rejects[rej.reason] += 1
            self.metrics.rejects.labels(reader_id, rej.reason).inc()
            self._quarantine(
                QuarantineEntry(received_at, reader_id, rej.reason, 0, str(rej.error), rej.raw)
            )
            log.info("reader %s: rejected %d bytes: %s", reader_id, len(rej.raw), rej.error)

    def _count_refusals(self, health: ReaderHealth, raw: bytes, received_at: datetime) -> int:
        """Count, quarantine and log what normalization refused; return how many reads.

        Every refusal goes to the quarantine file with the message's bytes (a forged message
        is evidence; a serial chunk's bytes are not kept, the detail says what was wrong). The
        log line says the same at most once per reader and reason every
        ``_REFUSAL_LOG_EVERY_S``, so that a hostile reader cannot flood the log.
        """
        refused = 0
        now = time.monotonic()
        for refusal in self.normalizer.take_refusals():
            refused += refusal.reads
            health.rejects[refusal.reason] += refusal.reads
            self.metrics.rejects.labels(health.reader_id, refusal.reason).inc(refusal.reads)
            self._quarantine(
                QuarantineEntry(
                    received_at, health.reader_id, refusal.reason, refusal.reads,
                    refusal.detail, raw,
                )
            )  # fmt: skip
            key = (health.reader_id, refusal.reason)
            if now < self._next_quarantine_log.get(key, 0.0):
                continue  # counted; one line per reader and reason per interval is enough
            self._next_quarantine_log[key] = now + _REFUSAL_LOG_EVERY_S
            log.warning(
                "reader %s: %d reads refused (%s): %s; message bytes %s",
                health.reader_id,
                refusal.reads,
                refusal.reason,
                refusal.detail,
                raw[:_QUARANTINE_LOG_BYTES].hex() if raw else "(serial chunk)",
            )
        return refused

    def _quarantine(self, entry: QuarantineEntry) -> None:
        failed = self.quarantine.failed
        self.quarantine.add(entry)
        if self.quarantine.failed > failed:
            self.metrics.quarantine_errors.inc()

    # -- spooling ------------------------------------------------------------------------------

    def _should_cut(self, now: float) -> bool:
        pending = self.normalizer.pending_reads
        if not pending:
            return bool(self._unacked_raw)  # messages without reads: just acknowledge them
        if self.normalizer.fullest_batch >= self.config.batching.max_reads:
            return True
        if self._pending_since is not None and (
            now - self._pending_since >= self.config.batching.max_delay_s
        ):
            return True
        # A broker delivers only a few unacknowledged messages at a time (Mosquitto: 20), so
        # holding acks for a full batch would stall the subscription.
        return bool(self._unacked_raw) and self._inbox.empty()

    def _cut(self) -> None:
        now_us = time.time_ns() // 1000
        batches = self.normalizer.take(
            now_us=now_us, force=True, first_batch_seq=self.spool.next_id
        )
        self._pending_since = None
        refusal: SpoolError | None = None
        if batches:
            accepted, refusal = self._spool(
                [encode_record(shard, batch) for shard, batch in batches]
            )
            for _, batch in batches[:accepted]:
                self.reads_accepted += len(batch)
                counts = np.bincount(batch.reader, minlength=len(batch.readers)).tolist()
                self._reads_by_reader.update(dict(zip(batch.readers, counts, strict=True)))
            if refusal is not None:
                self._refuse(batches[accepted:], refusal)
            self.metrics.spool_bytes.set(self.spool.bytes_used)
            self.metrics.spool_unacked.set(self.spool.unacked)
        if refusal is None:
            for raw in self._unacked_raw:
                self.link.ack(raw)
        else:
            self._hold(self._unacked_raw)
        self._unacked_raw.clear()

    def _hold(self, raws: list[RawMessage]) -> None:
        """Keep raw messages whose cut the spool refused unacknowledged, to handle again.

        Unacknowledged, a QoS 1 message stays the broker's: it is delivered again to this
        session after a reconnect or a restart, and the broker queues what comes after it
        (Mosquitto sends a client at most ``max_inflight_messages`` unacknowledged ones). The
        gateway handles held messages again every ``_HOLD_RETRY_S`` and acknowledges them
        once a cut is spooled. Their reads that did fit the spool are spooled twice then;
        the engine stores a read once by its natural key.
        """
        for raw in raws:
            if len(self._held) < _MAX_HELD:
                self._held.append(raw)
            else:  # still unacknowledged: the broker has it and sends it after a reconnect
                self.raw_left_with_broker += 1
        # A held message's reads were remembered for de-duplication: handled again, they
        # would be dropped as repeats of themselves.
        self.normalizer.forget_repeats()
        self._held_retry_at = time.monotonic() + _HOLD_RETRY_S
        self.metrics.raw_held.set(len(self._held))

    def _retry_held(self) -> None:
        """Handle the held raw messages again and cut: acknowledged if the spool takes them."""
        held, self._held = self._held, []
        for raw in held:
            self._unacked_raw.append(raw)
            self._handle_raw(raw, replay=True)
        self._cut()
        self.metrics.raw_held.set(len(self._held))

    def _spool(self, records: list[bytes]) -> tuple[int, SpoolError | None]:
        """Append a cut's records with one fsync; returns how many were spooled and why the
        rest were not. A cut that does not fit whole (a busy port hands over up to 64 KiB at
        once) keeps the records that fit, in order, so that their batch numbers stay their
        record ids; the rest are refused."""
        try:
            self.spool.append(records)
            return len(records), None
        except SpoolFullError as exc:
            if len(records) == 1:
                return 0, exc
            refusal: SpoolError = exc
        except SpoolError as exc:
            return 0, exc
        spooled = 0
        for record in records:
            try:
                self.spool.append([record])
            except SpoolError as exc:
                refusal = exc
                break
            spooled += 1
        return spooled, refusal

    def _from_serial_port(self, name: str) -> bool:
        """Whether a reader's reads reach this gateway through a serial port."""
        return name in self._serial_names or any(
            fnmatch.fnmatchcase(name, pattern) for pattern in self._serial_buses
        )

    def _flush_read_counts(self) -> None:
        """Move accepted-read counts into the per-reader metric (every status check: one
        label lookup per reader then, instead of one per reader per batch)."""
        for name, count in self._reads_by_reader.items():
            self.metrics.reads.labels(name).inc(count)
        self._reads_by_reader.clear()

    def _refuse(self, batches: list[tuple[int, ReadBatch]], exc: SpoolError) -> None:
        """Count the reads of batches the spool did not take. A serial reader's are lost (its
        bytes exist nowhere else); a networked reader's are deferred: their raw messages stay
        unacknowledged (:meth:`_hold`), so the broker keeps them."""
        reason = "spool_full" if isinstance(exc, SpoolFullError) else "spool_error"
        lost: Counter[str] = Counter()
        deferred = 0
        for _, batch in batches:
            counts = np.bincount(batch.reader, minlength=len(batch.readers)).tolist()
            for name, count in zip(batch.readers, counts, strict=True):
                if self._from_serial_port(name):
                    lost[name] += count
                else:
                    deferred += count
        refused = sum(lost.values())
        self.reads_refused += refused
        self.reads_deferred += deferred
        self.metrics.spool_refused.inc(refused)
        self.metrics.spool_deferred.inc(deferred)
        for name, count in lost.items():
            self.metrics.rejects.labels(name, reason).inc(count)
            if name in self.readers:
                self.readers[name].rejects[reason] += count
        now = time.monotonic()
        if now >= self._next_refusal_log:  # loud, but one line per interval, not per cut
            self._next_refusal_log = now + _REFUSAL_LOG_EVERY_S
            log.error(
                "refusing reads: %s (%d serial reads refused so far; %d reads of reader "
                "messages left unacknowledged with the broker, to be handled again)",
                exc,
                self.reads_refused,
                self.reads_deferred,
            )

    # -- publishing ----------------------------------------------------------------------------

    def _drain_acks(self) -> None:
        now = time.monotonic()
        while True:
            try:
                mid = self._acks.get_nowait()
            except queue.Empty:
                break
            entry = self._inflight.pop(mid, None)
            if entry is None:
                continue  # a status message's PUBACK
            record_id, reads, published_round = entry
            self.batches_out += 1
            self.reads_out += reads
            self.metrics.batches_published.inc()
            self.metrics.reads_published.inc(reads)
            if not self._keep_until_stored:
                self.spool.ack(record_id)
                self._reads_of.pop(record_id, None)
            elif not self.spool.holds(record_id):
                continue  # confirmed before its PUBACK came
            elif published_round < self._round:
                # Published before a republish was called for (an engine had just lost its
                # subscription, say): the broker may have dropped it, so it goes out again.
                self.spool.requeue_many([record_id])
            else:
                self._unconfirmed[record_id] = now
        if self._keep_until_stored:
            self._drain_confirms(now)
        self.metrics.inflight.set(len(self._inflight))
        self.metrics.spool_unacked.set(self.spool.unacked)
        self.metrics.spool_bytes.set(self.spool.bytes_used)
        self.metrics.broker_connected.set(1 if self.link.is_connected.is_set() else 0)

    def _drain_confirms(self, now: float) -> None:
        """Engines' confirmations and announcements; republish what may have been lost."""
        confirmed = 0
        announced = False
        while True:
            try:
                seqs = self._confirms.get_nowait()
            except queue.Empty:
                break
            announced = announced or not seqs
            for record_id in seqs:
                if not self.spool.holds(record_id):
                    continue  # confirmed twice (a republished batch), or not ours
                self._unconfirmed.pop(record_id, None)
                reads = self._reads_of.pop(record_id, None)
                if reads is None:  # never published by this process: the count is on disk
                    reads = decode_record(self.spool.read(record_id))[1]
                self.spool.ack(record_id)
                confirmed += 1
                self.reads_confirmed += reads
                self.metrics.reads_confirmed.inc(reads)
        if confirmed:
            self._confirm_wait_s = self.config.spool.confirm_timeout_s
        connects = self.link.connects
        if connects != self._connects_seen:
            # A new connection: the broker may have crashed and lost what it acknowledged.
            if self._connects_seen:
                self._republish("reconnected to the broker")
            self._connects_seen = connects
        if announced:
            self._republish("an engine (re)subscribed")
        if self._unconfirmed and now >= self._next_confirm_check:
            self._next_confirm_check = now + _STATUS_CHECK_S
            oldest = min(self._unconfirmed.values())
            if now - oldest >= self._confirm_wait_s:
                self._republish(f"no confirmation for {self._confirm_wait_s:.0f} s")
                base = self.config.spool.confirm_timeout_s
                self._confirm_wait_s = min(self._confirm_wait_s * 2, base * _CONFIRM_BACKOFF)
        self.metrics.unconfirmed.set(len(self._unconfirmed))

    def _republish(self, why: str) -> None:
        """Send every unconfirmed record again (in order, before unsent ones); records still
        waiting for their PUBACK go again when it comes."""
        self._round += 1
        if not self._unconfirmed and not self._inflight:
            return
        ids = sorted(self._unconfirmed)
        self._unconfirmed.clear()
        self.spool.requeue_many(ids)
        self.batches_republished += len(ids)
        self.metrics.batches_republished.inc(len(ids))
        log.warning("%s: publishing %d unconfirmed batches again", why, len(ids))

    def _pump(self) -> None:
        if not self.link.is_connected.is_set():
            return
        # Unconfirmed batches count against the window too: while no engine stores, the
        # backlog waits in the fsync'd spool, not in the broker's memory.
        room = self.config.broker.max_inflight - len(self._inflight) - len(self._unconfirmed)
        if room <= 0:
            return
        prefix = f"{self.config.topic_prefix}/reads"
        for record in self.spool.take_unsent(room):
            shard, reads, wire = decode_record(record.payload)
            mid = self.link.publish(reads_topic(shard, prefix), wire)
            if mid is None:
                self.spool.requeue(record.record_id)
                break
            self._inflight[mid] = (record.record_id, reads, self._round)
            self._reads_of[record.record_id] = reads

    # -- health ------------------------------------------------------------------------------

    def _publish_status(self, now_s: float) -> None:
        hc = self.config.health
        connected = self.link.is_connected.is_set()
        for reader_id, health in self.readers.items():
            status = health.status(
                now_s, silent_after_s=hc.silent_after_s, offline_after_s=hc.offline_after_s
            )
            self.metrics.set_status(reader_id, status)
            self.metrics.clock_offset.labels(reader_id).set(health.clock_offset_s)
            sent = self._status_sent.get(reader_id)
            due = sent is None or sent[0] != status or now_s - sent[1] >= hc.status_interval_s
            if due and connected:
                doc = health.document(status, self.config.gateway_id, at_s=now_s)
                topic = reader_status_topic(self.config.topic_prefix, reader_id)
                self.link.publish_retained(topic, doc)
                self._status_sent[reader_id] = (status, now_s)
