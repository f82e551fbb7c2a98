"""A scripted LLRP reader for transport tests: a loopback TCP server the test drives message
by message, checking what the gateway sends byte for byte (the way paho's tests script a
broker)."""

from __future__ import annotations

import socket
import struct
from datetime import UTC, datetime

from reader_gateway.protocols import llrp_encode as enc
from reader_gateway.protocols import llrp_spec as s

POWER_TABLE_CDBM = [1000 + 100 * i for i in range(21)]  # 10.0 .. 30.0 dBm, indices 1..21


class ScriptedReader:
    """One listening socket; :meth:`accept` takes the gateway's next connection."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(10)
        self.port = self.server.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self) -> None:
        """Wait for the gateway to connect."""
        self.conn, _ = self.server.accept()
        self.conn.settimeout(10)

    def send(self, data: bytes) -> None:
        """Send bytes as the reader."""
        assert self.conn is not None
        self.conn.sendall(data)

    def _exactly(self, n: int) -> bytes:
        assert self.conn is not None
        out = b""
        while len(out) < n:
            more = self.conn.recv(n - len(out))
            if not more:
                raise ConnectionError(f"gateway closed after {len(out)} of {n} bytes")
            out += more
        return out

    def receive(self) -> tuple[int, int, bytes]:
        """The gateway's next message: (type, message id, whole message bytes)."""
        head = self._exactly(s.HEADER_LEN)
        first, length, mid = struct.unpack(">HII", head)
        return first & 0x3FF, mid, head + self._exactly(length - s.HEADER_LEN)

    def expect(self, mtype: int) -> tuple[int, bytes]:
        """The next message, which must be of type ``mtype``: (message id, bytes)."""
        got, mid, raw = self.receive()
        assert got == mtype, f"expected message type {mtype}, got {got}: {raw.hex()}"
        return mid, raw

    def answer(self, mtype: int, response: int, status: int = 0, text: str = "") -> bytes:
        """Expect ``mtype`` and answer it with ``response`` of status ``status``."""
        mid, raw = self.expect(mtype)
        self.send(enc.encode_response(response, message_id=mid, status_code=status,
                                      description=text))  # fmt: skip
        return raw

    def handshake(self, *, antennas: int = 4) -> dict[int, bytes]:
        """Accept, greet, and answer the gateway's configuration; its messages by type."""
        self.accept()
        self.send(enc.encode_connection_attempt(at=datetime.now(UTC)))
        got: dict[int, bytes] = {}
        mid, got[s.GET_READER_CAPABILITIES] = self.expect(s.GET_READER_CAPABILITIES)
        self.send(enc.encode_capabilities_response(
            message_id=mid, max_antennas=antennas, power_table_cdbm=POWER_TABLE_CDBM,
            firmware="scripted 1.0",
        ))  # fmt: skip
        got[s.SET_READER_CONFIG] = self.answer(s.SET_READER_CONFIG, s.SET_READER_CONFIG_RESPONSE)
        # No such ROSpec yet: a real reader says so with an error status, which is fine.
        got[s.DELETE_ROSPEC] = self.answer(
            s.DELETE_ROSPEC, s.DELETE_ROSPEC_RESPONSE, 100, "no such ROSpec"
        )
        for mtype, response in (
            (s.ADD_ROSPEC, s.ADD_ROSPEC_RESPONSE),
            (s.ENABLE_ROSPEC, s.ENABLE_ROSPEC_RESPONSE),
            (s.START_ROSPEC, s.START_ROSPEC_RESPONSE),
        ):
            got[mtype] = self.answer(mtype, response)
        return got

    def close_connection(self) -> None:
        """Close the current connection (the gateway sees the reader go away)."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def close(self) -> None:
        """Close everything."""
        self.close_connection()
        self.server.close()
