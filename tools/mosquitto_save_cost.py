"""What a Mosquitto autosave costs: PUBACK latency while the broker holds a queued backlog.

Mosquitto writes its whole in-memory state to the persistence file every
``autosave_interval`` seconds, on its one thread. This starts a private mosquitto (free
loopback port, temporary persistence directory) with the given interval, leaves ``--batches``
QoS 1 messages of ``--batch-bytes`` queued for an offline persistent subscriber (an engine that
is away), then publishes a tiny QoS 1 message every 50 ms for ``--seconds`` and reports the
PUBACK latency. Used for the choice of ``autosave_interval`` in deploy/mosquitto/mosquitto.conf:

    .venv/bin/python tools/mosquitto_save_cost.py --interval 1 --batches 1000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tagtrail.ports import free_port as _free_port


def measure(interval_s: int, batches: int, batch_bytes: int, seconds: float) -> dict[str, float]:
    """Start the broker, queue the backlog, time PUBACKs; return the figures."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="tagtrail-save-cost-") as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(
            ("user root\n" if os.geteuid() == 0 else "")
            + f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {tmp}/\nautosave_interval {interval_s}\n"
            "max_queued_messages 1000000\nlog_dest none\n"
        )
        broker = subprocess.Popen(["mosquitto", "-c", str(conf)])
        try:
            time.sleep(0.5)  # start-up; the connect below fails loudly if it is not up
            away = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="away", clean_session=False)
            away.connect("127.0.0.1", port)
            away.subscribe("backlog/#", qos=1)
            away.loop(1)
            away.disconnect()
            pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="publisher")
            pub.max_inflight_messages_set(1000)
            pub.connect("127.0.0.1", port)
            pub.loop_start()
            payload = os.urandom(batch_bytes)
            for info in [pub.publish("backlog/0", payload, qos=1) for _ in range(batches)]:
                info.wait_for_publish(60)
            latencies: list[float] = []
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                started = time.monotonic()
                pub.publish("ping", b"p", qos=1).wait_for_publish(10)
                latencies.append(time.monotonic() - started)
                time.sleep(0.05)
            pub.disconnect()
            pub.loop_stop()
        finally:
            broker.terminate()
            broker.wait(30)
    latencies.sort()
    return {
        "autosave_interval_s": interval_s,
        "queued_mb": batches * batch_bytes / 1e6,
        "pings": len(latencies),
        "puback_p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "puback_max_ms": round(1000 * latencies[-1], 1),
    }


def main() -> None:
    """Parse arguments, measure, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=int, default=1, help="autosave_interval, seconds")
    parser.add_argument("--batches", type=int, default=1000, help="queued messages")
    parser.add_argument("--batch-bytes", type=int, default=25_000, help="bytes per message")
    parser.add_argument("--seconds", type=float, default=6.0, help="how long to ping")
    args = parser.parse_args()
    print(json.dumps(measure(args.interval, args.batches, args.batch_bytes, args.seconds)))


if __name__ == "__main__":
    main()
