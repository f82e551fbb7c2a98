"""Emission: simulated reads turned into real reader messages and published like readers do.

Networked readers publish their vendor JSON to ``<prefix>/raw/<protocol>/<reader_id>`` (the
topic the gateway subscribes to). Serial readers write frames to ptys (see the gateway issue).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pandas as pd
from paho.mqtt.enums import CallbackAPIVersion

from reader_gateway.protocols.impinj_iot import encode_tag_inventory_event
from reader_gateway.wire import mqtt_endpoint

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ReaderMessage:
    """One message a reader sends: its protocol, reader id, bytes, and when (true time)."""

    protocol: str
    reader_id: str
    payload: bytes
    true_at_us: int


def reader_messages(reads: pd.DataFrame, protocols: dict[str, str]) -> Iterator[ReaderMessage]:
    """Encode simulated reads (rf.simulate_reads columns) as each reader's wire messages.

    Reads are yielded in true-time order; the payload carries the reader's own clock.
    """
    ordered = reads.sort_values("true_at_us", kind="mergesort")
    for reader_id, antenna, tag_id, rssi_dbm, read_at_us, true_at_us in ordered[
        ["reader_id", "antenna", "tag_id", "rssi_dbm", "read_at_us", "true_at_us"]
    ].itertuples(index=False, name=None):
        protocol = protocols[reader_id]
        if protocol != "impinj-iot":
            raise ValueError(f"reader {reader_id}: no emitter for protocol {protocol!r} yet")
        payload = encode_tag_inventory_event(
            hostname=reader_id,
            tag_id=tag_id,
            antenna=int(antenna),
            rssi_dbm=float(rssi_dbm),
            read_at=_EPOCH + timedelta(microseconds=int(read_at_us)),
        )
        yield ReaderMessage(protocol, reader_id, payload, int(true_at_us))


class MqttEmitter:
    """Publishes reader messages with QoS 1, never more than ``max_inflight`` unacknowledged."""

    def __init__(
        self, mqtt_url: str, *, topic_prefix: str, client_id: str, max_inflight: int = 200
    ) -> None:
        self.topic_prefix = topic_prefix
        self.published = 0
        self._max_inflight = max_inflight
        self._inflight = 0
        self._cv = threading.Condition()
        host, port = mqtt_endpoint(mqtt_url)
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self._client.max_inflight_messages_set(max_inflight)
        self._client.on_publish = self._on_publish
        self._client.connect(host, port, keepalive=30)
        self._client.loop_start()

    def _on_publish(self, *_: object) -> None:
        with self._cv:
            self._inflight -= 1
            self._cv.notify_all()

    def publish(self, message: ReaderMessage) -> None:
        """Publish one reader message (blocks while too many are unacknowledged)."""
        topic = f"{self.topic_prefix}/raw/{message.protocol}/{message.reader_id}"
        with self._cv:
            self._cv.wait_for(lambda: self._inflight < self._max_inflight)
            self._inflight += 1
        self._client.publish(topic, message.payload, qos=1)
        self.published += 1

    def drain(self, timeout_s: float = 30.0) -> bool:
        """Wait until every published message is acknowledged by the broker."""
        with self._cv:
            return self._cv.wait_for(lambda: self._inflight == 0, timeout=timeout_s)

    def replay(
        self,
        messages: Iterator[ReaderMessage],
        *,
        stop: threading.Event,
        speedup: float | None = None,
        wall_start: float | None = None,
        sim_start_us: int | None = None,
        backlog: Callable[[], int] | None = None,
        max_backlog: int = 500,
    ) -> None:
        """Publish messages; paced to their true time (x ``speedup``) unless speedup is None.

        With pacing, a message whose time has already passed goes out at once (catch-up).
        ``backlog`` (messages published but not yet taken by the consumer) lets an
        as-fast-as-possible run wait for its consumer: a broker holds only so many queued
        QoS 1 messages for a slow subscriber (Mosquitto: max_queued_messages, 1000 by default)
        and drops the rest, which a real reader's pace never provokes but a simulator's can.
        """
        for message in messages:
            if stop.is_set():
                return
            while backlog is not None and backlog() > max_backlog:
                if stop.wait(0.005):
                    return
            if speedup is not None and wall_start is not None and sim_start_us is not None:
                due = wall_start + (message.true_at_us - sim_start_us) / 1e6 / speedup
                delay = due - time.time()
                if delay > 0 and stop.wait(delay):
                    return
            self.publish(message)

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()
