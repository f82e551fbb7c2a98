"""Waiting for a database that is not up yet (a service started before, or while, it restarts);
one periodic job at a time per database (an advisory lock)."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

import psycopg

log = logging.getLogger(__name__)


def describe(url: str) -> str:
    """``host:port/dbname`` of a connection URL, for logs (never the password)."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(unparsable database URL)"
    host = info.get("host") or "local socket"
    return f"{host}:{info.get('port') or 5432}/{info.get('dbname') or ''}"


def wait_for_database(
    url: str,
    *,
    stop: threading.Event | None = None,
    min_delay_s: float = 0.5,
    max_delay_s: float = 5.0,
    what: str = "the engine",
) -> bool:
    """Block until a connection to ``url`` succeeds; True then, False if ``stop`` was set.

    Each failed attempt is logged as a warning saying where and why, and when the next try
    is; the delay doubles up to ``max_delay_s``. A URL that can never work (bad password,
    no such database) is retried too: an operator may be fixing it, and the log says why.
    """
    stop = stop or threading.Event()
    delay = min_delay_s
    attempts = 0
    while not stop.is_set():
        try:
            psycopg.connect(url, connect_timeout=5).close()
        except psycopg.OperationalError as exc:
            attempts += 1
            reason = " ".join(str(exc).split()) or type(exc).__name__
            log.warning(
                "database at %s is not reachable (%s); %s waits for it, next try in %.1f s",
                describe(url), reason, what, delay,
            )  # fmt: skip
            stop.wait(delay)  # backoff, not synchronisation
            delay = min(delay * 2, max_delay_s)
            continue
        if attempts:
            log.warning("database at %s is up after %d failed attempts", describe(url), attempts)
        return True
    return False


@contextlib.contextmanager
def one_run_at_a_time(conn: psycopg.Connection, key: int) -> Iterator[bool]:
    """Whether this session took the advisory lock ``key`` (False: another run holds it);
    released on leaving the block."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    locked = bool(row and row[0])
    try:
        yield locked
    finally:
        if locked:
            with contextlib.suppress(psycopg.Error):  # a broken session released it anyway
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
