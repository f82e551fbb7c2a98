"""A gateway keeps each batch in its spool until an engine confirms it stored it.

Real Mosquitto, a pty reader, and the test playing the engine: it collects the gateway's
batches and publishes confirmations on ``<prefix>/stored/<gateway_id>`` (and an engine's
announcement on ``<prefix>/stored``) with the wire contract's encoder, as the engine does.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from gw_helpers import Collector, PtyReader, active_frames, wait_until
from paho.mqtt.enums import CallbackAPIVersion

from reader_gateway.brokers import mqtt_endpoint
from reader_gateway.config import GatewayConfig
from reader_gateway.orchestrator.gateway import Gateway
from reader_gateway.wire import encode_stored, stored_topic


def test_batches_stay_spooled_until_confirmed_and_unconfirmed_ones_go_again(
    tmp_path: Path, mqtt_url: str, topic_prefix: str
) -> None:
    gateway_id = f"gw-conf-{uuid.uuid4().hex[:6]}"
    reader = PtyReader(tmp_path / "ttyACTIVE")
    config = GatewayConfig.model_validate(
        {
            "gateway_id": gateway_id,
            "topic_prefix": topic_prefix,
            "broker": {"url": mqtt_url, "persistent_session": False, "max_inflight": 4},
            "batching": {"max_reads": 10, "max_delay_s": 0.02},
            "clock": {"estimate": False},
            "spool": {"dir": str(tmp_path / "spool"), "confirm_timeout_s": 1.0},
            "serial": [
                {
                    "port": str(reader.link),
                    "reader_id": "AT-00000007",
                    "protocol": "tagtrail-active",
                }
            ],
        }
    )  # fmt: skip
    collector = Collector(mqtt_url, [f"{topic_prefix}/reads/#"], f"c-{gateway_id}", clean=True)
    host, port = mqtt_endpoint(mqtt_url)
    engine = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"e-{gateway_id}")
    gateway = Gateway(config)
    stop = threading.Event()
    runner = threading.Thread(target=gateway.run, args=(stop,))

    def confirm(seqs: list[int]) -> None:
        topic = stored_topic(topic_prefix, gateway_id)
        engine.publish(topic, encode_stored(gateway_id, seqs), qos=1).wait_for_publish(5)

    def seen() -> list[int]:
        collector.natural_keys()  # moves what arrived into the collector's list
        return [b.batch_seq for b in collector._seen]

    try:
        assert collector.subscribed.wait(10)
        engine.connect(host, port)
        engine.loop_start()
        gateway.start()
        runner.start()
        assert gateway.wait_until(lambda: gateway.connected.is_set(), 10)
        for frame in active_frames(60):
            reader.write(frame)
        # The broker acknowledges every batch, but nothing is confirmed: the window (4) fills
        # and everything stays in the spool; the rest waits unsent.
        assert gateway.wait_until(lambda: gateway.unconfirmed == 4, 10)
        assert gateway.wait_until(lambda: gateway.reads_accepted == 60, 10)
        batches = gateway.spool.unacked  # ids 1..batches (cut by size or by delay)
        assert batches >= 6
        assert sorted(set(seen())) == [1, 2, 3, 4]
        # No confirmation within confirm_timeout_s: the same four go out again.
        wait_until(lambda: sorted(seen()).count(1) >= 2, 10, "batch 1 published again")
        assert gateway.batches_republished >= 4
        # Confirmed batches leave the spool; the window moves on to the next ones.
        confirm([1, 2, 3, 4])
        assert gateway.wait_until(lambda: gateway.spool.unacked == batches - 4, 10)
        wait_until(lambda: {5, 6} <= set(seen()), 10, "batches 5 and 6")
        # An engine announcing a (re)subscription gets the unconfirmed ones sent again.
        assert gateway.wait_until(lambda: gateway.unconfirmed >= 2, 10)
        again = gateway.batches_republished
        engine.publish(stored_topic(topic_prefix), b'{"v": 1, "engine": "e"}', qos=1)
        assert gateway.wait_until(lambda: gateway.batches_republished >= again + 2, 10)
        rest = list(range(5, batches + 1))
        confirm([*rest, rest[0]])  # a repeat confirmation is harmless
        assert gateway.wait_until(gateway.idle, 10)
        assert gateway.reads_confirmed == 60
    finally:
        stop.set()
        runner.join(10)
        gateway.close()
        engine.disconnect()
        engine.loop_stop()
        collector.close()
        reader.close()
