"""Reader health and gateway metrics.

Per reader: messages, frames, reads accepted, duplicates, rejects by reason, last heard (the
gateway's receive time of the last frame or event, read or not: Impinj and Zebra health
events and LLRP keepalives are heartbeats), last read (of the last frame carrying a tag), and
a status derived from them -- the same four words the API's reader health uses
(api/readers/service.py), so that the retained status and the console agree:

- ``online``      -- a tag read within ``silent_after_s``;
- ``silent``      -- up (heard, a heartbeat or any frame, within ``offline_after_s``) but no
  tag read for ``silent_after_s``: an empty road at night, or a stuck antenna;
- ``offline``     -- heard before, but nothing for ``offline_after_s``; or its serial port is
  closed;
- ``never_heard`` -- its port is open (or its topic subscribed) but nothing has come yet.

Status is computed from times passed in (no clock here). Metrics live in one
``CollectorRegistry`` per gateway, not the process-wide default, so that several gateways (as
in tests) can live in one process.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client import Counter as PromCounter

Status = Literal["online", "silent", "offline", "never_heard"]
STATUSES: tuple[Status, ...] = ("online", "silent", "offline", "never_heard")


@dataclass
class ReaderHealth:
    """Counters and status inputs of one reader."""

    reader_id: str
    protocol: str
    messages: int = 0
    frames: int = 0
    reads: int = 0
    duplicates: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    last_heard_s: float | None = None  # gateway receive time, seconds since the Unix epoch
    last_read_s: float | None = None  # receive time of the last frame that carried a tag
    connected: bool = True  # False while a serial port is closed
    clock_offset_s: float = 0.0
    # A connected transport's own state (LLRP: session phase, last reader event, last error),
    # published as ``transport`` in the status message when set.
    transport: dict[str, object] = field(default_factory=dict)

    def status(self, now_s: float, *, silent_after_s: float, offline_after_s: float) -> Status:
        """The reader's status at ``now_s`` (seconds since the Unix epoch)."""
        if not self.connected:
            return "offline"
        if self.last_heard_s is None:
            return "never_heard"
        if now_s - self.last_heard_s >= offline_after_s:
            return "offline"
        if self.last_read_s is None or now_s - self.last_read_s >= silent_after_s:
            return "silent"
        return "online"

    def document(
        self, status: Status, gateway_id: str, at_s: float | None = None
    ) -> dict[str, object]:
        """The retained status message body for ``<prefix>/status/readers/<reader_id>``;
        ``at_s``: when the status was judged (a retained copy read later is then known old)."""
        return {
            "reader_id": self.reader_id,
            "gateway_id": gateway_id,
            "protocol": self.protocol,
            "status": status,
            "at_s": at_s,
            "last_heard_s": self.last_heard_s,
            "last_read_s": self.last_read_s,
            "messages": self.messages,
            "frames": self.frames,
            "reads": self.reads,
            "duplicates": self.duplicates,
            "rejects": dict(self.rejects),
            "clock_offset_s": self.clock_offset_s,
        } | ({"transport": self.transport} if self.transport else {})


class GatewayMetrics:
    """The gateway's Prometheus metrics, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.frames = PromCounter(
            "tagtrail_gateway_frames", "Frames and events decoded", ["reader"], registry=r
        )
        self.reads = PromCounter(
            "tagtrail_gateway_reads", "Reads accepted (spooled)", ["reader"], registry=r
        )
        self.duplicates = PromCounter(
            "tagtrail_gateway_duplicates", "Repeats dropped by de-dup", ["reader"], registry=r
        )
        self.rejects = PromCounter(
            "tagtrail_gateway_rejects", "Rejected input", ["reader", "reason"], registry=r
        )
        self.last_heard = Gauge(
            "tagtrail_gateway_reader_last_heard_seconds",
            "Unix time the reader was last heard",
            ["reader"],
            registry=r,
        )
        self.reader_status = Gauge(
            "tagtrail_gateway_reader_status",
            "1 for the reader's current status",
            ["reader", "status"],
            registry=r,
        )
        self.port_open = Gauge(
            "tagtrail_gateway_serial_port_open",
            "1 while the reader's serial port is open",
            ["reader"],
            registry=r,
        )
        self.reader_connected = Gauge(
            "tagtrail_gateway_reader_connected",
            "1 while the gateway's connection to a networked (LLRP) reader is up and reading",
            ["reader"],
            registry=r,
        )
        self.reader_resets = PromCounter(
            "tagtrail_gateway_reader_resets",
            "Connections to a networked (LLRP) reader reset or lost, by reason",
            ["reader", "reason"],
            registry=r,
        )
        self.clock_offset = Gauge(
            "tagtrail_gateway_reader_clock_offset_seconds",
            "Reader clock minus true time, as corrected",
            ["reader"],
            registry=r,
        )
        self.spool_bytes = Gauge("tagtrail_gateway_spool_bytes", "Spool bytes", registry=r)
        self.spool_unacked = Gauge(
            "tagtrail_gateway_spool_unacked_batches", "Spooled batches not yet acked", registry=r
        )
        self.spool_refused = PromCounter(
            "tagtrail_gateway_spool_refused_reads",
            "Serial reads refused: the spool could not write them",
            registry=r,
        )
        self.spool_deferred = PromCounter(
            "tagtrail_gateway_spool_deferred_reads",
            "Reads of raw reader messages the spool could not take, left unacknowledged "
            "with the broker to be handled again",
            registry=r,
        )
        self.raw_held = Gauge(
            "tagtrail_gateway_raw_held_messages",
            "Raw reader messages held unacknowledged until the spool can write",
            registry=r,
        )
        self.quarantine_errors = PromCounter(
            "tagtrail_gateway_quarantine_write_errors",
            "Refusals the quarantine file could not take (still counted in rejects)",
            registry=r,
        )
        self.spool_corrupt = Gauge(
            "tagtrail_gateway_spool_corrupt_segments",
            "Segments found corrupt at start",
            registry=r,
        )
        self.batches_published = PromCounter(
            "tagtrail_gateway_batches_acked", "Batches acknowledged by the broker", registry=r
        )
        self.reads_published = PromCounter(
            "tagtrail_gateway_reads_acked", "Reads in batches acked by the broker", registry=r
        )
        self.reads_confirmed = PromCounter(
            "tagtrail_gateway_reads_confirmed",
            "Reads in batches an engine confirmed stored (they left the spool)",
            registry=r,
        )
        self.unconfirmed = Gauge(
            "tagtrail_gateway_unconfirmed_batches",
            "Batches acked by the broker, not yet confirmed stored by an engine",
            registry=r,
        )
        self.batches_republished = PromCounter(
            "tagtrail_gateway_batches_republished",
            "Batches published again: unconfirmed after a reconnect, an engine's "
            "(re)subscription or the confirmation timeout",
            registry=r,
        )
        self.inflight = Gauge(
            "tagtrail_gateway_inflight_batches", "Batches published, not yet acked", registry=r
        )
        self.broker_connected = Gauge(
            "tagtrail_gateway_broker_connected", "1 while connected to the broker", registry=r
        )

    def set_status(self, reader_id: str, status: Status) -> None:
        """Set the one-hot status gauge of a reader."""
        for name in STATUSES:
            self.reader_status.labels(reader_id, name).set(1 if name == status else 0)
