"""``tagtrail bench soak``: the whole ingest path at a steady rate for a long time.

A load generator publishes tagtrail-active frames (the active reader's real bytes) over MQTT
to ``<prefix>/raw/tagtrail-active/<reader>`` at ``rate`` reads/s, as networked readers would;
a gateway (``tagtrail gateway --config``) and an engine (``tagtrail engine``) run as child
processes against ``TAGTRAIL_DATABASE_URL`` and ``TAGTRAIL_MQTT_URL``. Every ``sample_s`` the
command records the gateway's and engine's resident memory, the engine's lag (wall clock −
newest stored read time), the backlog (reads acknowledged by the broker but not yet stored)
and the rates. At the end it stops the load, waits for the backlog to drain, and counts loss:
reads the broker acknowledged that are not in ``reads`` (by the run's own reader ids).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from reader_gateway.brokers import mqtt_target
from reader_gateway.protocols import tagtrail_active
from tagtrail.ports import free_port as _free_port

_FRAMES_PER_MESSAGE = 200
_TAGS = 20_000


@dataclass
class SoakSample:
    """One point of the time series."""

    t_s: float
    published_reads: int
    acked_reads: int
    stored_reads: int
    backlog_reads: int
    engine_lag_s: float | None
    engine_rss_mb: float
    gateway_rss_mb: float
    publish_rate: float
    store_rate: float


@dataclass
class SoakResult:
    """The run's figures (``samples`` is the time series)."""

    minutes: float
    target_rate: int
    published_reads: int = 0
    acked_reads: int = 0
    stored_reads: int = 0
    lost_reads: int = 0
    drained: bool = False
    drain_s: float = 0.0
    samples: list[SoakSample] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        """Figures without the time series: rates, memory first/last/max, lag percentiles."""
        s = self.samples
        steady = s[len(s) // 5 :] or s  # skip the first fifth: start-up
        lags = sorted(x.engine_lag_s for x in steady if x.engine_lag_s is not None)

        def pct(q: float) -> float | None:
            return round(lags[min(len(lags) - 1, int(q * len(lags)))], 2) if lags else None

        return {
            "minutes": self.minutes,
            "target_rate": self.target_rate,
            "achieved_publish_rate": round(self.published_reads / (self.minutes * 60)),
            "achieved_store_rate_steady": round(
                sum(x.store_rate for x in steady) / max(1, len(steady))
            ),
            "published_reads": self.published_reads,
            "acked_reads": self.acked_reads,
            "stored_reads": self.stored_reads,
            "lost_reads": self.lost_reads,
            "drained": self.drained,
            "drain_s": round(self.drain_s, 1),
            "engine_rss_mb_first_last_max": _first_last_max([x.engine_rss_mb for x in steady]),
            "gateway_rss_mb_first_last_max": _first_last_max([x.gateway_rss_mb for x in steady]),
            "engine_lag_s_p50_p95_max": [pct(0.5), pct(0.95), lags[-1] if lags else None],
            "backlog_reads_first_last_max": _first_last_max(
                [float(x.backlog_reads) for x in steady]
            ),
        }


def _first_last_max(values: list[float]) -> list[float]:
    return [round(values[0], 1), round(values[-1], 1), round(max(values), 1)] if values else []


class _Load:
    """Publishes frames at a steady rate; counts what the broker acknowledged."""

    def __init__(self, mqtt_url: str, prefix: str, rate: int, reader_base: int) -> None:
        self.rate = rate
        self.prefix = prefix
        self.reader_base = reader_base
        self.published = 0
        self.acked = 0
        self._lock = threading.Lock()
        self._pending: dict[int, int] = {}
        self._early: set[int] = set()
        self._seq = 0
        self.stop = threading.Event()
        target = mqtt_target(mqtt_url)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"soak-load-{prefix}")
        target.configure(self.client)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.on_publish = self._on_publish
        self.client.connect(target.host, target.port, keepalive=30)
        self.client.loop_start()

    def _on_publish(self, _c: object, _u: object, mid: int, *_: object) -> None:
        with self._lock:
            n = self._pending.pop(mid, None)
            if n is None:
                self._early.add(mid)
            else:
                self.acked += n

    def message(self, n: int, reader: int, *, now: datetime) -> None:
        """Publish one message of ``n`` frames of ``reader`` read just now."""
        frames = []
        for _ in range(n):
            self._seq += 1
            frames.append(
                tagtrail_active.encode_frame(
                    reader_id=reader,
                    reader_seq=self._seq & 0xFFFF_FFFF,
                    read_at=now,
                    tag_id=f"{0xF000000000000000 + (self._seq * 7919) % _TAGS:016X}",
                    rssi_dbm=-50 - self._seq % 40,
                    antenna=1 + self._seq % 4,
                )
            )
        topic = f"{self.prefix}/raw/tagtrail-active/{tagtrail_active.format_reader_id(reader)}"
        info = self.client.publish(topic, b"".join(frames), qos=1)
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                self.acked += n
            else:
                self._pending[info.mid] = n
            self.published += n

    def run(self, readers: int) -> None:
        """Publish ``rate`` reads/s until ``stop`` (messages of up to 200 frames)."""
        interval = _FRAMES_PER_MESSAGE / self.rate
        next_at = time.monotonic()
        k = 0
        while not self.stop.is_set():
            # One reader's messages are >= 10 ms apart and a message's tags are distinct, so
            # natural keys never collide at the frame's millisecond resolution.
            self.message(_FRAMES_PER_MESSAGE, self.reader_base + k % readers, now=_now_ms())
            k += 1
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)  # pacing

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def _now_ms() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _metric(port: int, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    found = re.findall(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE)
    return sum(float(v) for v in found) if found else None


def _gateway_toml(mqtt_url: str, prefix: str, spool: Path, metrics_port: int) -> str:
    return f"""
gateway_id = "gw-soak"
topic_prefix = "{prefix}"
[broker]
url = "{mqtt_url}"
max_inflight = 2000
[batching]
max_reads = 1000
max_delay_s = 0.2
dedupe_window_s = 0
[clock]
estimate = false
[spool]
dir = "{spool}"
[health]
metrics_port = {metrics_port}
[[mqtt]]
topic = "{prefix}/raw/+/+"
"""


def _stored(conn: psycopg.Connection, readers: list[str]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM reads WHERE reader_id = ANY(%s)", (readers,)
    ).fetchone()
    conn.commit()
    return int(row[0]) if row else 0


def run_soak(
    *,
    database_url: str,
    mqtt_url: str,
    minutes: float,
    rate: int,
    sample_s: float = 10.0,
    readers: int = 50,
    progress: bool = True,
) -> SoakResult:
    """Run the soak; see the module docstring. Needs psutil (the ``dev`` extra)."""
    import psutil  # type: ignore[import-untyped]

    run = f"{os.getpid():x}{random.randrange(1 << 16):04x}"
    prefix = f"tagtrail-soak-{run}/v1"
    reader_base = random.randrange(1 << 20, 1 << 30)
    reader_ids = [tagtrail_active.format_reader_id(reader_base + k) for k in range(readers)]
    workdir = Path(tempfile.mkdtemp(prefix="tagtrail-soak-"))
    gw_port, engine_port = _free_port(), _free_port()
    config = workdir / "gateway.toml"
    config.write_text(_gateway_toml(mqtt_url, prefix, workdir / "spool", gw_port))
    env = {
        **os.environ,
        "TAGTRAIL_DATABASE_URL": database_url,
        "TAGTRAIL_MQTT_URL": mqtt_url,
        "TAGTRAIL_TOPIC_PREFIX": prefix,
        "TAGTRAIL_ENGINE_METRICS_PORT": str(engine_port),
    }
    logs = [(workdir / "engine.log").open("wb"), (workdir / "gateway.log").open("wb")]
    cmd = [sys.executable, "-m", "tagtrail"]
    engine = subprocess.Popen(
        [*cmd, "engine", "--worker-id", f"soak-{run}"], env=env, stderr=logs[0]
    )
    gateway = subprocess.Popen([*cmd, "gateway", "--config", str(config)], env=env, stderr=logs[1])
    load = _Load(mqtt_url, prefix, rate, reader_base)
    result = SoakResult(minutes=minutes, target_rate=rate)
    conn = psycopg.connect(database_url)
    try:
        _wait_ready(load, engine, gateway, engine_port)
        load.published = load.acked = 0
        base_stored = _stored(conn, reader_ids)
        procs = {"engine": psutil.Process(engine.pid), "gateway": psutil.Process(gateway.pid)}
        thread = threading.Thread(target=load.run, args=(readers,), daemon=True)
        start = time.monotonic()
        thread.start()
        last = (start, 0, 0)
        end = start + minutes * 60
        while time.monotonic() < end:
            time.sleep(min(sample_s, max(0.0, end - time.monotonic())))  # the sampling period
            now = time.monotonic()
            stored = _stored(conn, reader_ids) - base_stored
            sample = SoakSample(
                t_s=round(now - start, 1),
                published_reads=load.published,
                acked_reads=load.acked,
                stored_reads=stored,
                backlog_reads=load.acked - stored,
                engine_lag_s=_metric(engine_port, "tagtrail_engine_last_lag_seconds"),
                engine_rss_mb=procs["engine"].memory_info().rss / 2**20,
                gateway_rss_mb=procs["gateway"].memory_info().rss / 2**20,
                publish_rate=round((load.published - last[1]) / (now - last[0])),
                store_rate=round((stored - last[2]) / (now - last[0])),
            )
            last = (now, load.published, stored)
            result.samples.append(sample)
            if progress:
                print(_line(sample), file=sys.stderr, flush=True)
            if engine.poll() is not None or gateway.poll() is not None:
                raise RuntimeError(f"a service died; logs in {workdir}")
        load.stop.set()
        thread.join(30)
        drain_started = time.monotonic()
        drain_deadline = drain_started + max(60.0, minutes * 60)
        while time.monotonic() < drain_deadline:
            stored = _stored(conn, reader_ids) - base_stored
            if stored >= load.acked:
                result.drained = True
                break
            time.sleep(1.0)  # polling the database for the backlog to drain
        result.drain_s = time.monotonic() - drain_started
        result.published_reads, result.acked_reads = load.published, load.acked
        result.stored_reads = _stored(conn, reader_ids) - base_stored
        result.lost_reads = max(0, result.acked_reads - result.stored_reads)
        return result
    finally:
        load.stop.set()
        load.close()
        for proc in (gateway, engine):
            proc.send_signal(signal.SIGINT)
        for proc in (gateway, engine):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs:
            log.close()
        conn.close()
        if result.drained:
            shutil.rmtree(workdir, ignore_errors=True)


def _wait_ready(
    load: _Load, engine: subprocess.Popen[bytes], gateway: subprocess.Popen[bytes], port: int
) -> None:
    deadline = time.monotonic() + 120
    while (_metric(port, "tagtrail_engine_reads_received_total") or 0) == 0:
        if engine.poll() is not None or gateway.poll() is not None:
            raise RuntimeError("the engine or the gateway exited during start-up")
        if time.monotonic() > deadline:
            raise RuntimeError("the pipeline did not come up within 120 s")
        load.message(1, load.reader_base, now=_now_ms())
        time.sleep(0.5)  # one probe read per half second until the engine has one


def _line(s: SoakSample) -> str:
    lag = "-" if s.engine_lag_s is None else f"{s.engine_lag_s:6.2f}"
    return (
        f"{s.t_s:7.0f} s  pub {s.publish_rate:6d}/s  stored {s.store_rate:6d}/s  "
        f"backlog {s.backlog_reads:8d}  lag {lag} s  engine {s.engine_rss_mb:6.0f} MB  "
        f"gateway {s.gateway_rss_mb:5.0f} MB"
    )


def result_document(result: SoakResult) -> dict[str, object]:
    """The JSON document ``--json`` prints."""
    return {
        "benchmark": "soak",
        "summary": result.summary(),
        "samples": [asdict(s) for s in result.samples],
    }
