"""MQTT-only gateway with no configuration file: what ``tagtrail gateway`` and the demo run.

Networked readers (Impinj IoT interface, Zebra IoT Connector) publish their own JSON to
``<prefix>/raw/<protocol>/<reader_id>``; this gateway subscribes to ``<prefix>/raw/+/+``,
decodes each message with that reader's decoder, normalizes, spools and publishes wire batches
to ``<prefix>/reads/<shard>`` with QoS 1. It is a
:class:`~reader_gateway.orchestrator.gateway.Gateway` built from a few settings; a gateway with
serial ports or its own subscriptions is configured with a TOML file instead
(:mod:`reader_gateway.config`).

paho's message ids are 16-bit: a publisher with more than 65,535 unacknowledged QoS 1 messages
loses some silently, so the gateway caps what it has in flight and leaves the rest in its spool.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from reader_gateway.config import (
    DEFAULT_MAX_READ_AGE_S,
    DEFAULT_MAX_READ_LEAD_S,
    BatchingConfig,
    BrokerConfig,
    ClockConfig,
    GatewayConfig,
    HealthConfig,
    MqttSubscriptionConfig,
    SpoolConfig,
)
from reader_gateway.orchestrator.gateway import Gateway
from reader_gateway.wire import DEFAULT_SHARD_COUNT, TOPIC_ROOT


@dataclass(frozen=True)
class MqttGatewayConfig:
    """Where raw reader messages come from and where batches go."""

    mqtt_url: str
    gateway_id: str = "gw-0"
    topic_prefix: str = TOPIC_ROOT
    shard_count: int = DEFAULT_SHARD_COUNT
    max_batch_reads: int = 500
    max_batch_delay_s: float = 0.2
    max_inflight: int = 1000
    dedupe_window_s: float = 0.0
    client_id: str | None = None  # default: tagtrail-<gateway_id>
    persistent_session: bool = True  # keep subscriptions and queued messages across restarts
    spool_dir: Path | None = None  # None: a temporary spool, removed at close
    metrics_port: int | None = None
    # Accepted read times around the gateway's clock (ClockConfig); a replay faster than real
    # time (the demo) sends reads ahead of the clock and widens the lead.
    max_read_age_s: float = DEFAULT_MAX_READ_AGE_S
    max_read_lead_s: float = DEFAULT_MAX_READ_LEAD_S

    def gateway_config(self, spool_dir: Path, clock_offsets_s: dict[str, float]) -> GatewayConfig:
        """The full gateway configuration these settings stand for."""
        return GatewayConfig(
            gateway_id=self.gateway_id,
            topic_prefix=self.topic_prefix,
            shard_count=self.shard_count,
            broker=BrokerConfig(
                url=self.mqtt_url,
                client_id=self.client_id,
                max_inflight=self.max_inflight,
                persistent_session=self.persistent_session,
            ),
            batching=BatchingConfig(
                max_reads=self.max_batch_reads,
                max_delay_s=self.max_batch_delay_s,
                dedupe_window_s=self.dedupe_window_s,
            ),
            # Surveyed offsets only: readers replayed faster than real time (the demo, tests)
            # have read times unrelated to receive times, so estimation would be wrong there.
            clock=ClockConfig(
                offsets_s=clock_offsets_s,
                estimate=False,
                max_read_age_s=self.max_read_age_s,
                max_read_lead_s=self.max_read_lead_s,
            ),
            spool=SpoolConfig(dir=spool_dir),
            health=HealthConfig(metrics_port=self.metrics_port),
            mqtt=[MqttSubscriptionConfig(topic=f"{self.topic_prefix}/raw/+/+")],
        )


class MqttGateway(Gateway):
    """Subscribes to raw reader topics, publishes normalized batches (spooled first)."""

    def __init__(self, config: MqttGatewayConfig, *, clock_offsets_s: dict[str, float]) -> None:
        self.settings = config
        self._temp_spool = config.spool_dir is None
        spool_dir = config.spool_dir or Path(tempfile.mkdtemp(prefix="tagtrail-spool-"))
        super().__init__(config.gateway_config(spool_dir, clock_offsets_s))

    @property
    def raw_filter(self) -> str:
        """Subscription filter for every networked reader."""
        return f"{self.config.topic_prefix}/raw/+/+"

    def close(self) -> None:
        """Close the gateway; remove a temporary spool."""
        super().close()
        if self._temp_spool:
            shutil.rmtree(self.config.spool.dir, ignore_errors=True)
