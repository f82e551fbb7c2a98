"""Gateway process SIGKILLed and restarted: nothing it spooled is lost; its will says offline.

The gateway runs as ``tagtrail gateway --config FILE`` in a subprocess reading a pty reader.
The broker (a private mosquitto) is down while it reads, so every read waits in the spool;
the process is killed, the broker started, the gateway restarted: every read arrives.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import orjson
from gw_helpers import Collector, Mosquitto, PtyReader, active_frames, wait_until
from testsupport import free_port

PREFIX = "tagtrail-kill/v1"


def _metric(port: int, name: str) -> float:
    """Sum of a metric's samples on the gateway's /metrics page (0 if absent or down)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as resp:
            text = resp.read().decode()
    except OSError:
        return 0.0
    pattern = re.compile(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", re.MULTILINE)
    return sum(float(v) for v in pattern.findall(text))


def _start(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tagtrail", "gateway", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_sigkill_loses_nothing_spooled(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path, free_port())
    metrics_port = free_port()
    reader = PtyReader(tmp_path / "ttyACTIVE")
    config = tmp_path / "gateway.toml"
    config.write_text(
        f"""
gateway_id = "gw-kill"
topic_prefix = "{PREFIX}"

[broker]
url = "{broker.url}"
reconnect_min_s = 0.5
reconnect_max_s = 1

[batching]
max_reads = 50
max_delay_s = 0.05

[clock]
estimate = false

[spool]
dir = "spool"

[health]
metrics_port = {metrics_port}

[[serial]]
port = "{reader.link}"
reader_id = "AT-00000007"
protocol = "tagtrail-active"
"""
    )
    frames = active_frames(500)
    procs: list[subprocess.Popen[bytes]] = []
    collector: Collector | None = None
    try:
        procs.append(_start(config))
        wait_until(
            lambda: _metric(metrics_port, "tagtrail_gateway_serial_port_open") == 1, 20, "port"
        )
        for frame in frames:
            reader.write(frame)
        wait_until(
            lambda: _metric(metrics_port, "tagtrail_gateway_reads_total") == 500, 20, "spooled"
        )
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        assert list((tmp_path / "spool").glob("*.seg"))

        broker.start()
        collector = Collector(broker.url, [f"{PREFIX}/reads/#", f"{PREFIX}/status/#"], "c-kill")
        assert collector.subscribed.wait(10)
        procs.append(_start(config))
        wait_until(lambda: len(set(collector.natural_keys())) == 500, 20, "the spooled reads")
        readers = {k[0] for k in collector.natural_keys()}
        assert readers == {"AT-00000007"}

        status_topic = f"{PREFIX}/status/gateways/gw-kill"

        def gateway_status() -> object:
            raw = collector.retained.get(status_topic) if collector else None
            return orjson.loads(raw).get("status") if raw else None

        wait_until(lambda: gateway_status() == "online", 10, "gateway online")
        procs[1].send_signal(signal.SIGKILL)
        procs[1].wait(10)
        # The broker publishes the last will when the connection dies without a DISCONNECT.
        wait_until(lambda: gateway_status() == "offline", 10, "the last will")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        if collector is not None:
            collector.close()
        reader.close()
        broker.stop()
