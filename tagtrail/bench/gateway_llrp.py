"""LLRP session benchmark: reads per second through the gateway's LLRP transport on loopback.

A minimal reader in a thread of this process accepts the transport's connection, answers its
configuration (capabilities, keepalive, ROSpec messages) and, once the ROSpec is started,
sends a prepared stream of RO_ACCESS_REPORTs as fast as TCP takes it. The figure is the
reads the transport decoded and handed to its sink, divided by the time from the first
report byte sent to the last read handed over: socket reads, decoding, KEEPALIVE-free
steady state, and the hand-over the gateway's inbox gets. Reader and transport share the
process (and, pinned, its core); the reader only writes prepared bytes.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from datetime import UTC, datetime

from reader_gateway.config import LlrpReaderConfig
from reader_gateway.protocols import llrp_encode as enc
from reader_gateway.protocols import llrp_spec as s
from reader_gateway.transport.llrp import LlrpReader
from reader_gateway.transport.llrp_session import LlrpChunk, LlrpItem

_ANSWERS = {
    s.SET_READER_CONFIG: s.SET_READER_CONFIG_RESPONSE,
    s.ADD_ROSPEC: s.ADD_ROSPEC_RESPONSE,
    s.DELETE_ROSPEC: s.DELETE_ROSPEC_RESPONSE,
    s.ENABLE_ROSPEC: s.ENABLE_ROSPEC_RESPONSE,
    s.START_ROSPEC: s.START_ROSPEC_RESPONSE,
    s.STOP_ROSPEC: s.STOP_ROSPEC_RESPONSE,
    s.CLOSE_CONNECTION: s.CLOSE_CONNECTION_RESPONSE,
}


def _exactly(conn: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        more = conn.recv(n - len(out))
        if not more:
            raise ConnectionError("the transport closed the connection")
        out += more
    return out


def _serve(server: socket.socket, stream: bytes, started: list[float]) -> None:
    """Play the reader: answer every message; after START_ROSPEC send ``stream``."""
    conn, _ = server.accept()
    with conn:
        conn.sendall(enc.encode_connection_attempt(at=datetime.now(UTC)))
        sender: threading.Thread | None = None
        while True:
            first, length, mid = struct.unpack(">HII", _exactly(conn, s.HEADER_LEN))
            mtype = first & 0x3FF
            if length > s.HEADER_LEN:
                _exactly(conn, length - s.HEADER_LEN)
            if mtype == s.GET_READER_CAPABILITIES:
                reply = enc.encode_capabilities_response(
                    message_id=mid, max_antennas=4, power_table_cdbm=[3000]
                )
            elif mtype in _ANSWERS:
                reply = enc.encode_response(_ANSWERS[mtype], message_id=mid)
            else:
                continue  # KEEPALIVE_ACK
            if sender is not None and mtype != s.START_ROSPEC:
                sender.join()  # the reports go out before any later response
            conn.sendall(reply)
            if mtype == s.START_ROSPEC:

                def send() -> None:
                    started.append(time.perf_counter())
                    conn.sendall(stream)

                sender = threading.Thread(target=send)
                sender.start()
            if mtype == s.CLOSE_CONNECTION:
                return


def time_session(stream: bytes, reads: int) -> float:
    """Seconds for the LLRP transport to hand over ``reads`` reads sent as ``stream``."""
    server = socket.create_server(("127.0.0.1", 0))
    started: list[float] = []
    reader_thread = threading.Thread(target=_serve, args=(server, stream, started), daemon=True)
    reader_thread.start()
    got = [0]
    done = threading.Event()
    finished: list[float] = []

    def sink(item: LlrpItem) -> None:
        if isinstance(item, LlrpChunk):
            got[0] += item.result.read_count
            if got[0] >= reads and not done.is_set():
                finished.append(time.perf_counter())
                done.set()

    config = LlrpReaderConfig(
        host="127.0.0.1",
        port=server.getsockname()[1],
        reader_id="bench",
        keepalive_s=60,
        dead_after_s=600,
    )
    transport = LlrpReader(config, sink)
    transport.start()
    try:
        if not done.wait(300):
            raise RuntimeError(f"llrp session: {got[0]} of {reads} reads in 300 s")
    finally:
        transport.stop()
        reader_thread.join(10)
        server.close()
    return finished[0] - started[0]


__all__ = ["time_session"]
