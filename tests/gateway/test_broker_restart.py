"""Broker stopped mid-stream and restarted: every read arrives, exactly once after de-dup.

The gateway keeps reading its (pty) reader while the broker is down, spools, and replays in
order when the broker is back. A private mosquitto on a free port is stopped and restarted;
the machine's shared broker is never touched.

The test drives the gateway's steps itself, so that it knows what the gateway has handed to
paho. Before stopping the broker it waits until the subscriber has everything handed over:
mosquitto 2.0 (with persistence) was seen to drop messages it had already acknowledged but
not yet delivered to a *connected* subscriber when it shuts down. That is a broker loss the
gateway cannot see (it holds a PUBACK), so it is kept out of this test of the gateway.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from gw_helpers import Collector, Mosquitto, PtyReader, active_frames, wait_until
from testsupport import free_port

from reader_gateway.config import GatewayConfig
from reader_gateway.orchestrator.gateway import Gateway
from reader_gateway.protocols import tagtrail_active

PREFIX = "tagtrail-test/v1"


def _expected(frames: list[bytes]) -> set[tuple[str, str, int, int]]:
    keys = set()
    for frame in frames:
        read = tagtrail_active.parse_frame(frame)
        at_us = int(read.read_at.timestamp()) * 1_000_000 + read.read_at.microsecond
        keys.add((str(read.reader_id), read.tag_id, at_us, read.antenna))
    return keys


def _drive(gateway: Gateway, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        gateway.step(timeout_s=0.01)
        assert gateway.inflight <= gateway.config.broker.max_inflight


def test_broker_outage_loses_nothing(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path, free_port())
    broker.start()
    collector = Collector(broker.url, [f"{PREFIX}/reads/#"], "collector-outage")
    reader = PtyReader(tmp_path / "ttyACTIVE")
    config = GatewayConfig.model_validate(
        {
            "gateway_id": "gw-outage",
            "topic_prefix": PREFIX,
            "broker": {"url": broker.url, "max_inflight": 2, "reconnect_min_s": 0.5},
            "batching": {"max_reads": 10, "max_delay_s": 0.02},
            "clock": {"estimate": False},
            # No engine here to confirm stored batches: the PUBACK releases them.
            "spool": {
                "dir": str(tmp_path / "spool"),
                "segment_bytes": 8192,
                "keep_until": "published",
            },
            "serial": [
                {
                    "port": str(reader.link),
                    "reader_id": "AT-00000007",
                    "protocol": "tagtrail-active",
                }
            ],
        }
    )
    gateway = Gateway(config)
    frames = active_frames(900)
    try:
        assert collector.subscribed.wait(10)
        gateway.start()
        _drive(gateway, lambda: gateway.connected.is_set(), 10, "the broker")
        _drive(gateway, lambda: gateway.readers["AT-00000007"].connected, 10, "the pty to open")
        for frame in frames[:400]:
            reader.write(frame)
        _drive(gateway, lambda: gateway.reads_out >= 100, 10, "the first acknowledgements")
        # Mid-stream: 400 reads written, some published, the rest still coming or on disk.
        handed_over = gateway.reads_out + gateway.inflight_reads
        wait_until(lambda: len(collector.natural_keys()) >= handed_over, 10, "the subscriber")
        collector.subscribed.clear()
        broker.stop()
        for frame in frames[400:]:  # the reader does not care that the broker is gone
            reader.write(frame)
        _drive(gateway, lambda: gateway.reads_accepted == 900, 10, "all reads spooled")
        assert not gateway.link.is_connected.is_set()
        assert gateway.spool.unacked > 0  # waiting on disk for the broker
        broker.start()
        # The subscriber is back before the gateway replays (only batches that paho had in
        # flight can go out before that: paho re-sends them on its own on reconnect).
        assert collector.subscribed.wait(10)
        _drive(gateway, gateway.idle, 20, "the spool to drain")
        wait_until(lambda: len(set(collector.natural_keys())) >= 900, 20, "every read downstream")
        keys = collector.natural_keys()
        assert set(keys) == _expected(frames)  # exactly once after de-duplication
        assert len(keys) >= 900  # and at least once before it
        assert gateway.link.connects == 2
    finally:
        gateway.close()
        collector.close()
        reader.close()
        broker.stop()
