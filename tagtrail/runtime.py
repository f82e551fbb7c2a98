"""Shared plumbing of the CLI commands: settings and the services they run against."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

from rich.console import Console

from tagtrail.embedded import Services
from tagtrail.ports import Listener, first_refusal
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


def exit_if_ports_taken(
    settings: Settings,
    *,
    api_port: int | None = None,
    api_host: str | None = None,
    need_api: bool = True,
    need_broker: bool = True,
) -> None:
    """Exit with one line (status 1) if a port the command will listen on is taken.

    Called before any service starts or anything is written: the API's port (``api_port``
    and ``api_host`` are the command line's, overriding the settings) and the embedded
    broker's, when one will run. Nothing to undo, nothing left behind.
    """
    import typer

    listeners = []
    if need_api:
        setting = "--port" if api_port else "TAGTRAIL_API_PORT"
        listeners.append(
            Listener(api_host or settings.api_host, api_port or settings.api_port, setting)
        )
    if need_broker and settings.mqtt_url is None:
        # the embedded broker listens on loopback (tagtrail.embedded.EmbeddedBroker)
        listeners.append(
            Listener("127.0.0.1", settings.embedded_mqtt_port, "TAGTRAIL_EMBEDDED_MQTT_PORT")
        )
    refused = first_refusal(listeners)
    if refused is not None:
        err.print(refused, markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def database_services(settings: Settings) -> Services:
    """The database of ``settings`` (an embedded one if unset), without a broker: for the
    commands that need none (the API, the miss-rate job)."""
    return Services(
        database_url=settings.database_url,
        mqtt_url=settings.mqtt_url,
        pgdata=settings.pgdata_dir,
        mqtt_port=settings.embedded_mqtt_port,
        need_broker=False,
    )


def run_until_interrupted(
    start: Callable[[], None], run: Callable[[threading.Event], None], close: Callable[[], None]
) -> None:
    """Start a service, run its loop until SIGINT (Ctrl-C) or SIGTERM, then close it.

    The first signal sets the loop's ``stop`` event instead of raising inside it: the loop
    ends its step and its own orderly end (a gateway spools what its ports had read) before
    ``close``. An interrupt raised in the middle of a step could cut that short, and a
    serial port's bytes, once read, exist nowhere else. A second signal interrupts at once.
    """
    stop = threading.Event()
    with _signals_set(stop):
        start()
        try:
            run(stop)
        except KeyboardInterrupt:
            err.print("stopping at once…")
        finally:
            stop.set()
            close()


@contextlib.contextmanager
def _signals_set(stop: threading.Event) -> Iterator[None]:
    """While inside: SIGINT and SIGTERM set ``stop``; the second one raises KeyboardInterrupt.
    Off the main thread (signals cannot be handled there) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del frame
        if stop.is_set():
            raise KeyboardInterrupt
        err.print(f"{signal.Signals(signum).name}: stopping…")
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
