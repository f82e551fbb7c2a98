"""Helpers for the gateway tests: a private Mosquitto, pty readers, a collecting subscriber.

Every test that stops a broker starts its own ``mosquitto`` on a free loopback port; the
machine's shared broker on 1883 is never touched.
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import threading
import time
import tty
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from testsupport import free_port

from reader_gateway.config import GatewayConfig
from reader_gateway.orchestrator.gateway import Gateway
from reader_gateway.protocols import tagtrail_active
from reader_gateway.wire import ReadBatch, decode_batch

# Read times near the real clock: the gateway refuses reads far from it (ClockConfig).
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


class Mosquitto:
    """A private mosquitto process with persistence, restartable on the same port."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.port = port
        self.url = f"mqtt://127.0.0.1:{port}"
        self.conf = workdir / "mosquitto.conf"
        (workdir / "data").mkdir(exist_ok=True)
        self.conf.write_text(
            # user root: started as root, mosquitto would otherwise switch to its own user,
            # which cannot write pytest's tmp dir, and silently run without persistence.
            ("user root\n" if os.geteuid() == 0 else "")
            + f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {workdir / 'data'}/\nmax_inflight_messages 0\n"
            "log_dest none\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)])

        def accepting() -> bool:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                return False
            return True

        wait_until(accepting, 10, f"mosquitto on port {self.port}")

    def stop(self) -> None:
        """Stop it (SIGTERM: it saves its persistence file) and wait for the exit."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class Collector:
    """A persistent-session subscriber that keeps every batch it receives."""

    def __init__(self, url: str, topics: list[str], client_id: str, *, clean: bool = False) -> None:
        host, port = url.removeprefix("mqtt://").rsplit(":", 1)
        self._seen: list[ReadBatch] = []
        self.batches: queue.Queue[ReadBatch] = queue.Queue()
        self.retained: dict[str, bytes] = {}
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean
        )
        self.client.on_connect = lambda c, *_: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.connect_async(host, int(port))
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        if "/reads/" in msg.topic:
            self.batches.put(decode_batch(msg.payload))
        else:
            self.retained[msg.topic] = bytes(msg.payload)

    def natural_keys(self) -> list[tuple[str, str, int, int]]:
        """Natural keys (reader, tag, read_at_us, antenna) of every read received so far."""
        out: list[tuple[str, str, int, int]] = []
        while not self.batches.empty():
            self._seen.append(self.batches.get())
        for batch in self._seen:
            readers = batch.reader_ids().tolist()
            out.extend(
                zip(
                    readers,
                    batch.tag.tolist(),
                    batch.read_at_us.tolist(),
                    batch.antenna.tolist(),
                    strict=True,
                )
            )
        return out

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


class PtyReader:
    """A fake reader on a pty, reachable through a stable symlink (like /dev/serial/by-id)."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master = self.slave = -1
        self.plug()

    def plug(self) -> None:
        """Create a new pty and point the symlink at it."""
        master, slave = os.openpty()
        # Raw mode before anyone writes, so that the line discipline does not echo or cook.
        tty.setraw(slave)
        name = os.ttyname(slave)
        # Hold the slave open (never read): with no slave open the master reports a hang-up.
        self.master, self.slave = master, slave
        self.link.unlink(missing_ok=True)
        self.link.symlink_to(name)

    def unplug(self) -> None:
        """Close the pty (the gateway's reads fail) and remove the symlink."""
        os.close(self.master)
        os.close(self.slave)
        self.master = self.slave = -1
        self.link.unlink(missing_ok=True)

    def write(self, data: bytes) -> None:
        """Write bytes as the reader would send them."""
        view = memoryview(data)
        while view:
            view = view[os.write(self.master, view) :]

    def read_available(self, timeout_s: float = 0.5) -> bytes:
        """Bytes the gateway wrote to the reader (waits up to ``timeout_s`` for the first)."""
        import select

        out = b""
        ready, _, _ = select.select([self.master], [], [], timeout_s)
        while ready:
            out += os.read(self.master, 4096)
            ready, _, _ = select.select([self.master], [], [], 0.05)
        return out

    def close(self) -> None:
        """Close whatever is still open."""
        if self.master >= 0:
            self.unplug()


def active_frames(n: int, *, start: int = 0, reader_id: int = 7) -> list[bytes]:
    """``n`` active-tag frames with distinct (tag, time): each read has its own natural key."""
    return [
        tagtrail_active.encode_frame(
            reader_id=reader_id,
            reader_seq=i,
            read_at=T0 + timedelta(milliseconds=37 * i),
            tag_id=f"{0xA000000000000000 + i % 50:016X}",
            rssi_dbm=-60 - i % 20,
            antenna=1 + i % 4,
        )
        for i in range(start, start + n)
    ]


def spool_only_config(
    tmp_path: Path, port: Path, *, gateway_id: str, max_delay_s: float
) -> GatewayConfig:
    """One tagtrail-active serial reader ``AT-00000007`` on ``port`` and a broker nobody listens on:
    nothing is published, accepted reads only go to the spool under ``tmp_path``."""
    return GatewayConfig.model_validate(
        {
            "gateway_id": gateway_id,
            "broker": {"url": f"mqtt://127.0.0.1:{free_port()}"},
            "batching": {"max_reads": 10_000, "max_delay_s": max_delay_s},
            "clock": {"estimate": False},
            "spool": {"dir": str(tmp_path / "spool")},
            "serial": [
                {"port": str(port), "reader_id": "AT-00000007", "protocol": "tagtrail-active"}
            ],
        }
    )


class RunningGateway:
    """A gateway on a thread over the real broker, a reader client and a batch collector."""

    def __init__(self, config: GatewayConfig, mqtt_url: str) -> None:
        self.gateway = Gateway(config)
        prefix = config.topic_prefix
        self.collector = Collector(
            mqtt_url, [f"{prefix}/reads/#"], f"c-{uuid.uuid4().hex[:8]}", clean=True
        )
        self.stop = threading.Event()
        self.runner = threading.Thread(target=self.gateway.run, args=(self.stop,))
        host, port = mqtt_url.removeprefix("mqtt://").rsplit(":", 1)
        self.reader = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"rd-{uuid.uuid4().hex}")
        self.reader.connect(host, int(port))
        self.reader.loop_start()
        assert self.collector.subscribed.wait(10)
        self.gateway.start()
        self.runner.start()
        assert self.gateway.connected.wait(10), "the gateway never got its SUBACK"

    def publish(self, topic: str, payloads: list[bytes]) -> None:
        """Publish QoS 1 as a reader does, and wait for the broker to take each message."""
        for info in [self.reader.publish(topic, p, qos=1) for p in payloads]:
            info.wait_for_publish(10)

    def rejects(self, reader: str, reason: str) -> float:
        """The gateway's ``rejects_total`` metric for one reader and reason."""
        value = self.gateway.metrics.registry.get_sample_value(
            "tagtrail_gateway_rejects_total", {"reader": reader, "reason": reason}
        )
        return value or 0.0

    def close(self) -> None:
        """Stop the gateway and disconnect everyone."""
        self.stop.set()
        if self.runner.is_alive():
            self.runner.join(10)
        self.gateway.close()
        self.reader.loop_stop()
        self.reader.disconnect()
        self.collector.close()


def raw_gateway_config(tmp_path: Path, mqtt_url: str, topic_prefix: str) -> GatewayConfig:
    """A gateway subscribed to every raw reader topic under ``topic_prefix``."""
    return GatewayConfig.model_validate(
        {
            "gateway_id": f"gw-id-{uuid.uuid4().hex[:6]}",
            "topic_prefix": topic_prefix,
            "broker": {"url": mqtt_url, "persistent_session": False},
            "batching": {"max_delay_s": 0.05},
            "clock": {"estimate": False},
            # No engine runs here to confirm stored batches: the broker's PUBACK releases them.
            "spool": {"dir": str(tmp_path / "spool"), "keep_until": "published"},
            "mqtt": [{"topic": f"{topic_prefix}/raw/+/+"}],
            # The active-tag receiver R0001 writes its device id 1 into its frames.
            "reader_aliases": {"AT-00000001": "R0001"},
        }
    )
