"""The engine worker's MQTT session: subscribe, take messages in, acknowledge, confirm, publish.

paho runs its network loop in its own thread; ``on_message`` only decodes (:mod:`.incoming`)
and enqueues (a callback that raises would kill that thread). The inbox is bounded: when the
worker is behind, paho's thread waits, TCP pushes back and the backlog stays in the broker.
Messages are acknowledged only when the worker says so (:meth:`BrokerSession.settle`, after
the commit), and the stored batches are confirmed to their gateways on
``<prefix>/stored/<gateway_id>``; a (re)subscription is announced on ``<prefix>/stored`` so that
gateways send what a crashed broker lost (docs/reliability.md, R7).
"""

from __future__ import annotations

import logging
import queue
import threading
import time

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from reader_gateway.brokers import BrokerFailover, mqtt_targets
from reader_gateway.wire import encode_stored, reads_topic, stored_topic, topic_safe_id
from track_engine.consumer.config import EngineConfig
from track_engine.consumer.incoming import Received, receive
from track_engine.pipeline import Alert
from track_engine.screening import ReadWindow

__all__ = ["BrokerSession", "alert_payload"]

log = logging.getLogger(__name__)

# How often paho's thread, waiting for room in a full inbox, checks for a stop.
_INBOX_WAIT_S = 0.5


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


class BrokerSession:
    """One QoS 1 session with manual acks over the configured shards (and broker failover).

    ``stop``: set when the worker stops; paho's thread, waiting for room in the inbox, then
    drops the message unacknowledged (the broker delivers it again).
    """

    def __init__(self, config: EngineConfig, window: ReadWindow, stop: threading.Event) -> None:
        self.config = config
        self.stop = stop
        self._window = window
        self._inbox: queue.Queue[Received] = queue.Queue(maxsize=config.max_inbox_messages)
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
        while not self.stop.is_set():
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
        """Start paho's network thread (it connects, and reconnects, on its own)."""
        self._client.loop_start()

    def take(self, timeout_s: float) -> list[Received]:
        """The next micro-batch: the first message within ``timeout_s`` (else none), then what
        else arrives within ``max_wait_s``, up to ``max_batch_messages``."""
        try:
            first = self._inbox.get(timeout=timeout_s)
        except queue.Empty:
            return []
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
        return messages

    def settle(self, messages: list[Received]) -> None:
        """Confirm the committed batches to their gateways, then acknowledge the messages."""
        self._confirm(messages)
        for item in messages:
            self._client.ack(item.msg.mid, item.msg.qos)

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

    def publish_alerts(self, alerts: list[Alert]) -> None:
        """Each alert on ``<prefix>/alerts/<watch_id>`` (QoS 1), for live clients."""
        for alert in alerts:
            self._client.publish(
                f"{self.config.topic_prefix}/alerts/{alert.watch_id}", alert_payload(alert), qos=1
            )

    def close(self) -> None:
        """Disconnect and stop paho's network thread."""
        self._client.disconnect()
        self._client.loop_stop()
