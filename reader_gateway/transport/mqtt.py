"""MQTT transport: networked readers in, normalized batches out.

Networked readers (Impinj IoT interface, Zebra IoT Connector) publish their own JSON to
``<prefix>/raw/<protocol>/<reader_id>``; the gateway decodes each message with that reader's
decoder, normalizes, and publishes wire batches to ``<prefix>/reads/<shard>`` with QoS 1.

paho's message ids are 16-bit: a publisher with more than 65,535 unacknowledged QoS 1 messages
loses some silently, so the gateway caps what it has in flight and waits for acks past that.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from reader_gateway.pipeline import Normalizer
from reader_gateway.protocols import make_decoder
from reader_gateway.protocols.base import Decoder
from reader_gateway.wire import encode_batch, mqtt_endpoint, reads_topic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MqttGatewayConfig:
    """Where raw reader messages come from and where batches go."""

    mqtt_url: str
    gateway_id: str = "gw-0"
    topic_prefix: str = "tagtrail/v1"
    shard_count: int = 4
    max_batch_reads: int = 500
    max_batch_delay_s: float = 0.2
    max_inflight: int = 1000
    dedupe_window_s: float = 0.0
    client_id: str | None = None  # default: tagtrail-<gateway_id>
    persistent_session: bool = True  # keep subscriptions and queued messages across restarts


class MqttGateway:
    """Subscribes to raw reader topics, publishes normalized batches."""

    def __init__(self, config: MqttGatewayConfig, *, clock_offsets_s: dict[str, float]) -> None:
        self.config = config
        self.normalizer = Normalizer(
            config.gateway_id,
            shard_count=config.shard_count,
            clock_offsets_s=clock_offsets_s,
            dedupe_window_s=config.dedupe_window_s,
            max_batch_reads=config.max_batch_reads,
        )
        self.messages_in = 0
        self.batches_out = 0
        self.reads_out = 0
        self._decoders: dict[tuple[str, str], Decoder] = {}
        self._inbox: queue.Queue[tuple[str, bytes, datetime]] = queue.Queue()
        self._inflight = 0
        self._inflight_cv = threading.Condition()
        host, port = mqtt_endpoint(config.mqtt_url)
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id or f"tagtrail-{config.gateway_id}",
            clean_session=not config.persistent_session,
        )
        self._client.max_inflight_messages_set(config.max_inflight)
        self._client.max_queued_messages_set(0)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish
        self._client.reconnect_delay_set(min_delay=1, max_delay=10)
        self._client.connect_async(host, port, keepalive=30)
        self.connected = threading.Event()

    @property
    def raw_filter(self) -> str:
        """Subscription filter for every networked reader."""
        return f"{self.config.topic_prefix}/raw/+/+"

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:
        client.subscribe(self.raw_filter, qos=1)

    def _on_subscribe(self, *_: object) -> None:
        # Ready only once the broker has acknowledged the subscription: a message published
        # before the SUBACK would not be routed to us.
        self.connected.set()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        self._inbox.put((msg.topic, bytes(msg.payload), datetime.now(UTC)))

    def _on_publish(self, *_: object) -> None:
        with self._inflight_cv:
            self._inflight -= 1
            self._inflight_cv.notify()

    def start(self) -> None:
        """Connect and start paho's network thread."""
        self._client.loop_start()

    def run(self, stop: threading.Event) -> None:
        """Decode, normalize and publish until ``stop`` is set."""
        next_flush = time.monotonic() + self.config.max_batch_delay_s
        while not stop.is_set():
            try:
                topic, payload, received_at = self._inbox.get(timeout=0.05)
                self.handle(topic, payload, received_at)
            except queue.Empty:
                pass
            now = time.monotonic()
            force = now >= next_flush
            self.publish_ready(force=force)
            if force:
                next_flush = now + self.config.max_batch_delay_s

    def handle(self, topic: str, payload: bytes, received_at: datetime) -> None:
        """Decode one raw reader message and normalize its reads."""
        self.messages_in += 1
        parts = topic.split("/")
        protocol, reader_id = parts[-2], parts[-1]
        decoder = self._decoders.get((protocol, reader_id))
        if decoder is None:
            decoder = self._decoders[(protocol, reader_id)] = make_decoder(protocol)
        result = decoder.decode(payload, received_at)
        self.normalizer.add(result.reads, reader_id=reader_id)
        if result.rejects:
            self.normalizer.reject(result.rejects, reader_id=reader_id)
            for rej in result.rejects:
                log.warning("reader %s: rejected %d bytes: %s", reader_id, len(rej.raw), rej.error)

    def publish_ready(self, *, force: bool) -> None:
        """Publish the batches the normalizer has ready (all of them when ``force``)."""
        now_us = int(time.time() * 1e6)
        for shard, batch in self.normalizer.take(now_us=now_us, force=force):
            with self._inflight_cv:  # backpressure: bounded unacknowledged publishes
                self._inflight_cv.wait_for(lambda: self._inflight < self.config.max_inflight)
                self._inflight += 1
            topic = reads_topic(shard, f"{self.config.topic_prefix}/reads")
            self._client.publish(topic, encode_batch(batch), qos=1)
            self.batches_out += 1
            self.reads_out += len(batch)

    def idle(self) -> bool:
        """True when nothing is waiting to be decoded, batched or acknowledged."""
        return self._inbox.empty() and self.normalizer.pending_reads == 0 and self._inflight == 0

    def close(self) -> None:
        """Disconnect from the broker."""
        self._client.disconnect()
        self._client.loop_stop()
