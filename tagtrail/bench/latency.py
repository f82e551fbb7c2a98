"""``tagtrail bench latency``: a watched tag read by a reader → the alert on a live SSE client.

Set-up: a fresh database with one registered bike whose active tag is watched (an open
theft) and an officer account; engines, a gateway and the API as their own processes. A
background load of active-tag frames goes through the ptys at ``load_reads_per_s`` (event
time = wall clock), while the officer's client holds ``/api/v1/live/alerts`` open with its
bearer token. Every ``interval_s`` the benchmark writes one frame of the watched tag to a
reader pty of its own, each time as another reader id (the engine raises one alert per
(watch, reader) visit), and notes the time just before the bytes go out; the latency is the
time the matching ``alert`` event arrives on the SSE stream minus that. The split at the
alert's ``raised_at`` (the start of the engine transaction that stored it, on this machine's
clock) tells the pipeline's share (gateway, broker, engine queue) from the delivery's
(the rest of that transaction, its commit, NOTIFY → the API → the client).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import secrets
import socket
import threading
import time
import tty
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import psycopg

from tagtrail.bench.common import (
    ADMIN_URL,
    MQTT_URL,
    BenchError,
    Service,
    fresh_database,
    load_avg,
    machine,
    percentiles_ms,
    run_prefix,
    service_env,
    wait_for,
)
from tagtrail.bench.ingest import prepare_streams
from tagtrail.bench.services import PipelineUnderTest
from tagtrail.bench.workload import Workload, frames, tag_hex
from tagtrail.ports import free_port

_US = 1_000_000
WATCHED_TAG = np.uint64(0xB1CE_0000_0000_0001)
_PROBE_READER = 0x7000_0000
_OFFICER = "bench-officer"


@dataclass(frozen=True)
class LatencyOptions:
    """What one ``tagtrail bench latency`` run does."""

    load_reads_per_s: float = 20_000.0
    probes: int = 60
    interval_s: float = 0.5
    warmup_s: float = 5.0
    admin_url: str = ADMIN_URL
    mqtt_url: str = MQTT_URL


def officer(database_url: str) -> dict[str, str]:
    """Create the benchmark's officer account; returns its login form."""
    from api.security import hash_password
    from api.users import store as accounts

    password = secrets.token_urlsafe(16)
    with psycopg.connect(database_url) as conn:
        accounts.create_user(
            conn, username=_OFFICER, password_hash=hash_password(password), role="officer"
        )
    return {"username": _OFFICER, "password": password}


def login(base_url: str, form: dict[str, str]) -> str:
    """A bearer token for the officer."""
    resp = httpx.post(f"{base_url}/api/v1/auth/token", data=form, timeout=10)
    resp.raise_for_status()
    return str(resp.json()["access_token"])


def up(base: str) -> bool:
    """True once the API answers its health check."""
    try:
        return httpx.get(f"{base}/api/v1/health", timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


def seed_watch(database_url: str, *, data_dir: Path) -> None:
    """Register the watched bike and open its theft (which opens the watch)."""
    from api.registry import loaders as registry
    from tagtrail.settings import Settings

    tag = str(tag_hex(np.array([WATCHED_TAG]))[0])
    key = Settings(data_dir=data_dir).resolve_id_hash_key()
    now = datetime.now(UTC)
    with psycopg.connect(database_url) as conn:
        bikes = registry.register_bikes(
            conn,
            [
                registry.Registration(
                    owner_name="Bench Owner",
                    owner_phone="+10000000000",
                    owner_id_number="000000000000000001",
                    brand="bench",
                    colour="grey",
                    frame_number="BENCH0001",
                    plate="BENCH1",
                    tag_id=tag,
                )
            ],
            registered_at=now - timedelta(days=1),
            id_hash_key=key,
        )
        registry.open_theft(
            conn,
            bike_id=bikes["BENCH1"],
            stolen_at=now - timedelta(hours=1),
            reported_at=now - timedelta(minutes=50),
            place="bench",
            description="bench",
            case_number="BENCH-1",
        )


class SseClient:
    """The officer's live alert stream on a thread; records when each alert arrived.

    Plain ``http.client`` rather than httpx: :meth:`close` must be able to cut a read that is
    blocked waiting for the next event, and shutting the socket down is how.
    """

    def __init__(self, port: int, token: str, *, max_seconds: float) -> None:
        """Prepare the stream (it ends by itself after ``max_seconds``)."""
        self.port = port
        self.path = f"/api/v1/live/alerts?max_seconds={int(max_seconds)}"
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        self.arrived: dict[str, float] = {}  # reader id -> arrival time (time.time())
        self.raised: dict[str, float] = {}  # reader id -> the alert's raised_at (epoch s)
        self.open = threading.Event()
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, name="sse", daemon=True)
        self._closing = threading.Event()
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def close(self) -> None:
        """Hang up (so the API need not wait for the stream when it shuts down)."""
        self._closing.set()
        if self._conn.sock is not None:
            with contextlib.suppress(OSError):
                self._conn.sock.shutdown(socket.SHUT_RDWR)
        self.thread.join(5)
        self._conn.close()

    def _run(self) -> None:
        try:
            self._conn.request("GET", self.path, headers=self.headers)
            resp = self._conn.getresponse()
            if self._conn.sock is not None:
                self._conn.sock.settimeout(None)  # events may be seconds apart
            if resp.status != 200:
                self.error = f"HTTP {resp.status}: {resp.read(500)!r}"
                return
            self.open.set()
            event = ""
            while not self._closing.is_set():
                line = resp.fp.readline().decode().rstrip("\r\n")
                if not line and resp.fp.closed:
                    return
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "alert":
                    doc = orjson.loads(line[5:])
                    reader = str(doc.get("reader_id"))
                    self.arrived.setdefault(reader, time.time())
                    with contextlib.suppress(KeyError, TypeError, ValueError):
                        raised = datetime.fromisoformat(str(doc["raised_at"])).timestamp()
                        self.raised.setdefault(reader, raised)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            if not self._closing.is_set():
                self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.open.set()


def _probe_frame(i: int) -> bytes:
    now_us = time.time_ns() // 1000
    reads = pd.DataFrame(
        {
            "tag": [WATCHED_TAG],
            "reader": [_PROBE_READER + i],
            "read_at_us": [now_us - now_us % 1000],
            "antenna": [1],
            "rssi_dbm": [-50.0],
        }
    )
    return frames(reads, np.array([i], np.int64))


def run_latency(opts: LatencyOptions) -> dict[str, Any]:
    """Run the benchmark; return the figures as one document."""
    run_s = opts.warmup_s + opts.probes * opts.interval_s + 15.0
    now_us = time.time_ns() // 1000
    workload = Workload(nominal_reads_per_s=opts.load_reads_per_s, tags=100_000)
    doc: dict[str, Any] = {
        "benchmark": "alert latency under load",
        "options": {
            "load_reads_per_s": opts.load_reads_per_s,
            "probes": opts.probes,
            "interval_s": opts.interval_s,
        },
    }
    with fresh_database(opts.admin_url) as url:
        doc["machine"] = machine(url)
        streams, _, _ = prepare_streams(
            workload, t0_us=now_us, reads_total=int(opts.load_reads_per_s * run_s), n_ptys=4
        )
        master, slave = os.openpty()
        tty.setraw(slave)
        prefix = run_prefix()
        # The probe pty outlives the pipeline: closed first, the gateway would retry its path
        # and could open a pty another run gets with the same number.
        try:
            with PipelineUnderTest(
                database_url=url,
                mqtt_url=opts.mqtt_url,
                prefix=prefix,
                probe_day_us=now_us - 86_400 * _US,
                extra_ports=(os.ttyname(slave),),
            ) as pipe:
                seed_watch(url, data_dir=pipe.dir / "data")
                form = officer(url)
                port = free_port()
                env = service_env(url, opts.mqtt_url, prefix, pipe.dir / "data")
                api = Service(
                    "api",
                    ["api", "--host", "127.0.0.1", "--port", str(port)],
                    env=env,
                    log_dir=pipe.dir,
                )
                sse: SseClient | None = None
                try:
                    base = f"http://127.0.0.1:{port}"
                    pipe.start()  # while the API starts
                    wait_for(lambda: up(base), timeout_s=60, what="the API", services=[api])
                    feeder = threading.Thread(
                        target=pipe.feeder.run,
                        args=(streams,),
                        kwargs={
                            "deadline": time.monotonic() + run_s,
                            "frames_per_s": opts.load_reads_per_s,
                        },
                    )
                    feeder.start()
                    sse = SseClient(port, login(base, form), max_seconds=run_s + 30)
                    sse.thread.start()
                    sse.open.wait(30)
                    if sse.error is not None:
                        raise BenchError(f"SSE stream failed: {sse.error}")
                    time.sleep(opts.warmup_s)
                    load_before = load_avg()
                    sent: dict[str, float] = {}
                    for i in range(opts.probes):
                        frame = _probe_frame(i)
                        sent[f"AT-{_PROBE_READER + i:08X}"] = time.time()
                        os.write(master, frame)
                        time.sleep(opts.interval_s * (0.5 + np.random.default_rng(i).random()))
                    deadline = time.monotonic() + 15
                    while len(sse.arrived) < len(sent) and time.monotonic() < deadline:
                        for service in [*pipe.services, api]:
                            service.check()
                        time.sleep(0.2)
                    stored_reads = pipe.reads_stored()
                    fed = pipe.feeder.frames_written
                finally:
                    if sse is not None:
                        sse.close()
                    api.stop()
        finally:
            os.close(master)
            os.close(slave)
    latencies = [sse.arrived[r] - t for r, t in sent.items() if r in sse.arrived]
    doc.update(percentiles_ms(latencies))
    split = [r for r in sent if r in sse.arrived and r in sse.raised]
    for name, part in (
        ("to_engine", [sse.raised[r] - sent[r] for r in split]),
        ("engine_to_client", [sse.arrived[r] - sse.raised[r] for r in split]),
    ):
        doc[name] = percentiles_ms(part)
    doc.update(
        {
            "alerts_sent": len(sent),
            "alerts_received": len(latencies),
            "background_reads_fed": fed,
            "reads_stored": stored_reads,
            "load_avg_before": load_before,
            "load_avg_after": load_avg(),
        }
    )
    return doc


def report_rows(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The table rows of a latency document."""
    return [
        ("background load", f"{doc['options']['load_reads_per_s']:,.0f} reads/s"),
        ("alerts received / sent", f"{doc['alerts_received']} / {doc['alerts_sent']}"),
        ("p50", f"{doc['p50_ms']:,.0f} ms"),
        ("p99", f"{doc['p99_ms']:,.0f} ms"),
        ("max", f"{doc['max_ms']:,.0f} ms"),
        (
            "p50/p99: read → alert raised, raised → client",
            f"{doc['to_engine']['p50_ms']:,.0f}/{doc['to_engine']['p99_ms']:,.0f} ms, "
            f"{doc['engine_to_client']['p50_ms']:,.0f}/"
            f"{doc['engine_to_client']['p99_ms']:,.0f} ms",
        ),
        ("load before → after", f"{doc['load_avg_before']} → {doc['load_avg_after']}"),
    ]
