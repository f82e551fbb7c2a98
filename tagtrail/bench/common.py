"""Plumbing the pipeline benchmarks share: databases, service processes, the machine, output.

- :func:`fresh_database`: a new database on the machine's PostgreSQL with the real schema
  (``track_engine.db.migrate``), dropped afterwards;
- :class:`Service`: ``python -m tagtrail gateway|engine|api`` as its own process (its own core
  and its own GIL), configured through ``TAGTRAIL_*`` variables, stopped with SIGINT;
- :func:`machine`: cores, memory, load averages and service versions, recorded next to every
  figure because the machine is shared;
- :func:`print_report`: a rich table, or one JSON document.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psycopg

from track_engine.db.migrate import migrate

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
MQTT_URL = "mqtt://127.0.0.1:1883"


class BenchError(RuntimeError):
    """A benchmark could not produce a figure (a service died, nothing arrived in time)."""


def with_database(url: str, name: str) -> str:
    """``url`` pointed at database ``name``."""
    return psycopg.conninfo.make_conninfo(url, dbname=name)


@contextlib.contextmanager
def fresh_database(admin_url: str, *, keep: bool = False) -> Iterator[str]:
    """A new migrated database (``tagtrail_bench_<random>``); dropped on exit unless ``keep``."""
    name = f"tagtrail_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(admin_url, name)
    try:
        migrate(url)
        yield url
    finally:
        if not keep:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_prefix() -> str:
    """A topic prefix of this run's own, so that runs and other users never share topics."""
    return f"tagtrail-bench/{uuid.uuid4().hex[:10]}"


class Service:
    """One TagTrail service as a child process; output goes to a log file under ``log_dir``."""

    def __init__(self, name: str, args: Sequence[str], *, env: dict[str, str], log_dir: Path):
        """Start ``python -m tagtrail <args>`` with ``env`` added to the environment."""
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tagtrail", *args],
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.proc.pid

    def check(self) -> None:
        """Raise :class:`BenchError` (with the log's tail) if the process has died."""
        if self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise BenchError(f"{self.name} exited with {self.proc.returncode}:\n{tail}")

    def rss_bytes(self) -> int:
        """Resident set size now (from /proc)."""
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
        return int(match.group(1)) * 1024 if match else 0

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGINT (the services close cleanly on it); a second one after 3 s (uvicorn waits
        for open streams until then); SIGKILL after ``timeout_s``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(3.0)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
        self._log.close()


def service_env(database_url: str, mqtt_url: str, prefix: str, data_dir: Path) -> dict[str, str]:
    """The ``TAGTRAIL_*`` variables every service of one run gets."""
    return {
        "TAGTRAIL_DATABASE_URL": database_url,
        "TAGTRAIL_MQTT_URL": mqtt_url,
        "TAGTRAIL_TOPIC_PREFIX": prefix,
        "TAGTRAIL_DATA_DIR": str(data_dir),
        "TAGTRAIL_RETENTION_DAYS": "36500",
        # The engine's periodic miss-rate learning would take a core from what is measured.
        "TAGTRAIL_MISS_RATE_INTERVAL_H": "0",
    }


def engine_args(worker_id: str, shards: Sequence[int], metrics_port: int = 0) -> list[str]:
    """Arguments of one engine worker owning ``shards`` (no status recorder; no exporter
    unless ``metrics_port``)."""
    return [
        "engine",
        "--worker-id",
        worker_id,
        "--shards",
        ",".join(str(s) for s in shards),
        "--metrics-port",
        str(metrics_port),
        "--no-record-status",
    ]


def wait_for(condition: Any, *, timeout_s: float, what: str, services: Sequence[Service]) -> None:
    """Poll ``condition()`` every 0.1 s until it holds; raise if a service dies or time is up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for service in services:
            service.check()
        if condition():
            return
        time.sleep(0.1)
    raise BenchError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p99 and max of latencies given in seconds, as milliseconds."""
    if not seconds:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
    values = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p99_ms": round(float(np.percentile(values, 99)), 2),
        "max_ms": round(float(values.max()), 2),
    }


def clear_mqtt_sessions(mqtt_url: str, client_ids: Sequence[str]) -> None:
    """Connect once with a clean session per id, so the broker forgets those sessions."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from reader_gateway.brokers import mqtt_target

    target = mqtt_target(mqtt_url)
    for client_id in client_ids:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        target.configure(client)
        with contextlib.suppress(OSError):
            client.connect(target.host, target.port, keepalive=10)
            client.loop(timeout=0.5)
            client.disconnect()


def _version(command: Sequence[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (out.stdout or out.stderr).strip().splitlines()[0] if out.stdout or out.stderr else ""


def machine(database_url: str) -> dict[str, Any]:
    """Cores, memory, load averages and service versions of this machine, now."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    mem_kb = 0
    match = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    if match:
        mem_kb = int(match.group(1))
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kb / 2**20, 1),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "postgresql": row[0] if row else "unknown",
        "mosquitto": _version(["mosquitto", "-h"]),
    }


def load_avg() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def print_report(doc: dict[str, Any], rows: Sequence[tuple[str, str]], *, json: bool) -> None:
    """One JSON document on stdout, or a two-column rich table titled ``doc['benchmark']``."""
    if json:
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY).decode() + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=str(doc.get("benchmark", "benchmark")))
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)
