"""Prometheus metrics of one engine worker (prometheus-client, on its own registry).

Counters are totals; Prometheus derives rates (``rate(tagtrail_engine_reads_received_total[1m])``
is reads per second). Lag is event time: how far the newest read stored is behind the wall
clock when its micro-batch commits — reader-to-database latency plus any backlog.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_BATCH_BUCKETS = (1, 10, 100, 500, 1_000, 5_000, 10_000, 50_000, 100_000)
_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class EngineMetrics:
    """The engine's metrics; :meth:`serve` exposes them over HTTP for Prometheus to scrape."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages = Counter("tagtrail_engine_messages", "MQTT messages processed", registry=r)
        self.reads_received = Counter(
            "tagtrail_engine_reads_received", "reads received", registry=r
        )
        self.reads_stored = Counter(
            "tagtrail_engine_reads_stored", "reads stored (new; duplicates skipped)", registry=r
        )
        self.passages_stored = Counter(
            "tagtrail_engine_passages_stored", "passages stored", registry=r
        )
        self.alerts = Counter("tagtrail_engine_alerts", "alerts raised", registry=r)
        self.quarantined = Counter(
            "tagtrail_engine_quarantined", "messages quarantined (undecodable)", registry=r
        )
        self.reads_quarantined = Counter(
            "tagtrail_engine_reads_quarantined",
            "reads not stored but quarantined, by reason (too_old, too_far_ahead: outside the "
            "accepted window around the engine's clock; bad_reader_id, bad_gateway_id)",
            ["reason"],
            registry=r,
        )
        self.reads_unknown_reader = Counter(
            "tagtrail_engine_reads_unknown_reader",
            "reads of readers not in the deployment registry: held apart (unknown_reader_reads), "
            "never tracked",
            registry=r,
        )
        self.db_reconnects = Counter(
            "tagtrail_engine_db_reconnects", "database connections re-established", registry=r
        )
        self.timescale_jobs = Counter(
            "tagtrail_engine_timescale_jobs",
            "TimescaleDB policy jobs the engine ran itself (its scheduler had not), by outcome",
            ["outcome"],
            registry=r,
        )
        self.timescale_jobs_failing = Gauge(
            "tagtrail_engine_timescale_jobs_failing",
            "TimescaleDB policy jobs whose background runs failed or never succeeded",
            registry=r,
        )
        self.batch_reads = Histogram(
            "tagtrail_engine_batch_reads", "reads per micro-batch", buckets=_BATCH_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.batch_seconds = Histogram(
            "tagtrail_engine_batch_seconds", "time to process one micro-batch", registry=r
        )
        self.lag_seconds = Histogram(
            "tagtrail_engine_lag_seconds",
            "wall clock minus newest read time, at commit",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.last_lag_seconds = Gauge(
            "tagtrail_engine_last_lag_seconds", "lag of the latest micro-batch", registry=r
        )
        self.open_tags = Gauge("tagtrail_engine_open_tags", "tags with an open passage", registry=r)
        self.pending_reads = Gauge(
            "tagtrail_engine_pending_reads", "reads held for open passages", registry=r
        )
        self.held_reads = Gauge(
            "tagtrail_engine_held_reads",
            "reads of stored passages held for late reads to join",
            registry=r,
        )
        self.inbox_messages = Gauge(
            "tagtrail_engine_inbox_messages",
            "MQTT messages received, waiting for the worker (at max_inbox_messages: behind)",
            registry=r,
        )

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        """Start the HTTP exporter on a daemon thread."""
        start_http_server(port, addr=addr, registry=self.registry)
