"""Private TimescaleDB, Citus and NATS clusters for the real-engine tests (issue #19).

The PostgreSQL ones are :mod:`tagtrail.bench.engines`' (the benchmarks start the same): a
TimescaleDB node, a Citus coordinator and two workers, each from the machine's PostgreSQL 15
binaries on free loopback ports in a temporary directory. Here: a 3-node NATS cluster
(:class:`NatsCluster`: ``nats-server`` processes routed into one cluster, each with its MQTT
listener and JetStream, where MQTT sessions and QoS 1 messages live), and adapters that put
these clusters in the fault suite's stack (tests/faults/harness.py).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from testsupport import free_port

from tagtrail.bench.engines import (
    CitusCluster,
    PgNode,
    TimescaleCluster,
    ensure_extension,
    migrate_and_distribute,
    missing_pg15,
)

__all__ = [
    "CitusCluster",
    "CitusFaultDatabase",
    "NatsBroker",
    "NatsCluster",
    "PgNode",
    "TimescaleCluster",
    "ensure_extension",
    "migrate_and_distribute",
    "missing_nats",
    "missing_pg15",
    "wait_until",
]


def missing_nats() -> str | None:
    """Why a NATS cluster cannot start here, or None."""
    if shutil.which("nats-server") is None:
        return "nats-server is not installed (Debian package nats-server)"
    return None


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


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

    def write_conf(self, routes: list[int], ack_wait: str | None = "5s") -> None:
        """The node's config: one cluster with static routes, MQTT, JetStream on disk;
        ``ack_wait`` None leaves NATS's default (30 s)."""
        route_list = ", ".join(f"nats-route://127.0.0.1:{p}" for p in routes)
        wait = "" if ack_wait is None else f" ack_wait: {ack_wait},"
        self.conf.write_text(
            f"server_name: tagtrail-n{self.index}\n"
            f"listen: 127.0.0.1:{self.client_port}\n"
            f'jetstream {{ store_dir: "{self.root / "js"}", max_memory_store: 64MB,'
            " max_file_store: 1GB }\n"
            f"cluster {{ name: tagtrail, listen: 127.0.0.1:{self.cluster_port},"
            f" routes: [{route_list}] }}\n"
            # ack_wait: how long JetStream waits for a consumer's PUBACK before redelivering;
            # NATS's default is 30 s (issue #19: a killed engine's batches came back that late).
            f"mqtt {{ listen: 127.0.0.1:{self.mqtt_port},{wait} stream_replicas: 3 }}\n"
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
    """Three ``nats-server`` nodes in one cluster, each with MQTT and JetStream; ``ack_wait``:
    how long JetStream waits for a PUBACK before redelivering (None: NATS's default, 30 s)."""

    def __init__(self, size: int = 3, ack_wait: str | None = "5s") -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tagtrail-nats-"))
        self.nodes = [
            NatsNode(self.root, i, {k: free_port() for k in ("client", "cluster", "mqtt")})
            for i in range(size)
        ]
        for node in self.nodes:
            node.write_conf([n.cluster_port for n in self.nodes if n is not node], ack_wait)

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

    def __init__(self, cluster: CitusCluster) -> None:
        self.cluster = cluster
        self.names: list[str] = []

    def create_database(self, _name: str) -> str:
        """A new distributed database; returns the coordinator URL."""
        name, url = self.cluster.create_database()
        self.names.append(name)
        migrate_and_distribute(url)
        return url

    def drop_all(self) -> None:
        """Drop the databases made here."""
        for name in self.names:
            self.cluster.drop_database(name)
