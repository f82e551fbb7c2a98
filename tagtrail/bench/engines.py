"""Private TimescaleDB and Citus clusters for ``tagtrail bench … --database`` and the
real-engine tests (issue #19; tests/realengines uses these same classes).

Each cluster is started from the machine's PostgreSQL 15 binaries (``initdb`` + ``pg_ctl``, as
the ``postgres`` OS user when we are root: PostgreSQL refuses to run as root) on free loopback
ports in a temporary directory, with ``shared_preload_libraries`` set, and removed afterwards.
The extensions' files must be in PostgreSQL 15's directories: :func:`ensure_extension`
installs them (``../shared/pg15-ext/install`` or ``$TAGTRAIL_PG15_EXT``) when they are missing
and we are root, or says why it cannot.

:class:`Engine` is what the benchmarks use: an admin URL and :meth:`Engine.fresh_database`,
a new database migrated as docs/deployment.md says (on Citus: the extension on every node, the
workers added, ``tagtrail db migrate``, then deploy/citus/distribute.sql as written).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import psycopg

from tagtrail.ports import free_port
from tagtrail.settings import Settings
from track_engine.db.migrate import migrate

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_LIB = Path("/usr/lib/postgresql/15/lib")
PG_EXTENSIONS = Path("/usr/share/postgresql/15/extension")
DISTRIBUTE_SQL = Path(__file__).resolve().parents[2] / "deploy" / "citus" / "distribute.sql"
_EXT_FILES = {"timescaledb": "timescaledb.so", "citus": "citus.so"}
_INSTALLERS = (
    str(Path(__file__).resolve().parents[3] / "shared" / "pg15-ext"),
    "/work/shared/pg15-ext",
)
Kind = Literal["timescaledb", "citus"]


def _root() -> bool:
    return os.geteuid() == 0


def _installer() -> Path | None:
    configured = Settings().pg15_ext
    for candidate in (str(configured or ""), *_INSTALLERS):
        if candidate:
            path = Path(candidate)
            path = path / "install" if path.is_dir() else path
            if path.is_file() and os.access(path, os.X_OK):
                return path
    return None


def _installed(extension: str) -> bool:
    return (PG_LIB / _EXT_FILES[extension]).exists() and (
        PG_EXTENSIONS / f"{extension}.control"
    ).exists()


def missing_pg15() -> str | None:
    """Why a private PostgreSQL 15 cluster cannot start here, or None."""
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL 15 is not installed ({PG_BIN}/initdb missing)"
    if _root() and shutil.which("runuser") is None:
        return "running as root, and runuser (to start PostgreSQL as postgres) is not on PATH"
    return None


def ensure_extension(extension: str) -> str | None:
    """Install the PostgreSQL 15 extension files if they are missing and we may; returns why
    the extension cannot be used here, or None when it can."""
    why = missing_pg15()
    if why is not None:
        return why
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


def _as_postgres(*args: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if _root() else list(args)


class PgNode:
    """A private PostgreSQL 15 cluster on a free loopback port (trust auth, fsync off)."""

    def __init__(self, preload: str, *, name: str = "pg", extra: str = "") -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"tagtrail-{name}-"))
        self.root.chmod(0o755)  # the server runs as postgres
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
                "synchronous_commit = off\nfull_page_writes = off\nshared_buffers = 128MB\n"
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

    def destroy(self) -> None:
        """Stop (if running) and remove the cluster."""
        self._pg_ctl("-m", "immediate", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def _new_db_name() -> str:
    return f"tagtrail_test_{uuid.uuid4().hex[:12]}"


class TimescaleCluster:
    """One PostgreSQL 15 node with TimescaleDB preloaded."""

    def __init__(self) -> None:
        # The extension's scheduler fails every job on PostgreSQL 15.20 (issue #19): the
        # engine's maintenance runs them. Off here, so that only what TagTrail runs runs.
        self.node = PgNode(
            "timescaledb",
            name="timescaledb",
            extra="timescaledb.telemetry_level = off\ntimescaledb.max_background_workers = 0\n",
        )
        self.admin_url = self.node.admin_url

    def start(self) -> None:
        """Start the node."""
        self.node.start()

    def create_database(self) -> tuple[str, str]:
        """A new empty database (migration 0003 creates the extension in it)."""
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
        # default, every 2 s here (docs/deployment.md recommends a short interval too).
        self.coordinator = PgNode(
            "citus", name="citus-coord", extra="citus.recover_2pc_interval = '2s'\n"
        )
        self.workers = [PgNode("citus", name=f"citus-w{i}") for i in range(workers)]
        self.admin_url = self.coordinator.admin_url

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
        docs/deployment.md sets one up; returns (name, coordinator URL)."""
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


def migrate_and_distribute(url: str) -> None:
    """``tagtrail db migrate``, then ``psql -v ON_ERROR_STOP=1 -f deploy/citus/distribute.sql``."""
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(DISTRIBUTE_SQL.read_text().encode())


class Engine:
    """A started real-engine cluster, as the benchmarks use it."""

    def __init__(self, kind: Kind, cluster: TimescaleCluster | CitusCluster) -> None:
        self.kind = kind
        self.cluster = cluster
        self.admin_url = cluster.admin_url

    @contextmanager
    def fresh_database(self, _admin_url: str = "", *, keep: bool = False) -> Iterator[str]:
        """A new migrated (on Citus: distributed) database; dropped on exit unless ``keep``."""
        name, url = self.cluster.create_database()
        try:
            if self.kind == "citus":
                migrate_and_distribute(url)
            else:
                migrate(url)
            yield url
        finally:
            if not keep:
                self.cluster.drop_database(name)


@contextmanager
def engine_cluster(kind: Kind) -> Iterator[Engine]:
    """Start a TimescaleDB node or a Citus coordinator + 2 workers; removed on exit."""
    why = ensure_extension(kind)
    if why is not None:
        raise RuntimeError(f"cannot start {kind}: {why}")
    cluster: TimescaleCluster | CitusCluster = (
        TimescaleCluster() if kind == "timescaledb" else CitusCluster(workers=2)
    )
    try:
        cluster.start()
        yield Engine(kind, cluster)
    finally:
        cluster.destroy()


def storage(url: str, *, compress: bool = False) -> dict[str, Any]:
    """Bytes per stored read of ``reads`` (table, indexes and TOAST; every chunk or shard),
    and, with ``compress`` on TimescaleDB, the same after compressing every chunk."""
    with psycopg.connect(url, autocommit=True) as conn:
        timescale = _one(conn, "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'")
        citus = _one(conn, "SELECT count(*) FROM pg_extension WHERE extname = 'citus'")
        rows = _one(conn, "SELECT count(*) FROM reads")
        out: dict[str, Any] = {"reads": rows}
        if not rows:
            return out
        size_sql = (
            "SELECT hypertable_size('reads')"
            if timescale
            else "SELECT sum(citus_total_relation_size(inhrelid))::bigint FROM pg_inherits"
            " WHERE inhparent = 'reads'::regclass"
            if citus
            else "SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_class c"
            " WHERE c.oid = 'reads'::regclass OR c.oid IN"
            " (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'reads'::regclass)"
        )
        out["bytes_per_read"] = round(_one(conn, size_sql) / rows, 1)
        if timescale and compress:
            started = time.perf_counter()
            conn.execute(
                "SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks('reads') c"
            )
            out["compress_seconds"] = round(time.perf_counter() - started, 1)
            out["bytes_per_read_compressed"] = round(_one(conn, size_sql) / rows, 1)
            out["compression_ratio"] = round(
                out["bytes_per_read"] / out["bytes_per_read_compressed"], 2
            )
    return out


def _one(conn: psycopg.Connection, query: str) -> int:
    row = conn.execute(query).fetchone()
    return 0 if row is None or row[0] is None else int(row[0])
