"""Shared plumbing of the CLI commands: settings and the services they run against."""

from __future__ import annotations

import threading
from collections.abc import Callable

from rich.console import Console

from tagtrail.embedded import Services
from tagtrail.settings import Settings

err = Console(stderr=True)


def services(settings: Settings) -> Services:
    """The database and broker of ``settings``, starting embedded ones for whichever is unset."""
    return Services(
        database_url=settings.database_url,
        mqtt_url=settings.mqtt_url,
        pgdata=settings.pgdata_dir,
        mqtt_port=settings.embedded_mqtt_port,
    )


def run_until_interrupted(
    start: Callable[[], None], run: Callable[[threading.Event], None], close: Callable[[], None]
) -> None:
    """Start a service, run its loop until Ctrl-C, then close it."""
    stop = threading.Event()
    start()
    try:
        run(stop)
    except KeyboardInterrupt:
        err.print("stopping…")
    finally:
        stop.set()
        close()
