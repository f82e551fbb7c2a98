"""Reader status rules, and a full spool refusing reads loudly instead of corrupting."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from gw_helpers import PtyReader, active_frames
from testsupport import free_port

from reader_gateway.config import GatewayConfig
from reader_gateway.health import ReaderHealth
from reader_gateway.orchestrator.gateway import Gateway
from reader_gateway.spool import Spool


@pytest.mark.parametrize(
    ("connected", "quiet_s", "status"),
    [(True, 1, "online"), (True, 31, "silent"), (True, 121, "offline"), (False, 1, "offline")],
)
def test_reader_status(connected: bool, quiet_s: float, status: str) -> None:
    health = ReaderHealth(
        "R1", "r2000", last_heard_s=1000.0, last_read_s=1000.0, connected=connected
    )
    got = health.status(1000.0 + quiet_s, silent_after_s=30, offline_after_s=120)
    assert got == status


def test_heartbeats_without_tags_are_silent_not_offline() -> None:
    """A reader that sends health events (Impinj, Zebra) but no tag is up: silent. One that
    has sent nothing at all is never heard, not offline; one whose port closed is offline."""
    beats = ReaderHealth("R1", "zebra-iotc", last_heard_s=1000.0)
    assert beats.status(1005.0, silent_after_s=30, offline_after_s=120) == "silent"
    assert beats.status(1200.0, silent_after_s=30, offline_after_s=120) == "offline"
    quiet = ReaderHealth("R2", "r2000")
    assert quiet.status(0, silent_after_s=1, offline_after_s=2) == "never_heard"
    closed = ReaderHealth("R3", "r2000", connected=False)
    assert closed.status(0, silent_after_s=1, offline_after_s=2) == "offline"
    doc = beats.document("silent", "gw-1", at_s=1005.0)
    assert (doc["status"], doc["at_s"], doc["last_heard_s"], doc["last_read_s"]) == (
        "silent", 1005.0, 1000.0, None,
    )  # fmt: skip


def test_full_spool_refuses_counts_and_stays_readable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reader = PtyReader(tmp_path / "ttyA")
    config = GatewayConfig.model_validate(
        {
            "gateway_id": "gw-full",
            # Nobody listens here: nothing is ever acknowledged, the spool only fills.
            "broker": {"url": f"mqtt://127.0.0.1:{free_port()}"},
            "batching": {"max_reads": 100, "max_delay_s": 0.01},
            "clock": {"estimate": False},
            "spool": {"dir": str(tmp_path / "spool"), "max_bytes": 65536},
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
    stop = threading.Event()
    runner = threading.Thread(target=gateway.run, args=(stop,))
    gateway.start()
    runner.start()
    try:
        assert gateway.wait_until(lambda: gateway.readers["AT-00000007"].connected, 10)
        for frame in active_frames(2000):
            reader.write(frame)
        done = lambda: gateway.reads_accepted + gateway.reads_refused == 2000  # noqa: E731
        # The counts and the normalizer's backlog in the message: this failed twice in
        # full-suite runs on a loaded machine and never alone.
        assert gateway.wait_until(done, 20), (
            gateway.reads_accepted,
            gateway.reads_refused,
            gateway.normalizer.pending_reads,
            gateway.readers["AT-00000007"].frames,
        )
    finally:
        stop.set()
        runner.join(10)
        gateway.close()
        reader.close()
    assert gateway.reads_refused > 0, (gateway.reads_accepted, gateway.spool.bytes_used)
    assert 0 < gateway.reads_accepted < 2000, gateway.reads_refused
    registry = gateway.metrics.registry
    refused = registry.get_sample_value("tagtrail_gateway_spool_refused_reads_total")
    assert refused == gateway.reads_refused
    rejects = registry.get_sample_value(
        "tagtrail_gateway_rejects_total", {"reader": "AT-00000007", "reason": "spool_full"}
    )
    assert rejects == gateway.reads_refused
    assert "refusing reads" in caplog.text
    assert gateway.spool.bytes_used <= 65536
    # What was accepted is intact on disk.
    again = Spool(tmp_path / "spool", max_bytes=65536, segment_bytes=1 << 20)
    assert again.unacked == gateway.spool.unacked
    assert again.corrupt_segments == again.torn_tails == 0
