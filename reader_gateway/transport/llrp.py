"""LLRP transport: one thread per configured reader, the gateway as the LLRP client (TCP 5084).

Each thread runs :class:`~reader_gateway.transport.llrp_session.LlrpSession` after
:class:`~reader_gateway.transport.llrp_session.LlrpSession` (connect, configure, read, stop
cleanly: the steps are listed there) until :meth:`LlrpReader.stop`.

A session ends — the connection is closed and opened again with exponential backoff — when
the reader closes it, nothing is heard for ``dead_after_s`` (the reader sends a KEEPALIVE every
``keepalive_s``), the stream loses framing (a wrong version, an impossible or oversized
length), the reader sends a message of an unknown type, answers with an error status, or a
response does not come within ``response_timeout_s``. Each end is logged with its reason,
handed to ``sink`` as an :class:`LlrpState` (the gateway counts it with :func:`apply_state`
and puts it on the reader's status topic), and everything decoded before it has already gone
to ``sink``: nothing else is lost. A fresh decoder is used per connection: bytes of a dead
connection cannot complete a message on the next one.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable

from reader_gateway.config import LlrpReaderConfig
from reader_gateway.health import GatewayMetrics, ReaderHealth
from reader_gateway.transport.llrp_session import (
    LlrpItem,
    LlrpSession,
    LlrpSessionError,
    LlrpState,
)

log = logging.getLogger(__name__)


def apply_state(state: LlrpState, health: ReaderHealth, metrics: GatewayMetrics) -> None:
    """Record a session change in the reader's health (its status message) and metrics."""
    reader_id = state.config.reader_id
    health.connected = state.connected
    info = health.transport
    info["phase"] = state.phase
    info["endpoint"] = f"{state.config.host}:{state.config.port}"
    if state.reader:
        info["reader"] = state.reader
    if state.event is not None:
        info["last_event"] = state.event
    if state.error is not None:
        info["last_error"] = {
            "reason": state.error.reason,
            "message": str(state.error),
            "at_s": state.at_s,
        }
        resets = info.get("resets")
        info["resets"] = (resets if isinstance(resets, int) else 0) + 1
        metrics.reader_resets.labels(reader_id, state.error.reason).inc()
    metrics.reader_connected.labels(reader_id).set(1 if state.connected else 0)


class LlrpReader:
    """Runs LLRP sessions with one reader on a thread of its own until :meth:`stop`."""

    def __init__(self, config: LlrpReaderConfig, sink: Callable[[LlrpItem], None]) -> None:
        self.config = config
        self._sink = sink
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"llrp-{config.reader_id}", daemon=True
        )
        self.sessions = 0  # sessions that reached reading

    def start(self) -> None:
        """Start the session thread."""
        self._thread.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        """Ask for a clean stop (ROSpec stopped and deleted, connection closed) and wait."""
        self._stop.set()
        if self._thread.is_alive() and timeout_s > 0:
            self._thread.join(timeout_s)

    def _state(self, phase: str, **kw: object) -> None:
        self._sink(LlrpState(self.config, phase, time.time(), **kw))  # type: ignore[arg-type]

    def _run(self) -> None:
        cfg = self.config
        backoff_s = cfg.reconnect_min_s
        last_reason = ""
        error: LlrpSessionError | None
        while not self._stop.is_set():
            self._state("connecting")
            try:
                sock = socket.create_connection((cfg.host, cfg.port), cfg.connect_timeout_s)
            except OSError as exc:
                error = LlrpSessionError("connect_failed", f"cannot connect: {exc}")
                # Logged once per run of failures, not every backoff step.
                level = logging.DEBUG if last_reason == error.reason else logging.WARNING
                log.log(level, "llrp %s (%s:%d): %s", cfg.reader_id, cfg.host, cfg.port, error)
                last_reason = error.reason
                self._state("disconnected", error=error)
            else:
                session = LlrpSession(cfg, sock, self._sink, self._stop)
                try:
                    error = session.run()
                except Exception as exc:  # a bug must not end the reader's thread for good
                    log.exception("llrp %s: session failed", cfg.reader_id)
                    error = LlrpSessionError("internal_error", f"{type(exc).__name__}: {exc}")
                finally:
                    sock.close()
                if session.reading:
                    self.sessions += 1
                    backoff_s = cfg.reconnect_min_s
                last_reason = error.reason if error else ""
                self._state("disconnected", error=error)
                if error is None:
                    return  # stopped cleanly
            self._stop.wait(backoff_s)  # on the stop flag, so that stop() is never held up
            backoff_s = min(backoff_s * 2, cfg.reconnect_max_s)


__all__ = ["LlrpReader", "apply_state"]
