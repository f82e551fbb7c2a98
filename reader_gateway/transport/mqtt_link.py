"""The gateway's one MQTT connection: raw reader subscriptions in, batches and status out.

paho runs its network loop on a thread of its own; the callbacks here only validate and
enqueue (a raw message to the gateway's inbox, a PUBACK's message id to the ack queue), so an
exception in gateway code can never kill paho's thread. Raw messages are acknowledged by hand
(``manual_ack``): the gateway acks a reader's message only after the reads in it are in the
spool, so a crash before that makes the broker deliver it again.

With ``spool.keep_until = "stored"`` the link also subscribes to the engines' confirmations
(``<prefix>/stored/<gateway_id>``) and announcements (``<prefix>/stored``); those go to the
``confirms`` queue (batch numbers; an empty list for an announcement), not the inbox.

The gateway's own status is retained on ``<prefix>/status/gateways/<gateway_id>``: ``online``
on every connect, ``offline`` as the last will (the broker publishes it when the connection
dies without a DISCONNECT) and on a clean close.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from reader_gateway.brokers import BrokerFailover, mqtt_targets
from reader_gateway.config import GatewayConfig
from reader_gateway.wire import WireError, decode_stored, stored_topic

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One raw reader message as received (callbacks only build and enqueue these)."""

    topic: str
    payload: bytes
    received_at: datetime
    mid: int
    qos: int


def gateway_status_topic(prefix: str, gateway_id: str) -> str:
    """Retained gateway status topic."""
    return f"{prefix}/status/gateways/{gateway_id}"


def reader_status_topic(prefix: str, reader_id: str) -> str:
    """Retained reader status topic."""
    return f"{prefix}/status/readers/{reader_id}"


def topic_matches(sub: str, topic: str) -> bool:
    """Whether ``topic`` matches the subscription filter ``sub`` (MQTT wildcards)."""
    return bool(mqtt.topic_matches_sub(sub, topic))


class MqttLink:
    """paho client wrapper: subscribe, publish with ids, manual acks, status and will."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        filters: list[str],
        inbox: queue.Queue[Any],
        acks: queue.Queue[int],
        confirms: queue.Queue[list[int]] | None = None,
    ) -> None:
        self.config = config
        self._inbox = inbox
        self._acks = acks
        self._confirms = confirms
        prefix = config.topic_prefix
        self._stored = (
            {stored_topic(prefix), stored_topic(prefix, config.gateway_id)}
            if confirms is not None
            else set()
        )
        self.filters = [*filters, *sorted(self._stored)]
        self.ready = threading.Event()  # connected and every subscription acknowledged
        self.is_connected = threading.Event()
        self.connects = 0
        broker = config.broker
        self._status_topic = gateway_status_topic(config.topic_prefix, config.gateway_id)
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=broker.client_id or f"tagtrail-{config.gateway_id}",
            clean_session=not broker.persistent_session,
            manual_ack=True,
        )
        # The gateway bounds what it has in flight itself; paho's own limits must not drop
        # (max_queued 0 = unbounded) or hold back (inflight) what the gateway decided to send.
        self._client.max_inflight_messages_set(broker.max_inflight + 16)
        self._client.max_queued_messages_set(0)
        self._client.will_set(self._status_topic, self._status(online=False), qos=1, retain=True)
        self._client.reconnect_delay_set(
            min_delay=max(1, round(broker.reconnect_min_s)),
            max_delay=max(1, round(broker.reconnect_max_s)),
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish
        self._pending_subs: set[int] = set()
        # A cluster's brokers as a list (mqtt://a:1883,b:1883,c:1883): reconnects go round them.
        self._brokers = BrokerFailover(mqtt_targets(broker.url), keepalive=broker.keepalive_s)
        self._client.on_connect_fail = self._next_broker

    def _status(self, *, online: bool) -> bytes:
        doc = {
            "gateway_id": self.config.gateway_id,
            "status": "online" if online else "offline",
            "at": datetime.now(UTC).isoformat(),
        }
        return orjson.dumps(doc)

    # -- paho callbacks (network thread): enqueue only ---------------------------------------

    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, reason: Any, _p: object = None
    ) -> None:
        if getattr(reason, "is_failure", False):
            log.error("mqtt: broker refused the connection: %s", reason)
            return
        self.connects += 1
        self.is_connected.set()
        client.publish(self._status_topic, self._status(online=True), qos=1, retain=True)
        if not self.filters:
            self.ready.set()
            return
        for sub in self.filters:
            _, mid = client.subscribe(sub, qos=1)
            if mid is not None:
                self._pending_subs.add(mid)

    def _on_disconnect(
        self, client: mqtt.Client, _u: object, _f: object = None, reason: object = None, *_: object
    ) -> None:
        self.is_connected.clear()
        self.ready.clear()
        self._next_broker(client, _u, _f, reason)

    def _next_broker(
        self, client: mqtt.Client, _u: object, _f: object = None, reason: object = None, *_: object
    ) -> None:
        target = self._brokers.next(client, reason)
        if len(self._brokers.targets) > 1:
            log.warning("mqtt: connection lost or refused; next try %s", target.redacted_url())

    def _on_subscribe(self, _c: mqtt.Client, _u: object, mid: int, *_: object) -> None:
        # Ready only once the broker acknowledged every subscription: a message published
        # before the SUBACK would not be routed to us.
        self._pending_subs.discard(mid)
        if not self._pending_subs:
            self.ready.set()

    def _on_message(self, client: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic in self._stored and self._confirms is not None:
            # Acked at once: a confirmation lost in a crash only makes a batch go out again.
            if msg.qos > 0:
                client.ack(msg.mid, msg.qos)
            try:
                self._confirms.put(decode_stored(bytes(msg.payload)))
            except WireError as exc:
                log.warning("mqtt: ignoring a bad message on %s: %s", msg.topic, exc)
            return
        raw = RawMessage(msg.topic, bytes(msg.payload), datetime.now(UTC), msg.mid, msg.qos)
        self._inbox.put(raw)

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, *_: object) -> None:
        self._acks.put(mid)

    # -- gateway thread ------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background and start paho's network thread."""
        target = self._brokers.current
        target.configure(self._client)
        self._client.connect_async(
            target.host, target.port, keepalive=self.config.broker.keepalive_s
        )
        self._client.loop_start()

    def publish(self, topic: str, payload: bytes) -> int | None:
        """Publish QoS 1; return the message id, or None if paho refused it (re-send later)."""
        info = self._client.publish(topic, payload, qos=1)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            return None  # a message id still in use: paho did not take the message
        return int(info.mid)

    def publish_retained(self, topic: str, doc: dict[str, object]) -> None:
        """Publish a retained QoS 1 status document."""
        self._client.publish(topic, orjson.dumps(doc), qos=1, retain=True)

    def ack(self, raw: RawMessage) -> None:
        """Acknowledge a raw reader message (only QoS 1/2 messages need it)."""
        if raw.qos > 0:
            self._client.ack(raw.mid, raw.qos)

    def close(self) -> None:
        """Publish the offline status, disconnect cleanly and stop the network thread."""
        if self.is_connected.is_set():
            info = self._client.publish(
                self._status_topic, self._status(online=False), qos=1, retain=True
            )
            # The connection may go away meanwhile: then the will says offline instead.
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=2)
        self._client.disconnect()
        self._client.loop_stop()
