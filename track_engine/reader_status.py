"""Records reader heartbeats from the gateways' retained status topics into ``readers``.

Gateways publish ``<prefix>/status/readers/<reader_id>`` whenever a reader's status changes
and every few seconds (docs/gateway.md). The API's reader health needs the heartbeat in the
database (``readers.last_heard_at``) beside the traffic it already sees in ``passages``; this
small subscriber is the bridge. Callbacks only parse and enqueue; one thread writes, in batches,
so a burst of retained messages at connect costs one statement.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from reader_gateway.wire import BrokerFailover, mqtt_targets

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """When a gateway last heard a reader."""

    reader_id: str
    last_heard_at: datetime


def parse_status(payload: bytes) -> Heartbeat | None:
    """The heartbeat in a reader status document, or None if it has none or is malformed."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    reader_id, heard_s = doc.get("reader_id"), doc.get("last_heard_s")
    if not isinstance(reader_id, str) or not isinstance(heard_s, int | float) or heard_s <= 0:
        return None
    return Heartbeat(reader_id, datetime.fromtimestamp(heard_s, tz=UTC))


def record_heartbeats(conn: psycopg.Connection, beats: list[Heartbeat]) -> int:
    """Move ``readers.last_heard_at`` forward (never back); returns rows changed.

    Unknown readers are ignored: a gateway may serve a reader not yet in the registry.
    """
    latest: dict[str, datetime] = {}
    for beat in beats:
        if beat.reader_id not in latest or beat.last_heard_at > latest[beat.reader_id]:
            latest[beat.reader_id] = beat.last_heard_at
    if not latest:
        return 0
    ids, times = zip(*sorted(latest.items()), strict=True)
    return conn.execute(
        """UPDATE readers r SET last_heard_at = b.heard
           FROM unnest(%s::text[], %s::timestamptz[]) AS b(reader_id, heard)
           WHERE r.reader_id = b.reader_id
             AND (r.last_heard_at IS NULL OR r.last_heard_at < b.heard)""",
        (list(ids), list(times)),
    ).rowcount


class ReaderStatusRecorder:
    """Subscribes to reader status topics and writes heartbeats to the database."""

    def __init__(
        self, *, database_url: str, mqtt_url: str, topic_prefix: str, client_id: str
    ) -> None:
        self._database_url = database_url
        self._inbox: queue.Queue[Heartbeat] = queue.Queue()
        self.recorded = 0
        self.connected = threading.Event()
        brokers = BrokerFailover(
            mqtt_targets(mqtt_url), keepalive=30
        )  # a cluster: reconnects go round it
        target = brokers.current
        self._topic = f"{topic_prefix}/status/readers/+"
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        target.configure(self._client)  # credentials and TLS from the URL
        self._client.on_connect = lambda c, *_: c.subscribe(self._topic, qos=1)
        self._client.on_subscribe = lambda *_: self.connected.set()
        self._client.on_message = self._on_message

        def next_broker(
            client: mqtt.Client, _u: object, _f: object = None, reason: object = None, *_: object
        ) -> None:
            brokers.next(client, reason)

        self._client.on_disconnect = self._client.on_connect_fail = next_broker
        self._client.reconnect_delay_set(min_delay=1, max_delay=10)
        self._client.connect_async(target.host, target.port, keepalive=30)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        beat = parse_status(bytes(msg.payload))
        if beat is not None:
            self._inbox.put(beat)

    def start(self) -> None:
        """Connect and start paho's network thread."""
        self._client.loop_start()

    def run(self, stop: threading.Event) -> None:
        """Write queued heartbeats until ``stop`` is set (reconnecting after database errors)."""
        conn: psycopg.Connection | None = None
        while not stop.is_set():
            try:
                first = self._inbox.get(timeout=0.5)
            except queue.Empty:
                continue
            beats = [first]
            while not self._inbox.empty() and len(beats) < 10_000:
                beats.append(self._inbox.get_nowait())
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self._database_url, autocommit=True)
                self.recorded += record_heartbeats(conn, beats)
            except psycopg.Error as exc:
                # Heartbeats are refreshed every few seconds: dropping a batch loses nothing
                # that the next status message will not bring again. Not only a lost
                # connection: on Citus a worker that is away fails the statement (readers is
                # a reference table, written on every worker), and the thread must live on.
                log.warning("could not record %d reader heartbeats: %s", len(beats), exc)
                if conn is not None:
                    conn.close()
                conn = None
                stop.wait(1.0)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Disconnect from the broker."""
        self._client.disconnect()
        self._client.loop_stop()
