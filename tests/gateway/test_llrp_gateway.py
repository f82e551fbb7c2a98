"""The gateway with an LLRP reader: reads published over the real Mosquitto, and a bad message
on the reader's status topic, in the metrics and the quarantine, with the connection reset."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from gw_helpers import Collector, RunningGateway, wait_until
from llrp_peer import ScriptedReader

from reader_gateway.config import GatewayConfig
from reader_gateway.protocols import llrp_encode as enc
from reader_gateway.protocols import llrp_spec as s

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)


def test_llrp_reads_published_and_a_bad_message_reported(
    tmp_path: Path, mqtt_url: str, topic_prefix: str
) -> None:
    peer = ScriptedReader()
    config = GatewayConfig.model_validate(
        {
            "gateway_id": f"gw-llrp-{uuid.uuid4().hex[:6]}",
            "topic_prefix": topic_prefix,
            "broker": {"url": mqtt_url, "persistent_session": False},
            "batching": {"max_delay_s": 0.05},
            "clock": {"estimate": False},
            "spool": {"dir": str(tmp_path / "spool"), "keep_until": "published"},
            "llrp": [
                {
                    "host": "127.0.0.1",
                    "port": peer.port,
                    "reader_id": "LL-7",
                    "keepalive_s": 1.0,
                    "dead_after_s": 30.0,
                    "reconnect_min_s": 0.05,
                }
            ],
        }
    )
    tags = [
        enc.TagReport(
            f"E28011606000020{i:09X}", 1 + i % 2, -55, first_seen=T0 + timedelta(seconds=i)
        )
        for i in range(10)
    ]
    done = threading.Event()

    def script() -> None:
        peer.handshake()
        peer.send(b"".join(enc.encode_ro_access_report([t], message_id=i)
                           for i, t in enumerate(tags[:6])))  # fmt: skip
        peer.send(enc.encode_message(777, b"", message_id=99))  # no reader sends type 777
        peer.conn.settimeout(5)  # type: ignore[union-attr]
        assert peer.conn.recv(1024) == b""  # type: ignore[union-attr]
        peer.close_connection()
        peer.handshake()
        peer.send(b"".join(enc.encode_ro_access_report([t], message_id=i)
                           for i, t in enumerate(tags[6:])))  # fmt: skip
        mid, _ = peer.expect(s.STOP_ROSPEC)
        peer.send(enc.encode_response(s.STOP_ROSPEC_RESPONSE, message_id=mid))
        peer.answer(s.DELETE_ROSPEC, s.DELETE_ROSPEC_RESPONSE)
        peer.answer(s.CLOSE_CONNECTION, s.CLOSE_CONNECTION_RESPONSE)
        done.set()

    status = Collector(mqtt_url, [f"{topic_prefix}/status/readers/#"], f"st-{uuid.uuid4().hex}")
    thread = threading.Thread(target=script, daemon=True)
    thread.start()
    running = RunningGateway(config, mqtt_url)
    try:
        wait_until(lambda: len(running.collector.natural_keys()) >= 10, 20, "ten reads published")
        topic = f"{topic_prefix}/status/readers/LL-7"

        def status_doc() -> dict[str, object]:
            raw = status.retained.get(topic)
            return orjson.loads(raw) if raw else {}

        wait_until(
            lambda: (
                status_doc().get("transport", {}).get("phase") == "reading"  # type: ignore[union-attr]
                and "last_error" in status_doc().get("transport", {})
            ),  # type: ignore[operator]
            10,
            "the reset on the status topic",
        )
        metrics = running.gateway.metrics.registry
        resets = metrics.get_sample_value(
            "tagtrail_gateway_reader_resets_total", {"reader": "LL-7", "reason": "unknown_message"}
        )
        rejects = running.rejects("LL-7", "unknown_message")
        doc = status_doc()
    finally:
        running.close()
        status.close()
        thread.join(10)
        peer.close()
    assert done.is_set(), "the gateway did not stop the reader cleanly"
    keys = running.collector.natural_keys()
    assert sorted(k[1] for k in keys) == sorted(t.tag_id for t in tags)  # each exactly once
    assert {k[0] for k in keys} == {"LL-7"}
    assert resets == 1.0
    assert rejects == 1.0
    transport = doc["transport"]
    assert isinstance(transport, dict)
    assert transport["last_error"]["reason"] == "unknown_message"
    assert "777" in transport["last_error"]["message"]
    assert doc["protocol"] == "llrp"
    assert doc["status"] == "online"
    quarantined = (tmp_path / "spool" / "quarantine.ndjson").read_text()
    assert "unknown_message" in quarantined
