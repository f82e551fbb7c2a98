"""Cutting normalized reads into spooled batches, and acknowledging what the spool took.

A cut takes every open batch, appends the batches to the spool with one fsync, and only then
acknowledges the raw MQTT messages they came from (a read counts as accepted once it is
spooled). When the spool cannot write, a serial reader's reads are lost (its bytes exist
nowhere else) and counted so; a networked reader's raw messages stay unacknowledged, held
and handled again every ``_HOLD_RETRY_S`` (the broker keeps them meanwhile).
"""

from __future__ import annotations

import fnmatch
import logging
import time
from collections import Counter

import numpy as np

from reader_gateway.config import GatewayConfig
from reader_gateway.health import GatewayMetrics
from reader_gateway.orchestrator.intake import Intake
from reader_gateway.orchestrator.records import encode_record
from reader_gateway.pipeline.normalize import Normalizer
from reader_gateway.spool import Spool, SpoolError, SpoolFullError
from reader_gateway.transport.mqtt_link import MqttLink, RawMessage
from reader_gateway.wire import ReadBatch

log = logging.getLogger(__name__)

_REFUSAL_LOG_EVERY_S = 10.0
_HOLD_RETRY_S = 1.0  # how often raw messages the spool refused are handled again
_MAX_HELD = 10_000  # raw messages kept in memory for that; past it the broker keeps them


class Cutter:
    """Decides when to cut, spools the cut, and acknowledges, holds or counts what it held."""

    def __init__(
        self,
        config: GatewayConfig,
        normalizer: Normalizer,
        *,
        spool: Spool,
        link: MqttLink,
        metrics: GatewayMetrics,
        intake: Intake,
    ) -> None:
        self.config = config
        self.normalizer = normalizer
        self.spool = spool
        self.link = link
        self.metrics = metrics
        self.intake = intake
        self.readers = intake.readers
        self.reads_accepted = 0
        self.reads_refused = 0  # serial reads the spool could not take: lost
        self.reads_deferred = 0  # reads of raw messages left unacknowledged for the broker
        self.raw_left_with_broker = 0  # held messages past _MAX_HELD: back after a reconnect
        self.unacked_raw: list[RawMessage] = []  # handled, acknowledged at the next cut
        self.raw_acked = 0  # raw MQTT messages acknowledged to the broker
        self.held: list[RawMessage] = []  # raw messages whose cut the spool refused
        self._held_retry_at = 0.0
        self._pending_since: float | None = None
        # Reads of these readers come from serial ports, which cannot send them again.
        self._serial_names = {
            config.reader_aliases.get(s.reader_id, s.reader_id) for s in config.serial
        } | {config.reader_aliases.get(r.reader_id, r.reader_id) for r in config.llrp}
        self._serial_buses = [p for s in config.serial for p in s.frame_readers]
        self._reads_by_reader: Counter[str] = Counter()  # accepted, not yet in the metrics
        self._next_refusal_log = 0.0

    def await_ack(self, raw: RawMessage) -> None:
        """Acknowledge ``raw`` once the cut after it is spooled (it is handled meanwhile)."""
        self.unacked_raw.append(raw)

    def note_kept(self, kept: int) -> None:
        """Reads were kept: the oldest pending read's wait (``max_delay_s``) starts now."""
        if kept and self._pending_since is None:
            self._pending_since = time.monotonic()

    def retry_due(self, now: float) -> bool:
        """Whether held raw messages are to be handled again at monotonic time ``now``."""
        return bool(self.held) and now >= self._held_retry_at

    def should_cut(self, now: float, *, inbox_empty: bool) -> bool:
        """Whether to cut at monotonic time ``now``: a batch is full, the oldest pending read
        waited ``max_delay_s``, or raw messages wait for their acknowledgement and nothing
        else is queued (``inbox_empty``)."""
        pending = self.normalizer.pending_reads
        if not pending:
            return bool(self.unacked_raw)  # messages without reads: just acknowledge them
        if self.normalizer.fullest_batch >= self.config.batching.max_reads:
            return True
        if self._pending_since is not None and (
            now - self._pending_since >= self.config.batching.max_delay_s
        ):
            return True
        # A broker delivers only a few unacknowledged messages at a time (Mosquitto: 20), so
        # holding acks for a full batch would stall the subscription.
        return bool(self.unacked_raw) and inbox_empty

    def cut(self) -> None:
        """Take every open batch, spool it, then acknowledge (or hold) the raw messages."""
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
            for raw in self.unacked_raw:
                self.link.ack(raw)
            self.raw_acked += len(self.unacked_raw)
        else:
            self._hold(self.unacked_raw)
        self.unacked_raw.clear()

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
            if len(self.held) < _MAX_HELD:
                self.held.append(raw)
            else:  # still unacknowledged: the broker has it and sends it after a reconnect
                self.raw_left_with_broker += 1
        # A held message's reads were remembered for de-duplication: handled again, they
        # would be dropped as repeats of themselves.
        self.normalizer.forget_repeats()
        self._held_retry_at = time.monotonic() + _HOLD_RETRY_S
        self.metrics.raw_held.set(len(self.held))

    def retry_held(self) -> None:
        """Handle the held raw messages again and cut: acknowledged if the spool takes them."""
        held, self.held = self.held, []
        for raw in held:
            self.unacked_raw.append(raw)
            self.note_kept(self.intake.handle_raw(raw, replay=True))
        self.cut()
        self.metrics.raw_held.set(len(self.held))

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

    def flush_read_counts(self) -> None:
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
