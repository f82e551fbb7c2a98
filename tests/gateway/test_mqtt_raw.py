"""Raw MQTT subscriptions end to end: QoS 1 in (acked after spooling), de-dup, rejects, batches."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from gw_helpers import T0, Collector, wait_until
from paho.mqtt.enums import CallbackAPIVersion

from reader_gateway.config import GatewayConfig
from reader_gateway.orchestrator.gateway import Gateway
from reader_gateway.protocols import zebra_iotc


def test_zebra_reader_over_mqtt_is_deduplicated_and_published(
    tmp_path: Path, mqtt_url: str, topic_prefix: str
) -> None:
    config = GatewayConfig.model_validate(
        {
            "gateway_id": f"gw-raw-{uuid.uuid4().hex[:6]}",
            "topic_prefix": topic_prefix,
            "broker": {"url": mqtt_url, "persistent_session": False},
            "batching": {"max_delay_s": 0.05, "dedupe_window_s": 1.0},
            "clock": {"estimate": False},
            # No engine here to confirm stored batches: the PUBACK releases them.
            "spool": {"dir": str(tmp_path / "spool"), "keep_until": "published"},
            "mqtt": [{"topic": f"{topic_prefix}/raw/+/+", "antenna_map": {1: 3}}],
        }
    )
    collector = Collector(mqtt_url, [f"{topic_prefix}/reads/#"], "c-raw", clean=True)
    gateway = Gateway(config)
    stop = threading.Event()
    runner = threading.Thread(target=gateway.run, args=(stop,))
    host, port = mqtt_url.removeprefix("mqtt://").rsplit(":", 1)
    reader = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"zebra-{uuid.uuid4().hex[:6]}")
    reader.connect(host, int(port))
    reader.loop_start()
    try:
        assert collector.subscribed.wait(10)
        gateway.start()
        runner.start()
        assert gateway.connected.wait(10)
        topic = f"{topic_prefix}/raw/zebra-iotc/FX9600-1"
        infos = []
        for i in range(30):  # one tag read every 100 ms for 3 s, as a reader reports it
            event = zebra_iotc.encode_tag_data_event(
                tag_id="E28011606000020528F904FA",
                antenna=1,
                rssi_dbm=-60,
                read_at=T0 + timedelta(milliseconds=100 * i),
                event_num=i,
                utc_offset_minutes=-330,
            )
            infos.append(reader.publish(topic, event, qos=1))
        infos.append(reader.publish(topic, zebra_iotc.encode_heartbeat(at=T0), qos=1))
        infos.append(reader.publish(topic, b'{"data": {"idHex": "E2', qos=1))
        for info in infos:
            info.wait_for_publish(10)
        health = gateway.readers
        assert gateway.wait_until(
            lambda: "FX9600-1" in health and health["FX9600-1"].messages == 32, 10
        )
        wait_until(lambda: len(collector.natural_keys()) == 3, 10, "three kept reads")
        keys = sorted(collector.natural_keys())
        t0_us = int(T0.timestamp()) * 1_000_000
        assert [k[2] - t0_us for k in keys] == [0, 1_000_000, 2_000_000]
        assert {k[3] for k in keys} == {3}  # antenna mapped
        assert health["FX9600-1"].duplicates == 27
        assert health["FX9600-1"].rejects == {"payload": 1}
        assert gateway.wait_until(gateway.idle, 10)  # every raw message acknowledged
    finally:
        stop.set()
        if runner.is_alive():
            runner.join(10)
        gateway.close()
        reader.loop_stop()
        reader.disconnect()
        collector.close()
