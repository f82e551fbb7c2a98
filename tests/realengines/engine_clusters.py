"""Private TimescaleDB, Citus and NATS clusters for the real-engine tests (issue #19).

Each is started from the machine's own binaries on free loopback ports in a temporary
directory and removed afterwards; the machine's shared services are never touched.

- :class:`PgNode`: a PostgreSQL 15 cluster (``initdb`` + ``pg_ctl``, as the ``postgres`` OS user
  when we are root: PostgreSQL refuses to run as root) with ``shared_preload_libraries`` set.
- :class:`CitusCluster`: a coordinator and two workers, each such a node with ``citus``.
- :class:`NatsCluster`: three ``nats-server`` processes routed into one cluster, each with its
  MQTT listener and JetStream (the MQTT sessions and QoS 1 messages live in JetStream).

:func:`missing` says why one of them cannot start here (a reason the fixture prints when it
skips); when the extension files are missing, we are root and the built files are at hand
(``../shared/pg15-ext/install`` or ``$TAGTRAIL_PG15_EXT``), :func:`ensure_extensions` installs
them first, as the issue's set-up does.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
from testsupport import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_LIB = Path("/usr/lib/postgresql/15/lib")
PG_EXTENSIONS = Path("/usr/share/postgresql/15/extension")
_EXT_FILES = {"timescaledb": "timescaledb.so", "citus": "citus.so"}
_INSTALLERS = (
    os.environ.get("TAGTRAIL_PG15_EXT", ""),
    str(Path(__file__).resolve().parents[3] / "shared" / "pg15-ext"),
    "/work/shared/pg15-ext",
)


def _root() -> bool:
    return os.geteuid() == 0


def _installer() -> Path | None:
    for candidate in _INSTALLERS:
        if not candidate:
            continue
        path = Path(candidate)
        path = path / "install" if path.is_dir() else path
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def _installed(extension: str) -> bool:
    return (PG_LIB / _EXT_FILES[extension]).exists() and (
        PG_EXTENSIONS / f"{extension}.control"
    ).exists()


def ensure_extensions(extension: str) -> str | None:
    """Install the PostgreSQL 15 extension files if they are missing and we may; returns why
    the extension cannot be used here, or None when it can."""
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL 15 is not installed ({PG_BIN}/initdb missing)"
    if _installed(extension):
        return None
    installer = _installer()
    if installer is None:
        return (
            f"the {extension} extension is not installed in PostgreSQL 15 and no installer was "
            "found (set TAGTRAIL_PG15_EXT to ../shared/pg15-ext/install)"
        )
    if not _root():
        return f"the {extension} extension is not installed; run {installer} as root"
    done = subprocess.run([str(installer)], capture_output=True, text=True, check=False)
    if done.returncode != 0 or not _installed(extension):
        return f"{installer} failed ({done.returncode}): {(done.stderr or done.stdout)[-500:]}"
    return None


def missing_nats() -> str | None:
    """Why a NATS cluster cannot start here, or None."""
    if shutil.which("nats-server") is None:
        return "nats-server is not installed (Debian package nats-server)"
    return None


def _as_postgres(*args: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if _root() else list(args)


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


class PgNode:
    """A private PostgreSQL 15 cluster on a free loopback port (trust auth, fsync off)."""

    def __init__(self, preload: str, *, name: str = "pg", extra: str = "") -> None:
        # Not pytest's tmp_path: its parents are 0700 and the server runs as postgres.
        self.root = Path(tempfile.mkdtemp(prefix=f"tagtrail-{name}-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.port = free_port()
        self.admin_url = self.url("postgres")
        if _root():
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
                "synchronous_commit = off\nfull_page_writes = off\nshared_buffers = 64MB\n"
                f"max_connections = 100\nshared_preload_libraries = '{preload}'\n"
                "max_prepared_transactions = 100\n" + extra
            )

    def url(self, dbname: str) -> str:
        """URL of database ``dbname`` on this node."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        subprocess.run(
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args),
            check=check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def start(self) -> None:
        """Start the server and wait until it accepts connections (pg_ctl -w)."""
        self._pg_ctl("-w", "-t", "60", "-l", str(self.root / "server.log"), "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: clients are cut off, as in a failover)."""
        self._pg_ctl("-w", "-m", mode, "stop")

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server log (for a failure message)."""
        path = self.root / "server.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def destroy(self) -> None:
        """Stop (if running) and remove the cluster."""
        self._pg_ctl("-m", "immediate", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def _new_db_name() -> str:
    return f"tagtrail_test_{uuid.uuid4().hex[:12]}"


class TimescaleCluster:
    """One PostgreSQL 15 node with TimescaleDB preloaded."""

    def __init__(self) -> None:
        # The extension's own scheduler fails every job on PostgreSQL 15.20 (issue #19): the
        # engine's maintenance runs them. Off here, so tests see only what TagTrail runs.
        self.node = PgNode(
            "timescaledb",
            name="timescaledb",
            extra="timescaledb.telemetry_level = off\ntimescaledb.max_background_workers = 0\n",
        )

    def start(self) -> None:
        """Start the node."""
        self.node.start()

    def create_database(self) -> tuple[str, str]:
        """A new empty database (TimescaleDB is created in it by migration 0003)."""
        name = _new_db_name()
        with psycopg.connect(self.node.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name, self.node.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database made by :meth:`create_database`."""
        with psycopg.connect(self.node.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def destroy(self) -> None:
        """Stop and remove the node."""
        self.node.destroy()


class CitusCluster:
    """A Citus coordinator and ``workers`` workers, each a private PostgreSQL 15 node."""

    def __init__(self, workers: int = 2) -> None:
        # A worker stopped between PREPARE and COMMIT PREPARED holds its part of a committed
        # transaction until the coordinator's 2PC recovery commits it: every minute by
        # default, every 2 s here (docs/deploy.md recommends a short interval too).
        self.coordinator = PgNode(
            "citus", name="citus-coord", extra="citus.recover_2pc_interval = '2s'\n"
        )
        self.workers = [PgNode("citus", name=f"citus-w{i}") for i in range(workers)]

    @property
    def nodes(self) -> list[PgNode]:
        """The coordinator, then the workers."""
        return [self.coordinator, *self.workers]

    def start(self) -> None:
        """Start every node."""
        for node in self.nodes:
            node.start()

    def create_database(self) -> tuple[str, str]:
        """A new database on every node, with the citus extension and the workers added, as
        docs/deploy.md sets one up; returns (name, coordinator URL)."""
        name = _new_db_name()
        for node in self.nodes:
            with psycopg.connect(node.admin_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            with psycopg.connect(node.url(name), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION citus")
        with psycopg.connect(self.coordinator.url(name), autocommit=True) as conn:
            conn.execute(
                "SELECT citus_set_coordinator_host('127.0.0.1', %s)", (self.coordinator.port,)
            )
            for worker in self.workers:
                conn.execute("SELECT citus_add_node('127.0.0.1', %s)", (worker.port,))
        return name, self.coordinator.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database made by :meth:`create_database` on every node."""
        for node in self.nodes:
            with psycopg.connect(node.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def destroy(self) -> None:
        """Stop and remove every node."""
        for node in self.nodes:
            node.destroy()


class NatsNode:
    """One ``nats-server`` of a cluster: client, cluster-route and MQTT ports, JetStream."""

    def __init__(self, root: Path, index: int, ports: dict[str, int]) -> None:
        self.index = index
        self.root = root / f"n{index}"
        self.root.mkdir(parents=True, exist_ok=True)
        self.client_port = ports["client"]
        self.cluster_port = ports["cluster"]
        self.mqtt_port = ports["mqtt"]
        self.conf = self.root / "nats.conf"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def mqtt_url(self) -> str:
        """``mqtt://127.0.0.1:<port>`` of this node's MQTT listener."""
        return f"mqtt://127.0.0.1:{self.mqtt_port}"

    def write_conf(self, routes: list[int]) -> None:
        """The node's config: one cluster with static routes, MQTT, JetStream on disk."""
        route_list = ", ".join(f"nats-route://127.0.0.1:{p}" for p in routes)
        self.conf.write_text(
            f"server_name: tagtrail-n{self.index}\n"
            f"listen: 127.0.0.1:{self.client_port}\n"
            f'jetstream {{ store_dir: "{self.root / "js"}", max_memory_store: 64MB,'
            " max_file_store: 1GB }\n"
            f"cluster {{ name: tagtrail, listen: 127.0.0.1:{self.cluster_port},"
            f" routes: [{route_list}] }}\n"
            # ack_wait: how long JetStream waits for a consumer's PUBACK before redelivering;
            # NATS's default is 30 s (issue #19: a killed engine's batches came back that late).
            f"mqtt {{ listen: 127.0.0.1:{self.mqtt_port}, ack_wait: 5s, stream_replicas: 3 }}\n"
        )

    def start(self) -> None:
        """Start the server (returns once its MQTT port accepts connections)."""
        self.proc = subprocess.Popen(
            ["nats-server", "-c", str(self.conf), "-l", str(self.root / "server.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def listening(self) -> bool:
        """True when its MQTT port accepts a connection."""
        try:
            socket.create_connection(("127.0.0.1", self.mqtt_port), timeout=0.5).close()
        except OSError:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server log."""
        path = self.root / "server.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


class NatsCluster:
    """Three ``nats-server`` nodes in one cluster, each with MQTT and JetStream."""

    def __init__(self, size: int = 3) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tagtrail-nats-"))
        self.nodes = [
            NatsNode(self.root, i, {k: free_port() for k in ("client", "cluster", "mqtt")})
            for i in range(size)
        ]
        for node in self.nodes:
            node.write_conf([n.cluster_port for n in self.nodes if n is not node])

    @property
    def mqtt_url(self) -> str:
        """Every node's MQTT listener as one failover list: ``mqtt://h:p1,h:p2,h:p3``."""
        return "mqtt://" + ",".join(f"127.0.0.1:{n.mqtt_port}" for n in self.nodes)

    def start(self) -> None:
        """Start every node, then wait until JetStream has a meta leader (MQTT needs it)."""
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            wait_until(node.listening, 30, f"nats node {node.index}'s MQTT port")
        wait_until(self.ready, 60, "the NATS cluster's JetStream meta leader")

    def ready(self) -> bool:
        """True once an MQTT client can connect and get a CONNACK from every live node."""
        return all(_mqtt_connack(n.mqtt_port) for n in self.nodes if n.proc is not None)

    def destroy(self) -> None:
        """Kill every node and remove the directory."""
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def _mqtt_connack(port: int) -> bool:
    """A bare MQTT 3.1.1 CONNECT (clean session) and its CONNACK's return code 0."""
    connect = bytes([0x10, 0x12, 0, 4]) + b"MQTT" + bytes([4, 0x02, 0, 30, 0, 6]) + b"probe1"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.settimeout(5)
            sock.sendall(connect)
            reply = sock.recv(4)
    except OSError:
        return False
    return len(reply) == 4 and reply[0] == 0x20 and reply[3] == 0


class NatsBroker:
    """The session's NATS cluster in the fault stack's place of a broker (tests/faults/harness):
    its URL lists every node, so gateway, engine and reader stream fail over between them."""

    def __init__(self, cluster: NatsCluster) -> None:
        self.cluster = cluster
        self.url = cluster.mqtt_url

    def start(self) -> None:
        """Restart any node a test killed, and wait until the cluster serves MQTT again."""
        for node in self.cluster.nodes:
            if node.proc is None:
                node.start()
                wait_until(node.listening, 30, f"nats node {node.index} back")
        wait_until(self.cluster.ready, 60, "the NATS cluster")

    def stop(self) -> None:
        """Leave the cluster running (the session fixture removes it); restore killed nodes."""
        self.start()


class CitusFaultDatabase:
    """The Citus cluster in the fault stack's place of a PostgreSQL cluster: a database made
    by :meth:`create_database` is migrated and distributed (deploy/citus/distribute.sql)."""

    def __init__(self, cluster: CitusCluster, distribute: Callable[[str], None]) -> None:
        self.cluster = cluster
        self._distribute = distribute
        self.names: list[str] = []

    def create_database(self, _name: str) -> str:
        """A new distributed database; returns the coordinator URL."""
        name, url = self.cluster.create_database()
        self.names.append(name)
        self._distribute(url)
        return url

    def drop_all(self) -> None:
        """Drop the databases made here."""
        for name in self.names:
            self.cluster.drop_database(name)
