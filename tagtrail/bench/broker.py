"""A Mosquitto of the benchmark's own, configured the way docs/deployment.md deploys it.

The machine's Mosquitto keeps the distribution's defaults, and with them
``max_queued_messages 1000``: when a gateway outruns its engines for a moment, the broker
*drops* QoS 1 messages it has already acknowledged to the gateway. A benchmark on that broker
measures a misconfigured deployment (and loses reads). By default the pipeline benchmarks
start this one instead: same binary, loopback, a free port, queues sized as in production,
persistence on, removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tagtrail.bench.common import BenchError
from tagtrail.ports import free_port as _free_port

PRIVATE = "private"

_CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {dir}/
max_queued_messages 1000000
max_queued_bytes 0
max_inflight_messages 100
log_dest file {dir}/mosquitto.log
"""


@contextlib.contextmanager
def broker_url(mqtt_url: str) -> Iterator[str]:
    """``mqtt_url`` itself, or (for ``"private"``) the URL of a Mosquitto started for the run."""
    if mqtt_url != PRIVATE:
        yield mqtt_url
        return
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    workdir = Path(tempfile.mkdtemp(prefix="tagtrail-bench-mqtt-"))
    port = _free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(_CONF.format(port=port, dir=workdir))
    # As root, Mosquitto would drop to the 'mosquitto' user, which cannot write here.
    if os.geteuid() == 0:
        conf.write_text(conf.read_text() + "user root\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"private Mosquitto did not start (see {workdir}/mosquitto.log)")
            time.sleep(0.05)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)
