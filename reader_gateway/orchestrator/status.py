"""Reader status, published retained on ``<prefix>/status/readers/<reader_id>`` on a change
and again every ``status_interval_s``; the status metrics are set at every check."""

from __future__ import annotations

from reader_gateway.config import GatewayConfig
from reader_gateway.health import GatewayMetrics, ReaderHealth, Status
from reader_gateway.transport.mqtt_link import MqttLink, reader_status_topic

_STATUS_CHECK_S = 0.5  # how often statuses are computed (and the read counters flushed)


class StatusPublisher:
    """Computes each reader's status and publishes the ones that are due."""

    def __init__(
        self,
        config: GatewayConfig,
        link: MqttLink,
        metrics: GatewayMetrics,
        readers: dict[str, ReaderHealth],
    ) -> None:
        self.config = config
        self.link = link
        self.metrics = metrics
        self.readers = readers  # shared with the intake, which adds readers as they appear
        self._sent: dict[str, tuple[Status, float]] = {}
        self._next_check = 0.0

    def due(self, now: float) -> bool:
        """Whether statuses are to be computed at monotonic time ``now`` (then the next check
        is scheduled ``_STATUS_CHECK_S`` later)."""
        if now < self._next_check:
            return False
        self._next_check = now + _STATUS_CHECK_S
        return True

    def changed(self, reader_id: str | None = None) -> None:
        """Check at the next step (a port opened or closed, a session changed phase); with
        ``reader_id``, publish that reader's status then even if it looks the same."""
        if reader_id is not None:
            self._sent.pop(reader_id, None)
        self._next_check = 0.0

    def publish(self, now_s: float) -> None:
        """Set every reader's status metrics; publish the statuses that changed or are due
        again (only while connected: a retained status is only worth its latest value)."""
        hc = self.config.health
        connected = self.link.is_connected.is_set()
        for reader_id, health in self.readers.items():
            status = health.status(
                now_s, silent_after_s=hc.silent_after_s, offline_after_s=hc.offline_after_s
            )
            self.metrics.set_status(reader_id, status)
            self.metrics.clock_offset.labels(reader_id).set(health.clock_offset_s)
            sent = self._sent.get(reader_id)
            due = sent is None or sent[0] != status or now_s - sent[1] >= hc.status_interval_s
            if due and connected:
                doc = health.document(status, self.config.gateway_id, at_s=now_s)
                topic = reader_status_topic(self.config.topic_prefix, reader_id)
                self.link.publish_retained(topic, doc)
                self._sent[reader_id] = (status, now_s)
