"""What the transports hand the gateway, decoded, counted per reader and normalized.

Raw MQTT messages are decoded here (one decoder per protocol and reader, so that a stream's
state stays its own); serial chunks and LLRP chunks arrive decoded by their threads. Every
message or chunk is counted on its reader (frames, rejects, last heard), its rejects and the
reads normalization refused go to the quarantine file, and its reads are normalized bound to
the reader its topic or port proves. Port and session changes update the reader's health.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime

from reader_gateway.config import GatewayConfig, MqttSubscriptionConfig
from reader_gateway.health import GatewayMetrics, ReaderHealth
from reader_gateway.orchestrator.status import StatusPublisher
from reader_gateway.pipeline.normalize import Normalizer
from reader_gateway.protocols import DECODERS, make_decoder
from reader_gateway.protocols.base import Decoder, DecodeResult, PayloadError, Reject
from reader_gateway.quarantine import Quarantine, QuarantineEntry
from reader_gateway.transport.llrp import apply_state
from reader_gateway.transport.llrp_session import LlrpChunk, LlrpState
from reader_gateway.transport.mqtt_link import RawMessage, topic_matches
from reader_gateway.transport.serial import PortState, SerialChunk

log = logging.getLogger(__name__)

_REFUSAL_LOG_EVERY_S = 10.0
_QUARANTINE_LOG_BYTES = 512  # of a refused message, logged as evidence


class Intake:
    """Decodes, counts and normalizes the transports' items, per reader."""

    def __init__(
        self,
        config: GatewayConfig,
        normalizer: Normalizer,
        *,
        metrics: GatewayMetrics,
        quarantine: Quarantine,
        readers: dict[str, ReaderHealth],
        status: StatusPublisher,
    ) -> None:
        self.config = config
        self.normalizer = normalizer
        self.metrics = metrics
        self.quarantine = quarantine
        self.readers = readers
        self.status = status
        self.messages_in = 0
        self._decoders: dict[tuple[str, str], Decoder] = {}
        self._next_quarantine_log: dict[tuple[str, str], float] = {}

    def handle(self, item: RawMessage | SerialChunk | PortState | LlrpChunk | LlrpState) -> int:
        """Take one item of the inbox; return how many reads normalization kept."""
        if isinstance(item, LlrpChunk):
            reader = item.config
            return self._apply(
                reader.reader_id, "llrp", item.result, item.received_at, reader.antenna_map
            )
        if isinstance(item, LlrpState):
            apply_state(item, self._health(item.config.reader_id, "llrp"), self.metrics)
            self.status.changed(item.config.reader_id)  # publish the change now
            return 0
        if isinstance(item, RawMessage):
            self.messages_in += 1
            return self.handle_raw(item)
        if isinstance(item, SerialChunk):
            cfg = item.config
            return self._apply(
                cfg.reader_id,
                cfg.protocol,
                item.result,
                item.received_at,
                cfg.antenna_map,
                may_name=cfg.frame_readers,
            )
        health = self._health(item.config.reader_id, item.config.protocol)
        health.connected = item.connected
        self.metrics.port_open.labels(item.config.reader_id).set(1 if item.connected else 0)
        self.status.changed()  # publish the change now
        return 0

    def handle_raw(self, raw: RawMessage, *, replay: bool = False) -> int:
        """Decode and normalize a raw MQTT message; how many reads were kept. A ``replay`` (a
        held message handled again) only normalizes: it was counted the first time."""
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
        return self._apply(
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
    ) -> int:
        """Count a decoded message or chunk per reader and normalize its reads; how many were
        kept (0 when they could not be normalized)."""
        health = self._health(reader_id, protocol)
        reads = result.read_count
        if not replay:
            self._count_decoded(health, result, received_at)
        if not reads:
            return 0
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
            return 0
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
        return kept

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
