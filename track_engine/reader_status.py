"""Records reader heartbeats and statuses from the gateways' retained status topics into
``readers``.

Gateways publish ``<prefix>/status/readers/<reader_id>`` whenever a reader's status changes
and every few seconds (docs/gateway.md). The API's reader health needs the heartbeat in the
database (``readers.last_heard_at``) beside the traffic it already sees in ``passages``, and
the gateway's own verdict (``gateway_status``, judged at ``gateway_status_at``: online, silent,
offline, never_heard), so that the console says what the gateway says; this small subscriber
is the bridge. Callbacks only parse and enqueue; one thread writes, in batches,
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

from reader_gateway.brokers import BrokerFailover, mqtt_targets

log = logging.getLogger(__name__)


STATUSES = frozenset({"online", "silent", "offline", "never_heard"})


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """When a gateway last heard a reader, and (when the document says) its status then."""

    reader_id: str
    last_heard_at: datetime | None
    status: str | None = None
    status_at: datetime | None = None  # when the gateway judged it
    gateway_id: str = ""


def _time(value: object) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def parse_status(payload: bytes) -> Heartbeat | None:
    """The heartbeat and status in a reader status document, or None if it has neither or is
    malformed. A document without ``at_s`` (older gateways) is judged at its last heard."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("reader_id"), str):
        return None
    heard = _time(doc.get("last_heard_s"))
    status = doc.get("status") if doc.get("status") in STATUSES else None
    if heard is None and status is None:
        return None
    gateway = doc.get("gateway_id")
    return Heartbeat(
        doc["reader_id"],
        heard,
        status=status,
        status_at=(_time(doc.get("at_s")) or heard) if status else None,
        gateway_id=gateway if isinstance(gateway, str) else "",
    )


def _latest(beats: list[Heartbeat]) -> tuple[dict[str, datetime], dict[str, Heartbeat]]:
    """Per reader: the newest heartbeat time, and the newest judged status."""
    heard: dict[str, datetime] = {}
    judged: dict[str, Heartbeat] = {}
    for beat in beats:
        at = beat.last_heard_at
        if at is not None and (beat.reader_id not in heard or at > heard[beat.reader_id]):
            heard[beat.reader_id] = at
        was = judged.get(beat.reader_id)
        if beat.status_at is not None and (
            was is None or was.status_at is None or beat.status_at > was.status_at
        ):
            judged[beat.reader_id] = beat
    return heard, judged


def record_heartbeats(conn: psycopg.Connection, beats: list[Heartbeat]) -> int:
    """Move ``readers.last_heard_at`` and the gateway's status forward (never back); returns
    how many readers changed.

    Unknown readers are ignored: a gateway may serve a reader not yet in the registry.
    """
    heard, judged = _latest(beats)
    changed: set[str] = set()
    if heard:
        ids, times = zip(*sorted(heard.items()), strict=True)
        changed.update(
            r[0]
            for r in conn.execute(
                """UPDATE readers r SET last_heard_at = b.heard
               FROM unnest(%s::text[], %s::timestamptz[]) AS b(reader_id, heard)
               WHERE r.reader_id = b.reader_id
                 AND (r.last_heard_at IS NULL OR r.last_heard_at < b.heard)
               RETURNING r.reader_id""",
                (list(ids), list(times)),
            )
        )
    if judged:
        rows = sorted(judged.values(), key=lambda b: b.reader_id)
        changed.update(
            r[0]
            for r in conn.execute(
                """UPDATE readers r SET gateway_status = b.status, gateway_status_at = b.at,
                                    gateway_id = b.gateway_id
               FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::text[])
                    AS b(reader_id, status, at, gateway_id)
               WHERE r.reader_id = b.reader_id
                 AND (r.gateway_status_at IS NULL OR r.gateway_status_at < b.at)
               RETURNING r.reader_id""",
                (
                    [b.reader_id for b in rows],
                    [b.status for b in rows],
                    [b.status_at for b in rows],
                    [b.gateway_id for b in rows],
                ),
            )
        )
    return len(changed)


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
