"""What an engine worker is told (`EngineConfig`) and what it counts (`EngineCounters`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from reader_gateway.wire import DEFAULT_SHARD_COUNT, TOPIC_ROOT

__all__ = ["EngineConfig", "EngineCounters"]


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
