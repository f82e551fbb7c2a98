"""A gateway whose disk is full leaves raw reader messages with the broker instead of losing them.

A real full filesystem: a 256 KiB tmpfs mounted for the test (root only) holds the spool and a
file that takes every free block, so the spool's ``write`` fails with ENOSPC. Readers publish to
the real Mosquitto. Before the fix the gateway acknowledged each raw message whose reads it had
just refused, so the broker dropped them: 120 reads and a stolen-bike alert lost. Now the
messages stay unacknowledged (QoS 1, manual ack): held in memory and handled again once the
disk has room, and delivered again by the broker to the next gateway run of the session.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from gw_helpers import Collector, wait_until
from paho.mqtt.enums import CallbackAPIVersion

from reader_gateway.config import GatewayConfig
from reader_gateway.orchestrator.gateway import Gateway
from reader_gateway.protocols.impinj_iot import encode_tag_inventory_event

_MESSAGES = 30


class FullDisk:
    """A small tmpfs with a filler file over all of its free space."""

    def __init__(self, mount: Path) -> None:
        self.mount = mount
        self.filler = mount / "filler"

    def fill(self) -> None:
        """Write until the filesystem refuses (ENOSPC): then no block is free."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * 4096)
        finally:
            os.close(fd)
        with pytest.raises(OSError, match="No space left"):
            (self.mount / "probe").write_bytes(b"\0" * 4096)

    def free(self) -> None:
        """Delete the filler: the whole filesystem is free again."""
        self.filler.unlink()
        (self.mount / "probe").unlink(missing_ok=True)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[FullDisk]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield FullDisk(mount)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def _config(spool: Path, mqtt_url: str, prefix: str, client_id: str) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "gateway_id": client_id,
            "topic_prefix": prefix,
            "broker": {"url": mqtt_url, "client_id": client_id, "persistent_session": True},
            "batching": {"max_delay_s": 0.05},
            "clock": {"estimate": False},
            "spool": {"dir": str(spool), "keep_until": "published"},  # no engine confirms here
            "mqtt": [{"topic": f"{prefix}/raw/+/+"}],
        }
    )


def _start(gateway: Gateway) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    runner = threading.Thread(target=gateway.run, args=(stop,))
    gateway.start()
    runner.start()
    assert gateway.connected.wait(10), "the gateway never got its SUBACK"
    return stop, runner


def _stop(gateway: Gateway, stop: threading.Event, runner: threading.Thread) -> None:
    stop.set()
    runner.join(10)
    gateway.close()


def _publish_reads(mqtt_url: str, prefix: str) -> set[str]:
    """R0001 publishes one read per message; returns the tags."""
    host, port = mqtt_url.removeprefix("mqtt://").rsplit(":", 1)
    reader = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"rd-{uuid.uuid4().hex}")
    reader.connect(host, int(port))
    reader.loop_start()
    now = datetime.now(UTC)
    tags = {f"E2F0{i:020X}" for i in range(_MESSAGES)}
    try:
        infos = [
            reader.publish(
                f"{prefix}/raw/impinj-iot/R0001",
                encode_tag_inventory_event(
                    hostname="R0001", tag_id=tag, antenna=1, rssi_dbm=-60,
                    read_at=now + timedelta(milliseconds=i),
                ),
                qos=1,
            )
            for i, tag in enumerate(sorted(tags))
        ]  # fmt: skip
        for info in infos:
            info.wait_for_publish(10)
    finally:
        reader.loop_stop()
        reader.disconnect()
    return tags


def _failed_writes(gateway: Gateway) -> float:
    """Reads whose spool write failed: refused for good, or left with the broker."""
    registry = gateway.metrics.registry
    names = (
        "tagtrail_gateway_spool_refused_reads_total",
        "tagtrail_gateway_spool_deferred_reads_total",
    )
    return sum(registry.get_sample_value(name) or 0.0 for name in names)


def _tags_out(collector: Collector) -> set[str]:
    return {key[1] for key in collector.natural_keys()}


def test_disk_full_holds_raw_messages_unacked_and_spools_them_once_space_is_freed(
    full_disk: FullDisk, mqtt_url: str, topic_prefix: str
) -> None:
    client_id = f"gw-full-{uuid.uuid4().hex[:8]}"
    gateway = Gateway(_config(full_disk.mount / "spool", mqtt_url, topic_prefix, client_id))
    collector = Collector(mqtt_url, [f"{topic_prefix}/reads/#"], f"c-{client_id}", clean=True)
    assert collector.subscribed.wait(10)
    stop, runner = _start(gateway)
    try:
        full_disk.fill()
        tags = _publish_reads(mqtt_url, topic_prefix)
        assert gateway.wait_until(lambda: _failed_writes(gateway) > 0, 10), "no write failed"
        assert gateway.reads_refused == 0  # nothing refused for good: the broker has them
        assert gateway.metrics.registry.get_sample_value("tagtrail_gateway_raw_held_messages")
        assert _tags_out(collector) == set()
        full_disk.free()
        wait_until(lambda: _tags_out(collector) == tags, 15, "every read once the disk had room")
        assert gateway.wait_until(gateway.idle, 10)  # held messages acknowledged at last
        # Handled again, a held message is not counted again.
        health = gateway.readers["R0001"]
        assert health.messages == gateway.messages_in == _MESSAGES
        assert health.reads == _MESSAGES
        assert gateway.messages_acked == _MESSAGES  # each acknowledged once, when spooled
    finally:
        _stop(gateway, stop, runner)
        collector.close()


def test_disk_full_gateway_restarted_gets_every_raw_message_again_from_the_broker(
    full_disk: FullDisk, mqtt_url: str, topic_prefix: str
) -> None:
    client_id = f"gw-full-{uuid.uuid4().hex[:8]}"
    config = _config(full_disk.mount / "spool", mqtt_url, topic_prefix, client_id)
    collector = Collector(mqtt_url, [f"{topic_prefix}/reads/#"], f"c-{client_id}", clean=True)
    assert collector.subscribed.wait(10)
    first = Gateway(config)
    stop, runner = _start(first)
    try:
        full_disk.fill()
        tags = _publish_reads(mqtt_url, topic_prefix)
        assert first.wait_until(lambda: _failed_writes(first) > 0, 10), "no write failed"
        assert first.reads_refused == 0
    finally:
        _stop(first, stop, runner)  # a clean stop: its session, unacked messages and all, stays
    assert _tags_out(collector) == set()
    full_disk.free()
    second = Gateway(config)  # same client id, same spool: the broker delivers again
    stop, runner = _start(second)
    try:
        wait_until(lambda: _tags_out(collector) == tags, 15, "every read from the broker again")
        assert second.wait_until(second.idle, 10)
    finally:
        _stop(second, stop, runner)
        collector.close()
        # Leave no persistent session behind on the shared broker.
        host, port = mqtt_url.removeprefix("mqtt://").rsplit(":", 1)
        cleaner = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        cleaner.connect(host, int(port))
        cleaner.disconnect()
