"""Reader health told apart, end to end: a real gateway hears a Zebra reader's heartbeats
(no tag), an Impinj reader's health event (no tag) and a Zebra reader's tag reads over the
real broker; its retained status documents reach the database through the status recorder;
the API's health says what the gateway said -- silent, silent, online -- and readers nobody
heard are "never heard", not "offline". The rules themselves (a fresh gateway verdict stands,
a stale one gives way, deaf) are checked on the pure function."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psycopg
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from scenarios import line_city

from api.readers.service import health
from api.readers.store import ReaderActivity
from reader_gateway.config import GatewayConfig
from reader_gateway.orchestrator.gateway import Gateway
from reader_gateway.protocols import impinj_iot, zebra_iotc
from track_engine.reader_status import ReaderStatusRecorder

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


class Retained:
    """The retained reader status documents on the broker, as a late subscriber gets them."""

    def __init__(self, mqtt_url: str, prefix: str) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        host, port = mqtt_url.removeprefix("mqtt://").rsplit(":", 1)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"ret-{uuid.uuid4()}")
        self.client.on_message = self._on_message
        self.client.connect(host, int(port))
        self.client.subscribe(f"{prefix}/status/readers/+", qos=1)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        doc = orjson.loads(msg.payload)
        self.docs[doc["reader_id"]] = doc

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _wait(condition: Any, what: str, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_api_health_agrees_with_the_gateway(
    tmp_path: Path,
    api_db: str,
    client: TestClient,
    headers: dict[str, dict[str, str]],
    mqtt_url: str,
    topic_prefix: str,
) -> None:
    line_city(api_db)  # R0 ... R5
    config = GatewayConfig.model_validate(
        {
            "gateway_id": f"gw-health-{uuid.uuid4().hex[:6]}",
            "topic_prefix": topic_prefix,
            "broker": {"url": mqtt_url, "persistent_session": False},
            "batching": {"max_delay_s": 0.05},
            "clock": {"estimate": False},
            "spool": {"dir": str(tmp_path / "spool"), "keep_until": "published"},
            "mqtt": [{"topic": f"{topic_prefix}/raw/+/+"}],
            "health": {"silent_after_s": 30, "offline_after_s": 120, "status_interval_s": 0.2},
        }
    )
    recorder = ReaderStatusRecorder(
        database_url=api_db, mqtt_url=mqtt_url, topic_prefix=topic_prefix,
        client_id=f"status-{uuid.uuid4().hex[:6]}",
    )  # fmt: skip
    stop = threading.Event()
    recorder.start()
    assert recorder.connected.wait(10)
    writer = threading.Thread(target=recorder.run, args=(stop,))
    writer.start()
    gateway = Gateway(config)
    runner = threading.Thread(target=gateway.run, args=(stop,))
    host, port = mqtt_url.removeprefix("mqtt://").rsplit(":", 1)
    reader = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"rd-{uuid.uuid4().hex}")
    reader.connect(host, int(port))
    reader.loop_start()
    retained: Retained | None = None
    try:
        gateway.start()
        runner.start()
        assert gateway.connected.wait(10)
        now = datetime.now(UTC)
        raw = f"{topic_prefix}/raw"
        messages = [
            (f"{raw}/zebra-iotc/R1", zebra_iotc.encode_heartbeat(at=now)),
            (f"{raw}/impinj-iot/R2", impinj_iot.encode_reader_event(
                hostname="R2", event_type="inventoryStatus", at=now, body={"status": "running"}
            )),
            (f"{raw}/zebra-iotc/R3", zebra_iotc.encode_tag_data_event(
                tag_id="E28011606000020528F904FA", antenna=1, rssi_dbm=-60, read_at=now,
                event_num=1,
            )),
        ]  # fmt: skip
        for info in [reader.publish(topic, body, qos=1) for topic, body in messages]:
            info.wait_for_publish(10)

        def recorded() -> dict[str, str | None]:
            with psycopg.connect(api_db) as conn:
                rows = conn.execute("SELECT reader_id, gateway_status FROM readers").fetchall()
            return {str(r): s for r, s in rows}

        _wait(lambda: all(recorded()[r] for r in ("R1", "R2", "R3")), "statuses recorded")
        retained = Retained(mqtt_url, topic_prefix)
        _wait(lambda: {"R1", "R2", "R3"} <= set(retained.docs), "retained statuses")
        items = client.get("/api/v1/readers", headers=headers["operator"]).json()["items"]
        api = {r["reader_id"]: r for r in items}
        for reader_id in ("R1", "R2", "R3"):
            assert api[reader_id]["health"] == retained.docs[reader_id]["status"], reader_id
            assert api[reader_id]["gateway_status"] == retained.docs[reader_id]["status"]
            assert api[reader_id]["last_heard_at"] is not None
        assert [api[r]["health"] for r in ("R1", "R2", "R3")] == ["silent", "silent", "online"]
        # Nobody has heard R0, R4 or R5: never heard, which is not offline.
        assert {api[r]["health"] for r in ("R0", "R4", "R5")} == {"never_heard"}
        assert {api[r]["last_heard_at"] for r in ("R0", "R4", "R5")} == {None}
    finally:
        stop.set()
        for thread in (runner, writer):
            if thread.is_alive():
                thread.join(10)
        gateway.close()
        recorder.close()
        reader.loop_stop()
        if retained is not None:
            retained.close()


def _activity(**kw: Any) -> ReaderActivity:
    base: dict[str, Any] = {
        "reader_id": "R1", "name": "", "protocol": "zebra-iotc", "lon": 0.0, "lat": 0.0,
        "antennas": 1, "installed_at": NOW - timedelta(days=30), "last_heard_at": None,
        "last_read_at": None, "passages_7d": 0,
    }  # fmt: skip
    return ReaderActivity(**{**base, **kw})


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, "never_heard"),
        ({"last_heard_at": NOW - timedelta(minutes=1)}, "online"),
        ({"last_heard_at": NOW - timedelta(hours=1)}, "offline"),
        # Heartbeats, no tag on a road that usually has 10 passages an hour: silent.
        ({"last_heard_at": NOW - timedelta(minutes=1), "passages_7d": 1680,
          "last_read_at": NOW - timedelta(hours=1)}, "silent"),
        # A fresh gateway verdict stands, even against a recent read...
        ({"gateway_status": "offline", "gateway_status_at": NOW - timedelta(seconds=5),
          "last_read_at": NOW - timedelta(minutes=1)}, "offline"),
        ({"gateway_status": "silent", "gateway_status_at": NOW - timedelta(seconds=5),
          "last_heard_at": NOW - timedelta(seconds=5)}, "silent"),
        # ...a stale one (the gateway itself went quiet) gives way to the times,
        ({"gateway_status": "online", "gateway_status_at": NOW - timedelta(hours=1),
          "last_heard_at": NOW - timedelta(hours=1)}, "offline"),
        # and a restarted gateway's "never heard" to what the database remembers.
        ({"gateway_status": "never_heard", "gateway_status_at": NOW - timedelta(seconds=5),
          "last_heard_at": NOW - timedelta(minutes=2)}, "online"),
        ({"gateway_status": "never_heard", "gateway_status_at": NOW}, "never_heard"),
    ],
)  # fmt: skip
def test_health_rules(kw: dict[str, Any], expected: str) -> None:
    assert health(_activity(**kw), now=NOW) == expected
