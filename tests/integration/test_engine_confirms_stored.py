"""The engine confirms committed batches to their gateway (real Mosquitto and PostgreSQL).

A gateway deletes a batch from its spool only on this confirmation (docs/reliability.md R7),
so it must come for every batch the engine committed — stored, or quarantined as broken —
and only after the commit; and an engine that (re)subscribes announces it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import orjson
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from reader_gateway.brokers import mqtt_endpoint
from reader_gateway.wire import (
    batch_from_columns,
    decode_stored,
    encode_batch,
    reads_topic,
    stored_topic,
)
from track_engine.consumer.config import EngineConfig
from track_engine.consumer.service import EngineService

T0_US = 1_764_396_000_000_000  # 2025-11-29T06:00:00Z


def _wait(condition: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class _Listener:
    """Collects what arrives on a topic filter."""

    def __init__(self, url: str, topic: str, client_id: str) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.ready = threading.Event()
        host, port = mqtt_endpoint(url)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_message = lambda _c, _u, m: self.got.append((m.topic, bytes(m.payload)))
        self.client.on_subscribe = lambda *_: self.ready.set()
        self.client.connect(host, port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        assert self.ready.wait(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_engine_confirms_each_committed_batch_to_its_gateway(
    db_url: str, mqtt_url: str, topic_prefix: str
) -> None:
    listener = _Listener(mqtt_url, f"{topic_prefix}/stored/#", f"l-{topic_prefix}")
    service = EngineService(
        EngineConfig(
            database_url=db_url, mqtt_url=mqtt_url, topic_prefix=topic_prefix, shards=(0,),
            client_id=f"engine-{topic_prefix}", persistent_session=False,
            read_max_age_s=None,  # the batches replay a fixed day in 2025
        )
    )  # fmt: skip
    stop = threading.Event()
    worker = threading.Thread(target=service.run, args=(stop,))
    host, port = mqtt_endpoint(mqtt_url)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"p-{topic_prefix}")
    try:
        service.start()
        worker.start()
        assert service.connected.wait(10)
        _wait(lambda: any(t == stored_topic(topic_prefix) for t, _ in listener.got), "hello")
        announcement = orjson.loads(next(p for t, p in listener.got if t.endswith("/stored")))
        assert announcement["engine"] == f"engine-{topic_prefix}"
        pub.connect(host, port)
        pub.loop_start()
        for seq in (41, 42):
            batch = batch_from_columns(
                gateway_id="gw-conf", batch_seq=seq, sent_at_us=T0_US, reader_ids=["R1"],
                antenna=[1], tag=["AB"], rssi_dbm=[-50.0], read_at_us=[T0_US + seq], seq=[seq],
            )  # fmt: skip
            pub.publish(reads_topic(0, f"{topic_prefix}/reads"), encode_batch(batch), qos=1)
        # A batch that breaks the wire contract is quarantined: dealt with, so confirmed too.
        broken = orjson.dumps({"v": 1, "gateway_id": "gw-conf", "batch_seq": 43, "tag": 5})
        pub.publish(reads_topic(0, f"{topic_prefix}/reads"), broken, qos=1)
        # A gateway id that is no topic level is never used as one.
        rogue = orjson.dumps({"v": 1, "gateway_id": "gw/#", "batch_seq": 44})
        pub.publish(reads_topic(0, f"{topic_prefix}/reads"), rogue, qos=1)

        def confirmed() -> set[int]:
            mine = stored_topic(topic_prefix, "gw-conf")
            return {s for t, p in listener.got if t == mine for s in decode_stored(p)}

        _wait(lambda: confirmed() >= {41, 42, 43}, "the confirmations")
        with psycopg.connect(db_url) as conn:  # confirmed means committed
            row = conn.execute("SELECT count(*) FROM reads WHERE reader_id = 'R1'").fetchone()
            assert row == (2,)
            quarantined = conn.execute("SELECT count(*) FROM quarantine").fetchone()
            assert quarantined == (2,)
        topics = {t for t, _ in listener.got}
        assert topics <= {stored_topic(topic_prefix), stored_topic(topic_prefix, "gw-conf")}
    finally:
        stop.set()
        worker.join(10)
        service.close()
        pub.disconnect()
        pub.loop_stop()
        listener.close()
