"""The fault-test stack: a private PostgreSQL and Mosquitto, the gateway and the engine as real
processes, a steady stream of reader frames, and the invariant check.

Everything that a test stops runs on its own loopback port: a PostgreSQL cluster made with the
Debian binaries (``initdb`` + ``pg_ctl``, as the ``postgres`` OS user, in a temporary
directory) and a Mosquitto with persistence. The machine's shared services are never touched.

The stream: an :class:`ActiveReaderStream` thread publishes tagtrail-active frames (the active
reader's real bytes) to ``<prefix>/raw/tagtrail-active/<reader>`` with QoS 1 at a steady rate,
like a networked reader, and records which frames the broker acknowledged. The gateway
(``python -m tagtrail gateway --config FILE``) acknowledges a raw message to the broker only
once its reads are in the spool, so a frame the broker acknowledged is, by the end, a read the
gateway accepted. The invariant (:func:`check_invariant`): every acknowledged read is in
``reads`` exactly once by natural key, nothing is stored that was never sent, and every read
of the watched tag raised its alert.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from gw_helpers import Mosquitto, wait_until
from paho.mqtt.enums import CallbackAPIVersion
from testsupport import free_port

from api.registry import loaders as registry
from reader_gateway.brokers import BrokerFailover, mqtt_targets
from reader_gateway.protocols import tagtrail_active
from track_engine.db.migrate import migrate

PG_BIN = Path("/usr/lib/postgresql/15/bin")
WATCHED_TAG = "FA11FA11FA11FA11"  # 16 hex digits: what an active tag carries
PROBE_READER = 0xFFFF  # frames of this reader only prove the pipeline is up; not checked
Key = tuple[str, str, int, int]  # (reader_id, tag_id, read_at_us, antenna): the natural key


def _as_postgres(*args: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args]


class PgCluster:
    """A private PostgreSQL 15 cluster on a free loopback port (trust auth, fsync off)."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"{PG_BIN}/initdb is missing (Debian package postgresql-15)")
        # Not pytest's tmp_path: its parents are 0700 and the server runs as postgres.
        self.root = Path(tempfile.mkdtemp(prefix="tagtrail-faults-pg-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.port = free_port()
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        shutil.chown(self.root, "postgres", "postgres")
        subprocess.run(
            _as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U",
                         "postgres", "--no-sync", "-E", "UTF8"),
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\nfsync = off\n"
                "synchronous_commit = off\nfull_page_writes = off\nshared_buffers = 32MB\n"
                "max_connections = 50\n"
            )

    def start(self) -> None:
        """Start the server and wait until it accepts connections (pg_ctl -w)."""
        subprocess.run(
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30",
                         "-l", str(self.root / "server.log"), "start"),
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip

    def stop(self) -> None:
        """Fast shutdown: every client connection is terminated, as in a crash or failover."""
        subprocess.run(
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-m", "fast",
                         "stop"),
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip

    def create_database(self, name: str) -> str:
        """Create a database with every migration applied; returns its URL."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql://postgres@127.0.0.1:{self.port}/{name}"
        migrate(url)
        return url

    def destroy(self) -> None:
        """Stop (if running) and remove the cluster."""
        subprocess.run(
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                         "stop"),
            check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)


class Broker(Mosquitto):
    """The gateway tests' private Mosquitto, sized to queue everything while a consumer is down.

    Mosquitto's default ``max_queued_messages`` (1000) drops QoS 1 messages for a subscriber
    that is away for long; production sizes it up the same way (docs/deployment.md).

    (The base class runs it as ``user root`` when we are root: otherwise Mosquitto drops to
    the ``mosquitto`` user, cannot write its persistence file under pytest's 0700 temporary
    directory, and silently runs *without* persistence.)
    """

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(workdir, free_port())
        with self.conf.open("a") as conf:
            conf.write("max_queued_messages 1000000\nmax_queued_bytes 0\n")


SHIPPED_CONF = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "mosquitto.conf"
# What a private test broker cannot keep of the shipped file: accounts, ACL, TLS and listeners.
_SITE_ONLY = (
    "password_file", "acl_file", "listener", "cafile", "certfile", "keyfile", "tls_version",
    "allow_anonymous", "persistence_location", "user", "log_dest",
)  # fmt: skip


class ShippedBroker(Mosquitto):
    """Mosquitto with the shipped deploy/mosquitto/mosquitto.conf, on a private port.

    Every setting of the shipped file is kept (persistence, autosave, queue limits) except
    what ties it to a site: accounts, ACL and TLS go, the listener is a free loopback port and
    persistence goes to ``workdir``. :meth:`kill` is a crash: SIGKILL, nothing saved.
    """

    def __init__(self, workdir: Path, shipped: Path = SHIPPED_CONF) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(workdir, free_port())
        kept = [
            line for line in shipped.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")
            and line.split()[0] not in _SITE_ONLY
        ]  # fmt: skip
        self.conf.write_text(
            "\n".join(kept)
            + ("\nuser root" if os.geteuid() == 0 else "")  # see Broker: or no persistence
            + f"\nallow_anonymous true\npersistence_location {workdir / 'data'}/\n"
            f"log_dest file {workdir / 'mosquitto.log'}\nlistener {self.port} 127.0.0.1\n"
        )

    def kill(self) -> None:
        """SIGKILL: the broker saves nothing (what it held only in memory is gone)."""
        assert self.proc is not None, "the broker is not running"
        assert self.proc.poll() is None, "the broker is not running"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None


def metric(port: int, name: str, where: str = "") -> float:
    """Sum of a metric's samples (whose labels contain ``where``) on a /metrics page.

    0 when the page is not up.
    """
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as resp:
            text = resp.read().decode()
    except OSError:
        return 0.0
    pattern = re.compile(rf"^{re.escape(name)}((?:{{[^}}]*}})?) (\S+)$", re.MULTILINE)
    return sum(float(v) for labels, v in pattern.findall(text) if where in labels)


def publish_twice(port: int, topic: str, payload: bytes) -> None:
    """Deliver one wire batch twice, as a broker redelivery or a spool replay would."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dup-{topic}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for _ in range(2):
            client.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the test process dies (a pytest-timeout os._exit, say),
    so that no gateway or engine outlives a test that could not tear down."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


class Service:
    """``python -m tagtrail …`` as a child process, killable for real, its stderr kept."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        """Start the process (stderr appended to the log file)."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tagtrail", *self.args],
                env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
                stdout=subprocess.DEVNULL,
                stderr=log,
                preexec_fn=_die_with_parent,
            )
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye to the broker or the database."""
        assert self.proc is not None
        assert self.proc.poll() is None, self.log()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """Ctrl-C (clean stop); SIGKILL if it does not exit within 20 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        """What the process wrote to stderr so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Frame:
    """One sent frame and its natural key as the gateway stores it (no clock correction)."""

    key: Key
    true_at_us: int


class ActiveReaderStream:
    """A networked active-tag reader: frames over MQTT at a steady rate, acknowledged or not.

    Every ``watch_every``-th frame is a read of :data:`WATCHED_TAG` at a reader of its own, so
    that each one must raise exactly one alert. ``clock_offset_s`` (settable while running)
    is added to the reader's clock: a jumping clock.
    """

    def __init__(
        self,
        mqtt_url: str,
        prefix: str,
        *,
        rate_per_s: float = 400.0,
        frames_per_message: int = 10,
        readers: int = 4,
        watch_every: int = 97,
        unique_tags: bool = False,
    ) -> None:
        self.prefix = prefix
        self.rate_per_s = rate_per_s
        self.frames_per_message = frames_per_message
        self.readers = readers
        self.watch_every = watch_every
        self.unique_tags = unique_tags
        self.clock_offset_s = 0.0
        self.sent: list[Frame] = []
        # A frame counts as acknowledged once its message's PUBACK is in. The PUBACK may come
        # before publish() returns the message id, hence ``_early``. (No lock is held while
        # calling paho: its network thread calls on_publish with its own lock held.)
        self._pending: dict[int, list[Frame]] = {}
        self._early: set[int] = set()
        self._acked: list[Frame] = []
        self._lock = threading.Lock()
        self._seq = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # A list of a cluster's brokers (tests/realengines): reconnects go round them.
        brokers = BrokerFailover(mqtt_targets(mqtt_url), keepalive=10)
        host, port = brokers.current.host, brokers.current.port
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"reader-{prefix}", clean_session=False
        )
        self._client.on_disconnect = self._client.on_connect_fail = (
            lambda c, _u, _f=None, r=None, *_: brokers.next(c, r)
        )
        self._client.max_queued_messages_set(0)
        self._client.max_inflight_messages_set(100)
        self._client.reconnect_delay_set(min_delay=1, max_delay=1)
        self._client.on_publish = self._on_publish
        self._client.connect_async(host, port, keepalive=10)
        self._client.loop_start()

    def _on_publish(self, _c: object, _u: object, mid: int, *_: object) -> None:
        with self._lock:
            frames = self._pending.pop(mid, None)
            if frames is None:
                self._early.add(mid)
            else:
                self._acked.extend(frames)

    def _frames(self, n: int, *, reader_base: int = 1) -> tuple[bytes, list[Frame]]:
        now = datetime.now(UTC)
        shown = now + timedelta(seconds=self.clock_offset_s)
        data = bytearray()
        frames: list[Frame] = []
        for _ in range(n):
            self._seq += 1
            i = self._seq
            watched = i % self.watch_every == 0
            reader = 1000 + i // self.watch_every if watched else reader_base + i % self.readers
            if watched:
                tag = WATCHED_TAG
            elif self.unique_tags:
                tag = f"{0xC000000000000000 + i:016X}"
            else:
                tag = f"{0xB000000000000000 + i % 300:016X}"
            frame = tagtrail_active.encode_frame(
                reader_id=reader, reader_seq=i, read_at=shown, tag_id=tag,
                rssi_dbm=-55 - i % 30, antenna=1 + i % 4,
            )  # fmt: skip
            read = tagtrail_active.parse_frame(frame)
            at_us = round(read.read_at.timestamp() * 1e6)
            key = (str(read.reader_id), read.tag_id, at_us, read.antenna)
            frames.append(Frame(key, round(now.timestamp() * 1e6)))
            data += frame
        return bytes(data), frames

    def publish(self, n: int, *, reader: int | None = None) -> None:
        """Publish ``n`` frames (``reader``: all from that reader id), one message per reader
        on that reader's own topic: the gateway refuses frames naming another reader than
        the topic's (a reader's identity is the one its credentials prove)."""
        if reader is not None:
            saved, self.readers = self.readers, 1
            payload, frames = self._frames(n, reader_base=reader)
            self.readers = saved
        else:
            payload, frames = self._frames(n)
        size = len(payload) // max(1, len(frames))  # every frame has the same length
        by_reader: dict[str, tuple[bytearray, list[Frame]]] = {}
        for k, frame in enumerate(frames):
            data, group = by_reader.setdefault(frame.key[0], (bytearray(), []))
            data += payload[k * size : (k + 1) * size]
            group.append(frame)
        for rid, (data, group) in by_reader.items():
            topic = f"{self.prefix}/raw/tagtrail-active/{rid}"
            info = self._client.publish(topic, bytes(data), 1)
            with self._lock:
                if info.mid in self._early:
                    self._early.discard(info.mid)
                    self._acked.extend(group)
                else:
                    self._pending[info.mid] = group
                if reader != PROBE_READER:
                    self.sent.extend(group)

    def start(self) -> None:
        """Publish at ``rate_per_s`` on a thread of its own until :meth:`stop`."""
        interval = self.frames_per_message / self.rate_per_s

        def run() -> None:
            next_at = time.monotonic()
            while not self._stop.is_set():
                self.publish(self.frames_per_message)
                next_at += interval
                self._stop.wait(max(0.0, next_at - time.monotonic()))  # pacing, not sync

        self._thread = threading.Thread(target=run, name="reader-stream", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop publishing (what is in flight is still acknowledged later)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def acked_keys(self) -> set[Key]:
        """Natural keys of the frames the broker acknowledged (probe frames excluded)."""
        probe = _probe_id()
        with self._lock:
            return {f.key for f in self._acked if f.key[0] != probe}

    def unacked(self) -> int:
        """Messages published and not acknowledged yet."""
        with self._lock:
            return len(self._pending)

    def close(self) -> None:
        """Stop and disconnect."""
        self.stop()
        self._client.disconnect()
        self._client.loop_stop()


def _probe_id() -> str:
    return tagtrail_active.format_reader_id(PROBE_READER)


def watch_tag(db_url: str) -> int:
    """Register a bike carrying :data:`WATCHED_TAG` and report it stolen; returns its watch."""
    with psycopg.connect(db_url) as conn:
        ids = registry.register_bikes(
            conn,
            [
                registry.Registration(
                    owner_name="Fault Test", owner_phone="13800000000",
                    owner_id_number="110101199003074258", brand="Yadea", colour="red",
                    frame_number="FAULT0001", plate="浙B0FA11", tag_id=WATCHED_TAG,
                )
            ],
            registered_at=datetime(2025, 1, 1, tzinfo=UTC),
            id_hash_key=b"k" * 32,
        )  # fmt: skip
        _, watch_id = registry.open_theft(
            conn, bike_id=ids["浙B0FA11"], stolen_at=datetime(2025, 1, 2, tzinfo=UTC),
            reported_at=datetime(2025, 1, 2, 1, tzinfo=UTC), place="gate", description="",
            case_number="C-FAULT",
        )  # fmt: skip
        return int(watch_id)


@dataclass
class Stack:
    """Broker, database, gateway and engine of one fault test, plus the reader stream."""

    workdir: Path
    broker: Mosquitto
    pg: PgCluster
    db_url: str
    prefix: str
    gateway: Service
    engine: Service
    gateway_metrics: int
    engine_metrics: int
    stream: ActiveReaderStream
    spool_dir: Path

    def stored_keys(self) -> list[Key]:
        """Natural keys of every stored read (probe reads excluded), with repeats if any."""
        with psycopg.connect(self.db_url, connect_timeout=5) as conn:
            rows = conn.execute(
                "SELECT reader_id, tag_id, (extract(epoch FROM read_at) * 1e6)::bigint, antenna "
                "FROM reads WHERE reader_id <> %s",
                (_probe_id(),),
            ).fetchall()
        return [(str(r), str(t), int(at), int(a)) for r, t, at, a in rows]

    def alert_keys(self) -> list[tuple[str, int]]:
        """(reader, read_at_us) of every alert raised for the watched tag."""
        with psycopg.connect(self.db_url, connect_timeout=5) as conn:
            rows = conn.execute(
                "SELECT reader_id, (extract(epoch FROM read_at) * 1e6)::bigint FROM alerts "
                "WHERE tag_id = %s",
                (WATCHED_TAG,),
            ).fetchall()
        return [(str(r), int(at)) for r, at in rows]

    def wait_ready(self, timeout_s: float = 60) -> None:
        """Send probe frames until one is stored: gateway and engine are subscribed.

        Both use persistent sessions, so from then on the broker keeps their messages while
        they are down. (Probe frames sent before their subscriptions existed may be lost;
        that is why they are not part of the invariant.)
        """
        probe = _probe_id()

        def stored() -> bool:
            assert self.engine.alive(), self.engine.log()
            assert self.gateway.alive(), self.gateway.log()
            self.stream.publish(1, reader=PROBE_READER)
            try:
                with psycopg.connect(self.db_url, connect_timeout=2) as conn:
                    row = conn.execute(
                        "SELECT count(*) FROM reads WHERE reader_id = %s", (probe,)
                    ).fetchone()
            except psycopg.OperationalError:
                return False
            return row is not None and row[0] > 0

        deadline = time.monotonic() + timeout_s
        while not stored():
            assert time.monotonic() < deadline, "gateway and engine never became ready"
            time.sleep(0.25)  # between probes; each probe checks the real condition

    def wait_more(self, reads: int, timeout_s: float, what: str) -> None:
        """Wait until ``reads`` more reads than now are stored (the stream keeps running)."""
        self.wait_stored(len(self.stored_keys()) + reads, timeout_s, what)

    def wait_accepted(self, reads: int, timeout_s: float, what: str) -> None:
        """Wait until the gateway accepted (spooled) ``reads`` more reads than now."""
        name = "tagtrail_gateway_reads_total"
        target = metric(self.gateway_metrics, name) + reads
        wait_until(lambda: metric(self.gateway_metrics, name) >= target, timeout_s, what)

    def wait_stored(self, count: int, timeout_s: float, what: str) -> None:
        """Wait until at least ``count`` reads (probe reads excluded) are stored."""

        def enough() -> bool:
            try:
                return len(self.stored_keys()) >= count
            except psycopg.OperationalError:
                return False

        wait_until(enough, timeout_s, what)


def gateway_toml(
    *, gateway_id: str, prefix: str, mqtt_url: str, spool_dir: Path, metrics_port: int,
    estimate_clock: bool = False, max_spool_bytes: int | None = None,
    serial_port: Path | None = None, max_read_lead_s: float | None = None,
) -> str:  # fmt: skip
    """A gateway configuration for the fault tests."""
    lead = f"max_read_lead_s = {max_read_lead_s}\n" if max_read_lead_s else ""
    spool_budget = f"max_bytes = {max_spool_bytes}\nsegment_bytes = 16384\n"
    serial = (
        f'[[serial]]\nport = "{serial_port}"\nreader_id = "AT-00000007"\n'
        'protocol = "tagtrail-active"\n'
        # A bus of active-tag receivers: the tests' frames name several of them.
        'frame_readers = ["AT-*"]\n'
        if serial_port
        else ""
    )
    subscription = f'[[mqtt]]\ntopic = "{prefix}/raw/+/+"\n'
    return f"""
gateway_id = "{gateway_id}"
topic_prefix = "{prefix}"

[broker]
url = "{mqtt_url}"
reconnect_min_s = 0.5
reconnect_max_s = 1
max_inflight = 200

[batching]
max_reads = 200
max_delay_s = 0.05
dedupe_window_s = 0

[clock]
estimate = {"true" if estimate_clock else "false"}
window = 16
min_samples = 4
{lead}
[spool]
dir = "{spool_dir}"
{spool_budget if max_spool_bytes else ""}
[health]
metrics_port = {metrics_port}
status_interval_s = 5

{subscription}{serial}"""


@contextmanager
def fault_stack(
    pg: PgCluster, workdir: Path, *, estimate_clock: bool = False,
    stream_kwargs: dict[str, object] | None = None, gap_s: float = 2.0,
    serial_port: Path | None = None, max_spool_bytes: int | None = None,
    max_read_lead_s: float | None = None,
    broker: Mosquitto | None = None,
) -> Iterator[Stack]:  # fmt: skip
    """Start broker, database, engine and gateway; yield once a probe read went through.

    ``broker``: a broker of the test's own (not started yet) instead of :class:`Broker`.
    """
    name = f"faults_{workdir.name.lower()[-20:]}_{os.getpid()}_{int(time.time() * 1000) % 10**6}"
    name = re.sub(r"[^a-z0-9_]", "_", name)
    db_url = pg.create_database(name)
    broker = broker or Broker(workdir / "broker")
    broker.start()
    prefix = f"faults-{name}/v1"
    spool_dir = workdir / "spool"
    gw_metrics, engine_metrics = free_port(), free_port()
    config = workdir / "gateway.toml"
    config.write_text(
        gateway_toml(
            gateway_id="gw-faults", prefix=prefix, mqtt_url=broker.url, spool_dir=spool_dir,
            metrics_port=gw_metrics, estimate_clock=estimate_clock, serial_port=serial_port,
            max_spool_bytes=max_spool_bytes, max_read_lead_s=max_read_lead_s,
        )
    )  # fmt: skip
    env = {
        "TAGTRAIL_DATABASE_URL": db_url,
        "TAGTRAIL_MQTT_URL": broker.url,
        "TAGTRAIL_TOPIC_PREFIX": prefix,
        "TAGTRAIL_DATA_DIR": str(workdir / "data"),
        "TAGTRAIL_PASSAGE_GAP_S": str(gap_s),
        "TAGTRAIL_ENGINE_METRICS_PORT": str(engine_metrics),
        # Batches injected by the tests carry fixed, year-old read times: the engine's
        # retention (run at start and after each database reconnect, both of which the tests
        # cause) would drop them, sooner or later depending on the machine's load.
        "TAGTRAIL_RETENTION_DAYS": "36500",
        # Learning miss rates is not under test here, and would take a core from the stack.
        "TAGTRAIL_MISS_RATE_INTERVAL_H": "0",
    }
    engine = Service(["-v", "engine", "--worker-id", "faults"], env, workdir / "engine.log")
    gateway = Service(["gateway", "--config", str(config)], env, workdir / "gateway.log")
    stream = ActiveReaderStream(broker.url, prefix, **(stream_kwargs or {}))  # type: ignore[arg-type]
    stack = Stack(
        workdir=workdir, broker=broker, pg=pg, db_url=db_url, prefix=prefix, gateway=gateway,
        engine=engine, gateway_metrics=gw_metrics, engine_metrics=engine_metrics,
        stream=stream, spool_dir=spool_dir,
    )  # fmt: skip
    try:
        watch_tag(db_url)
        engine.start()
        gateway.start()
        stack.wait_ready()
        yield stack
    finally:
        stream.close()
        gateway.stop()
        engine.stop()
        broker.stop()


def check_invariant(
    stack: Stack, *, timeout_s: float = 60, injected: set[Key] | None = None
) -> dict[str, int]:
    """Stop the stream, wait for the pipeline to drain, then check the invariant.

    - every frame the broker acknowledged is stored, exactly once (natural key);
    - nothing is stored that the reader did not send (or the test ``injected`` as batches);
    - every acknowledged read of the watched tag raised exactly one alert;
    - both services are still running (they resumed by themselves).
    """
    stack.stream.stop()
    wait_until(lambda: stack.stream.unacked() == 0, 30, "the reader's last PUBACKs")
    acked = stack.stream.acked_keys()
    sent = {f.key for f in stack.stream.sent} | (injected or set())
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            stored = stack.stored_keys()
        except psycopg.OperationalError:
            stored = []
        missing = acked - set(stored)
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # polling the database: the condition itself is what we wait for
    assert len(stored) == len(set(stored)), "a read is stored more than once"
    if missing:
        first = min(f.true_at_us for f in stack.stream.sent)
        when = sorted((k[2] - first) / 1e6 for k in missing)
        raise AssertionError(
            f"{len(missing)} of {len(acked)} accepted reads lost, sent at "
            f"{when[0]:.2f}…{when[-1]:.2f} s into the stream, e.g. {sorted(missing)[:2]}\n"
            f"gateway log:\n{stack.gateway.log()[-3000:]}\nengine log:\n"
            f"{stack.engine.log()[-3000:]}"
        )
    assert set(stored) <= sent, "a read was stored that no reader sent"
    watched = {(k[0], k[2]) for k in acked if k[1] == WATCHED_TAG}
    wait_until(lambda: len(stack.alert_keys()) >= len(watched), 20, "every alert")
    alerts = stack.alert_keys()
    assert len(alerts) == len(set(alerts)), "an alert was raised twice"
    assert watched <= set(alerts), f"alerts missing: {sorted(watched - set(alerts))[:3]}"
    assert stack.engine.alive(), stack.engine.log()
    assert stack.gateway.alive(), stack.gateway.log()
    return {"acked": len(acked), "stored": len(stored), "alerts": len(alerts)}
