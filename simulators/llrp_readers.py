"""Simulated LLRP readers: one TCP server per reader on loopback, speaking the reader's side of
LLRP to whichever client (the gateway) connects, the way a fixed UHF reader does on port 5084.

Each server greets a client with a ConnectionAttemptEvent (refusing a second client while one
is connected, as readers do), answers GET_READER_CAPABILITIES with an antenna count and a
power table, SET_READER_CONFIG (starting KEEPALIVEs at the period asked for), the ROSpec
messages and CLOSE_CONNECTION with success, and IMPINJ_ENABLE_EXTENSIONS as an Impinj reader
would. Anything else gets an ERROR_MESSAGE (M_UnsupportedMessage).

Reports are the simulator's own encoded RO_ACCESS_REPORTs (:mod:`simulators.emit`):
:meth:`LlrpReaderServers.write` waits until the reader's ROSpec is started — a reader with no
running ROSpec reads nothing — and sends them in order; the consumer's pace (TCP backpressure)
is the sender's pace. The bytes come from the gateway's own protocol encoders; nothing here
imports the gateway's transports.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from reader_gateway.protocols import llrp_encode as enc
from reader_gateway.protocols import llrp_spec as s
from simulators.emit import ReaderMessage

# The power table the simulated readers list: 10.0 .. 32.5 dBm in 0.25 dB steps, like a
# Speedway's.
POWER_TABLE_CDBM = tuple(range(1000, 3251, 25))
_ANSWERS = {
    s.SET_READER_CONFIG: s.SET_READER_CONFIG_RESPONSE,
    s.ADD_ROSPEC: s.ADD_ROSPEC_RESPONSE,
    s.DELETE_ROSPEC: s.DELETE_ROSPEC_RESPONSE,
    s.ENABLE_ROSPEC: s.ENABLE_ROSPEC_RESPONSE,
    s.DISABLE_ROSPEC: s.DISABLE_ROSPEC_RESPONSE,
    s.START_ROSPEC: s.START_ROSPEC_RESPONSE,
    s.STOP_ROSPEC: s.STOP_ROSPEC_RESPONSE,
    s.CLOSE_CONNECTION: s.CLOSE_CONNECTION_RESPONSE,
}
_UNSUPPORTED = 109  # M_UnsupportedMessage


@dataclass
class _Reader:
    """One simulated reader: its listening socket and the current client, if any."""

    reader_id: str
    server: socket.socket
    antennas: int
    conn: socket.socket | None = None
    running: threading.Condition = field(default_factory=threading.Condition)
    started: bool = False  # our client's ROSpec is running
    send_lock: threading.Lock = field(default_factory=threading.Lock)
    sent_reports: int = 0
    connections: int = 0


class LlrpReaderServers:
    """A loopback LLRP reader per reader id; :attr:`endpoints` maps reader id to (host, port)."""

    def __init__(self, reader_ids: list[str], *, antennas: int = 4, host: str = "127.0.0.1"):
        self._readers: dict[str, _Reader] = {}
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self.endpoints: dict[str, tuple[str, int]] = {}
        for reader_id in sorted(set(reader_ids)):
            server = socket.create_server((host, 0))
            server.settimeout(0.2)
            self._readers[reader_id] = _Reader(reader_id, server, antennas)
            self.endpoints[reader_id] = (host, server.getsockname()[1])
            self._spawn(self._accept, self._readers[reader_id])

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    # -- the emitter's side ------------------------------------------------------------------

    def write(self, message: ReaderMessage, timeout_s: float | None = None) -> None:
        """Send one RO_ACCESS_REPORT once the reader's ROSpec runs: waits for a client to
        start it (as long as it takes, or up to ``timeout_s``, then ``TimeoutError``)."""
        reader = self._readers[message.reader_id]
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            with reader.running:
                if not reader.running.wait_for(
                    lambda: reader.started or self._closing.is_set(),
                    None if deadline is None else max(0.0, deadline - time.monotonic()),
                ):
                    raise TimeoutError(f"no client started reader {reader.reader_id}'s ROSpec")
                conn = reader.conn
            if self._closing.is_set():
                return
            if conn is not None and self._send(reader, conn, message.payload):
                reader.sent_reports += 1
                return
            time.sleep(0.01)  # the connection went away: wait for the next client

    def sent(self, reader_id: str) -> int:
        """Reports sent so far by one reader."""
        return self._readers[reader_id].sent_reports

    def connections(self, reader_id: str) -> int:
        """Clients one reader accepted so far."""
        return self._readers[reader_id].connections

    def drop(self, reader_id: str) -> None:
        """Close the reader's current connection (a reboot, a cable pulled)."""
        reader = self._readers[reader_id]
        with reader.running:
            conn, reader.conn, reader.started = reader.conn, None, False
        if conn is not None:
            _close(conn)

    def close(self) -> None:
        """Close every connection and server."""
        self._closing.set()
        for reader in self._readers.values():
            with reader.running:
                reader.running.notify_all()
            self.drop(reader.reader_id)
            reader.server.close()
        for thread in self._threads:
            thread.join(2)

    # -- the reader's side -------------------------------------------------------------------

    @staticmethod
    def _send(reader: _Reader, conn: socket.socket, data: bytes) -> bool:
        with reader.send_lock:
            try:
                conn.sendall(data)
            except OSError:
                return False
        return True

    def _accept(self, reader: _Reader) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = reader.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            now = datetime.now(UTC)
            if reader.conn is not None:  # LLRP readers serve one client at a time
                conn.sendall(enc.encode_connection_attempt(at=now, status=2))
                _close(conn)
                continue
            conn.settimeout(None)
            with reader.running:
                reader.conn, reader.started = conn, False
                reader.connections += 1
            self._send(reader, conn, enc.encode_connection_attempt(at=now))
            self._spawn(self._serve, reader, conn)

    def _serve(self, reader: _Reader, conn: socket.socket) -> None:
        try:
            while not self._closing.is_set():
                message = _read_message(conn)
                if message is None or not self._answer(reader, conn, *message):
                    break
        finally:
            with reader.running:
                if reader.conn is conn:
                    reader.conn, reader.started = None, False
            _close(conn)

    def _answer(
        self, reader: _Reader, conn: socket.socket, mtype: int, mid: int, body: bytes
    ) -> bool:
        """Answer one client message; False when the connection is to end."""
        if mtype == s.KEEPALIVE_ACK:
            return True
        if mtype == s.GET_READER_CAPABILITIES:
            reply = enc.encode_capabilities_response(
                message_id=mid, max_antennas=reader.antennas,
                power_table_cdbm=POWER_TABLE_CDBM, firmware="tagtrail-sim llrp 1",
            )  # fmt: skip
        elif mtype == s.CUSTOM_MESSAGE and body[:5] == struct.pack(
            ">IB", s.IMPINJ_VENDOR_ID, s.IMPINJ_ENABLE_EXTENSIONS
        ):
            reply = enc.encode_message(
                s.CUSTOM_MESSAGE,
                struct.pack(">IB", s.IMPINJ_VENDOR_ID, s.IMPINJ_ENABLE_EXTENSIONS_RESPONSE)
                + enc.encode_llrp_status(),
                message_id=mid,
            )
        elif mtype in _ANSWERS:
            reply = enc.encode_response(_ANSWERS[mtype], message_id=mid)
        else:
            reply = enc.encode_response(
                s.ERROR_MESSAGE, message_id=mid, status_code=_UNSUPPORTED,
                description=f"message type {mtype} not supported by the simulator",
            )  # fmt: skip
        if mtype == s.SET_READER_CONFIG:
            self._keepalive_from(reader, conn, body)
        if mtype == s.STOP_ROSPEC or mtype == s.DELETE_ROSPEC:
            with reader.running:
                reader.started = False
        sent = self._send(reader, conn, reply)
        if mtype == s.START_ROSPEC:
            with reader.running:
                reader.started = reader.conn is conn
                reader.running.notify_all()
        return sent and mtype != s.CLOSE_CONNECTION

    def _keepalive_from(self, reader: _Reader, conn: socket.socket, body: bytes) -> None:
        """Start KEEPALIVEs if SET_READER_CONFIG carries a periodic KeepaliveSpec."""
        i = 1  # after ResetToFactoryDefault
        while i + 4 <= len(body):
            ptype, length = struct.unpack_from(">HH", body, i)
            if ptype & 0x3FF == s.P_KEEPALIVE_SPEC and length >= 9:
                kind, period_ms = struct.unpack_from(">BI", body, i + 4)
                if kind == 1 and period_ms > 0:
                    self._spawn(self._keepalives, reader, conn, period_ms / 1000.0)
                return
            i += max(length, 4)

    def _keepalives(self, reader: _Reader, conn: socket.socket, period_s: float) -> None:
        mid = 0
        while not self._closing.wait(period_s) and reader.conn is conn:
            mid += 1
            if not self._send(reader, conn, enc.encode_keepalive(message_id=mid)):
                return


def _read_exactly(conn: socket.socket, n: int) -> bytes | None:
    out = b""
    while len(out) < n:
        try:
            more = conn.recv(n - len(out))
        except OSError:
            return None
        if not more:
            return None
        out += more
    return out


def _read_message(conn: socket.socket) -> tuple[int, int, bytes] | None:
    """The client's next message (type, id, body), or None when the connection ended."""
    head = _read_exactly(conn, s.HEADER_LEN)
    if head is None:
        return None
    first, length, mid = struct.unpack(">HII", head)
    if length < s.HEADER_LEN or length > 1 << 20:
        return None  # a client that lost framing: hang up, as a reader would
    body = _read_exactly(conn, length - s.HEADER_LEN) if length > s.HEADER_LEN else b""
    return None if body is None else (first & 0x3FF, mid, body)


def _close(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already gone
        conn.shutdown(socket.SHUT_RDWR)
    conn.close()


__all__ = ["POWER_TABLE_CDBM", "LlrpReaderServers"]
