"""Serial transport over real ptys: chunked frames, garbage, replies, unplug and replug."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from gw_helpers import Collector, PtyReader, wait_until

from reader_gateway.config import GatewayConfig
from reader_gateway.orchestrator.gateway import Gateway
from reader_gateway.protocols import r2000


@pytest.fixture
def pty_reader(tmp_path: Path) -> Iterator[PtyReader]:
    reader = PtyReader(tmp_path / "ttyR2000")
    yield reader
    reader.close()


def _config(tmp_path: Path, link: Path, mqtt_url: str, prefix: str) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "gateway_id": f"gw-pty-{uuid.uuid4().hex[:6]}",
            "topic_prefix": prefix,
            "broker": {"url": mqtt_url, "persistent_session": False},
            "batching": {"max_delay_s": 0.05},
            "clock": {"estimate": False},
            "health": {"status_interval_s": 0.2},
            # No engine here to confirm stored batches: the PUBACK releases them.
            "spool": {"dir": str(tmp_path / "spool"), "keep_until": "published"},
            "serial": [
                {
                    "port": str(link),
                    "reader_id": "R2K",
                    "protocol": "r2000",
                    "reopen_min_s": 0.05,
                    "reopen_max_s": 0.2,
                }
            ],
        }
    )


def _tag_frames(first: int, n: int) -> bytes:
    return b"".join(
        r2000.encode_tag_frame(tag_id=f"E200{i:020X}", antenna=1 + i % 4, rssi_dbm=-50 - i % 30)
        for i in range(first, first + n)
    )


def test_frames_garbage_replies_and_replug(
    tmp_path: Path, pty_reader: PtyReader, mqtt_url: str, topic_prefix: str
) -> None:
    collector = Collector(
        mqtt_url, [f"{topic_prefix}/reads/#", f"{topic_prefix}/status/#"], "c-pty", clean=True
    )
    assert collector.subscribed.wait(10)
    gateway = Gateway(_config(tmp_path, pty_reader.link, mqtt_url, topic_prefix))
    stop = threading.Event()
    gateway.start()
    runner = threading.Thread(target=gateway.run, args=(stop,))
    runner.start()
    try:
        start = r2000.encode_realtime_inventory()
        assert pty_reader.read_available(5) == start  # the reader is told to inventory

        stream = _tag_frames(0, 40) + b"\x13\x37noise" + _tag_frames(40, 40)
        stream += r2000.encode_round_end(total_read=80)
        # Cut at odd places, as a USB-serial adapter hands bytes over.
        for cut in range(0, len(stream), 97):
            pty_reader.write(stream[cut : cut + 97])
        assert pty_reader.read_available(5) == start  # re-sent after the round summary
        assert gateway.wait_until(lambda: gateway.reads_accepted == 80, 10)
        assert gateway.readers["R2K"].rejects["framing"] == 1

        chunks_in = gateway.readers["R2K"].messages
        pty_reader.write(_tag_frames(80, 1)[:9])  # half a frame, then the cable comes out
        assert gateway.wait_until(lambda: gateway.readers["R2K"].messages > chunks_in, 10)
        pty_reader.unplug()
        assert gateway.wait_until(lambda: not gateway.readers["R2K"].connected, 10)
        pty_reader.plug()
        assert pty_reader.read_available(10) == start  # reopened through the same link
        pty_reader.write(_tag_frames(100, 20))
        assert gateway.wait_until(lambda: gateway.reads_accepted == 100, 10)
        assert gateway.readers["R2K"].rejects["truncated"] == 1  # the half frame

        wait_until(lambda: len(collector.natural_keys()) == 100, 10, "100 reads at the subscriber")
        tags = {key[1] for key in collector.natural_keys()}
        assert tags == {f"E200{i:020X}" for i in [*range(80), *range(100, 120)]}
        status_topic = f"{topic_prefix}/status/readers/R2K"

        def status() -> dict[str, object]:
            raw = collector.retained.get(status_topic)
            return orjson.loads(raw) if raw else {}

        wait_until(lambda: status().get("reads") == 100, 10, "reader status with 100 reads")
        assert status()["status"] == "online"
        assert status()["rejects"] == {"framing": 1, "truncated": 1}
    finally:
        stop.set()
        runner.join(10)
        gateway.close()
        collector.close()
    assert gateway.spool.unacked == 0
