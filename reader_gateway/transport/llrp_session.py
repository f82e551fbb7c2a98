"""One LLRP connection, the gateway as the client: configure the reader, read, stop cleanly.

A session, in the order LLRP 1.0.1 section 9 expects:

1. connect; the reader's first message is a READER_EVENT_NOTIFICATION whose
   ConnectionAttemptEvent says whether it accepts us (a reader serves one client at a time);
2. GET_READER_CAPABILITIES: the configured antennas must exist, and a power in dBm is looked
   up in the reader's power table;
3. SET_READER_CONFIG with a periodic KeepaliveSpec (answered by the decoder's KEEPALIVE_ACKs);
4. IMPINJ_ENABLE_EXTENSIONS, only when an Impinj search mode is configured;
5. DELETE_ROSPEC of our own ROSpec id (left over from a previous session; "no such ROSpec"
   is fine), ADD_ROSPEC, ENABLE_ROSPEC, START_ROSPEC;
6. read: every chunk of bytes is decoded and handed to ``sink`` (reads, events, rejects),
   and the decoder's reply bytes (KEEPALIVE_ACKs) are written back;
7. on stop: STOP_ROSPEC, DELETE_ROSPEC, CLOSE_CONNECTION, each waited for, and the reports
   that arrive meanwhile are decoded and handed over like the others.

What a session hands ``sink`` is defined here: :class:`LlrpChunk` (decoded bytes) and
:class:`LlrpState` (a phase change, a reader event, or the :class:`LlrpSessionError` that
ended it). The reconnecting reader thread around it is :mod:`reader_gateway.transport.llrp`.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from reader_gateway.config import LlrpReaderConfig
from reader_gateway.protocols import llrp_encode as enc
from reader_gateway.protocols import llrp_spec as s
from reader_gateway.protocols.base import DecodeResult, ReaderEvent
from reader_gateway.protocols.llrp import LlrpDecoder
from reader_gateway.protocols.llrp_caps import ReaderCapabilities

log = logging.getLogger(__name__)

_RECV_BYTES = 256 * 1024
_POLL_S = 0.1  # how often a blocked read wakes up to look at the stop flag and the keepalive
_STOP_WAIT_S = 3.0  # how long each step of a clean stop may wait for its response
# Reasons a reader's rejects end the session: the stream can no longer be trusted. A
# TagReportData the gateway cannot use (``payload``) is counted and quarantined, not a reset.
_RESET_REJECTS = frozenset({"unknown_message"})
_ERROR = s.RESPONSES[s.ERROR_MESSAGE]


class LlrpSessionError(Exception):
    """A session ended; ``reason`` is a short stable slug for metrics and the status topic."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LlrpChunk:
    """What one read from a reader's connection produced, already decoded."""

    config: LlrpReaderConfig
    result: DecodeResult
    received_at: datetime


@dataclass(frozen=True, slots=True)
class LlrpState:
    """A change in a reader's session: its phase, a reader event, or the error that ended it."""

    config: LlrpReaderConfig
    phase: str  # connecting | configuring | reading | stopping | disconnected
    at_s: float  # gateway time, seconds since the Unix epoch
    error: LlrpSessionError | None = None
    event: dict[str, object] | None = None
    reader: dict[str, object] = field(default_factory=dict)  # from the capabilities

    @property
    def connected(self) -> bool:
        """Whether the ROSpec is running (reads can come)."""
        return self.phase in ("reading", "stopping")


LlrpItem = LlrpChunk | LlrpState


class LlrpSession:
    """One connection: configure, read, and end with a reason (or ``None`` on a clean stop)."""

    def __init__(
        self,
        config: LlrpReaderConfig,
        sock: socket.socket,
        sink: Callable[[LlrpItem], None],
        stop: threading.Event,
    ) -> None:
        self.cfg = config
        self.sock = sock
        self.sink = sink
        self.stop = stop
        self.decoder = LlrpDecoder(max_message_bytes=config.max_message_bytes)
        self.reading = False
        self._next_id = 0
        self._last_heard = time.monotonic()
        self._greeted = False
        self._capabilities: ReaderCapabilities | None = None

    def _mid(self) -> int:
        self._next_id = (self._next_id + 1) & 0xFFFF_FFFF
        return self._next_id

    def _state(self, phase: str, **kw: object) -> None:
        self.sink(LlrpState(self.cfg, phase, time.time(), **kw))  # type: ignore[arg-type]

    # -- the session -------------------------------------------------------------------------

    def run(self) -> LlrpSessionError | None:
        """Run the session; return why it ended (``None``: stopped cleanly)."""
        cfg = self.cfg
        self.sock.settimeout(_POLL_S)
        try:
            self._state("configuring")
            self._greeting()
            self._configure()
            self.reading = True
            self._state("reading", reader=self._reader_info())
            log.info("llrp %s (%s:%d): reading", cfg.reader_id, cfg.host, cfg.port)
            self._read_until_stopped()
            self._state("stopping")
            self._clean_stop()
            return None
        except LlrpSessionError as exc:
            log.warning(
                "llrp %s (%s:%d): connection reset (%s): %s",
                cfg.reader_id, cfg.host, cfg.port, exc.reason, exc,
            )  # fmt: skip
            return exc
        finally:
            now = datetime.now(UTC)
            flushed = self.decoder.flush(now)
            if flushed.rejects:  # a message cut short by the end of the connection
                self.sink(LlrpChunk(cfg, flushed, now))

    def _greeting(self) -> None:
        deadline = time.monotonic() + self.cfg.response_timeout_s
        while not self._greeted and time.monotonic() < deadline:
            self._receive()
        if not self._greeted:
            log.info("llrp %s: no ConnectionAttemptEvent; configuring anyway", self.cfg.reader_id)

    def _configure(self) -> None:
        cfg = self.cfg
        caps_event = self._request(enc.encode_get_reader_capabilities(message_id=self._mid()))
        caps = caps_event.detail.get("capabilities")
        if isinstance(caps, ReaderCapabilities):
            self._capabilities = caps
            missing = [a for a in cfg.antennas if a > caps.max_antennas]
            if missing:
                raise LlrpSessionError(
                    "config_mismatch",
                    f"antennas {missing} configured, the reader has {caps.max_antennas}",
                )
        keepalive_ms = max(1, round(cfg.keepalive_s * 1000))
        self._request(enc.encode_set_keepalive(message_id=self._mid(), period_ms=keepalive_ms))
        if cfg.search_mode is not None:
            self._request(enc.encode_impinj_enable_extensions(message_id=self._mid()))
        rid = cfg.rospec_id
        # Our own ROSpec from an earlier session may or may not be there: either is fine.
        self._request(
            enc.encode_delete_rospec(message_id=self._mid(), rospec_id=rid), may_fail=True
        )
        rospec = enc.encode_rospec(
            rospec_id=rid,
            antennas=cfg.antennas or [0],
            antenna_configurations=self._antenna_configurations(),
        )
        self._request(enc.encode_add_rospec(message_id=self._mid(), rospec=rospec))
        self._request(enc.encode_enable_rospec(message_id=self._mid(), rospec_id=rid))
        self._request(enc.encode_start_rospec(message_id=self._mid(), rospec_id=rid))

    def _antenna_configurations(self) -> list[bytes]:
        cfg = self.cfg
        power_index = None
        if cfg.power_dbm is not None:
            caps = self._capabilities
            if caps is None or not caps.power_table_dbm:
                raise LlrpSessionError(
                    "config_mismatch", "power_dbm is set but the reader lists no power table"
                )
            power_index = caps.power_index(cfg.power_dbm)
        if power_index is None and cfg.session is None and cfg.search_mode is None:
            return []
        return [
            enc.encode_antenna_configuration(
                power_index=power_index,
                session=cfg.session,
                tag_population=cfg.tag_population,
                search_mode=cfg.search_mode,
            )
        ]

    def _reader_info(self) -> dict[str, object]:
        caps = self._capabilities
        if caps is None:
            return {}
        return {
            "max_antennas": caps.max_antennas,
            "firmware": caps.firmware,
            "manufacturer": caps.manufacturer,
            "model": caps.model,
        }

    def _read_until_stopped(self) -> None:
        while not self.stop.is_set():
            self._receive()  # unsolicited responses are checked there

    def _clean_stop(self) -> None:
        """STOP_ROSPEC, DELETE_ROSPEC and CLOSE_CONNECTION; reports keep being decoded until
        each response, so that the reads the reader sent before stopping are kept."""
        rid = self.cfg.rospec_id
        self._request(
            enc.encode_stop_rospec(message_id=self._mid(), rospec_id=rid),
            timeout_s=_STOP_WAIT_S,
            may_fail=True,
        )
        self._request(
            enc.encode_delete_rospec(message_id=self._mid(), rospec_id=rid),
            timeout_s=_STOP_WAIT_S,
            may_fail=True,
        )
        try:
            self._request(
                enc.encode_close_connection(message_id=self._mid()), timeout_s=_STOP_WAIT_S
            )
        except LlrpSessionError as exc:
            if exc.reason != "closed":  # closing right after the response is what readers do
                raise
        log.info("llrp %s: stopped (ROSpec %d stopped and deleted)", self.cfg.reader_id, rid)

    # -- messages ----------------------------------------------------------------------------

    def _request(
        self, message: bytes, *, timeout_s: float | None = None, may_fail: bool = False
    ) -> ReaderEvent:
        """Send ``message`` and wait for the response with its message id."""
        mid = int.from_bytes(message[6:10], "big")
        mtype = int.from_bytes(message[0:2], "big") & 0x3FF
        self._send(message)
        wait_s = self.cfg.response_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            for event in self._receive(expect=mid):
                if event.kind == "custom_message" or event.detail.get("ok") or may_fail:
                    return event
                d = event.detail
                raise LlrpSessionError(
                    "error_status",
                    f"{d.get('message')} to message type {mtype}: {d.get('status')} "
                    f"{d.get('error_description') or ''}".rstrip(),
                )
        raise LlrpSessionError("timeout", f"no response to message type {mtype} in {wait_s} s")

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise LlrpSessionError("connection_lost", f"send failed: {exc}") from exc

    def _receive(self, expect: int | None = None) -> list[ReaderEvent]:
        """Read what the reader sent within one poll; hand it to the sink; return the
        responses carrying message id ``expect``. Raise for whatever ends the session."""
        try:
            data = self.sock.recv(_RECV_BYTES)
        except TimeoutError:
            if time.monotonic() - self._last_heard > self.cfg.dead_after_s:
                raise LlrpSessionError(
                    "keepalive_timeout",
                    f"nothing heard for {self.cfg.dead_after_s:g} s "
                    f"(keepalive every {self.cfg.keepalive_s:g} s)",
                ) from None
            return []
        except OSError as exc:
            raise LlrpSessionError("connection_lost", str(exc)) from exc
        if not data:
            raise LlrpSessionError("closed", "the reader closed the connection")
        self._last_heard = time.monotonic()
        received_at = datetime.now(UTC)
        result = self.decoder.decode(data, received_at)
        if result.reply:
            self._send(result.reply)
        self.sink(LlrpChunk(self.cfg, result, received_at))  # first: nothing decoded is lost
        return self._check(result, expect)

    def _check(self, result: DecodeResult, expect: int | None) -> list[ReaderEvent]:
        matched: list[ReaderEvent] = []
        for event in result.events:
            if event.kind == "framing_lost":
                d = event.detail
                raise LlrpSessionError(str(d.get("reason", "framing")), str(d.get("error")))
            if event.kind == "reader_event":
                self._reader_event(event)
            elif event.kind in ("response", "custom_message"):
                if expect is not None and event.detail.get("message_id") == expect:
                    matched.append(event)
                elif not event.detail.get("ok", True) or event.detail.get("message") == _ERROR:
                    d = event.detail
                    raise LlrpSessionError(
                        "error_status",
                        f"{d.get('message')}: {d.get('status')} {d.get('error_description')}",
                    )
        for reject in result.rejects:
            if reject.reason in _RESET_REJECTS:
                raise LlrpSessionError(reject.reason, str(reject.error))
        return matched

    def _reader_event(self, event: ReaderEvent) -> None:
        d = event.detail
        attempt = d.get("connection_attempt")
        if attempt is not None:
            if attempt != "Success":
                raise LlrpSessionError("refused", f"the reader refused the connection: {attempt}")
            self._greeted = True
        shown = {"at_s": event.at.timestamp(), **{k: v for k, v in d.items() if k != "message_id"}}
        self._state("reading" if self.reading else "configuring", event=shown)
        names = d.get("events")
        if isinstance(names, list) and "ConnectionCloseEvent" in names:
            raise LlrpSessionError("closed", "the reader announced it closes the connection")
        if isinstance(names, list) and "ReaderExceptionEvent" in names:
            log.warning("llrp %s: reader exception event: %s", self.cfg.reader_id, d)
