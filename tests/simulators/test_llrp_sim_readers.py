"""Simulated LLRP readers: the reports decode back to the simulated reads, and the TCP
servers play a reader's side of the conversation (greeting, one client, keepalives, errors)."""

from __future__ import annotations

import socket
import struct
from datetime import UTC, datetime

import pandas as pd

from reader_gateway.protocols import llrp_encode as enc
from reader_gateway.protocols import llrp_spec as s
from reader_gateway.protocols.llrp import LlrpDecoder
from simulators.emit import reader_messages
from simulators.llrp_readers import LlrpReaderServers

AT = datetime(2026, 1, 1, tzinfo=UTC)
T0_US = 1_740_960_000_000_000


def _reads() -> pd.DataFrame:
    n = 40
    return pd.DataFrame(
        {
            "reader_id": pd.Categorical(["R0001", "R0002"] * (n // 2)),
            "tag_id": [f"E2801160600002{i % 7:010X}" for i in range(n)],
            "antenna": [1 + i % 4 for i in range(n)],
            "rssi_dbm": [-60.4 + i * 0.1 for i in range(n)],
            "read_at_us": [T0_US + 12_345 * i for i in range(n)],
            "true_at_us": [T0_US + 12_345 * i - 7 for i in range(n)],
        }
    )


def test_llrp_reports_decode_back_to_the_reads() -> None:
    reads = _reads()
    messages = list(reader_messages(reads, {"R0001": "llrp", "R0002": "llrp"}))
    assert {m.protocol for m in messages} == {"llrp"}
    decoder = LlrpDecoder()
    stream = b"".join(m.payload for m in messages if m.reader_id == "R0001")
    got = []
    for k in range(0, len(stream), 29):  # any chunking, as TCP delivers
        got += decoder.decode(stream[k : k + 29], AT).tag_reads()
    mine = reads[reads["reader_id"] == "R0001"]
    assert [(r.tag_id, r.antenna, r.rssi_dbm, int(r.read_at.timestamp() * 1e6)) for r in got] == [
        (t, a, float(round(rssi)), at)
        for t, a, rssi, at in zip(mine["tag_id"], mine["antenna"], mine["rssi_dbm"],
                                  mine["read_at_us"], strict=True)
    ]  # fmt: skip


def _message(conn: socket.socket) -> tuple[int, int, bytes]:
    head = b""
    while len(head) < 10:
        head += conn.recv(10 - len(head))
    first, length, mid = struct.unpack(">HII", head)
    body = b""
    while len(body) < length - 10:
        body += conn.recv(length - 10 - len(body))
    return first & 0x3FF, mid, body


def test_server_greets_one_client_answers_and_keeps_alive() -> None:
    servers = LlrpReaderServers(["R0001"])
    try:
        endpoint = servers.endpoints["R0001"]
        client = socket.create_connection(endpoint, timeout=5)
        mtype, _, body = _message(client)
        assert mtype == s.READER_EVENT_NOTIFICATION
        result = LlrpDecoder().decode(enc.encode_message(mtype, body, message_id=0), AT)
        assert result.events[0].detail["connection_attempt"] == "Success"
        second = socket.create_connection(endpoint, timeout=5)
        mtype, _, body = _message(second)
        result = LlrpDecoder().decode(enc.encode_message(mtype, body, message_id=0), AT)
        assert result.events[0].detail["connection_attempt"] == (
            "Failed_A_Client_Initiated_Connection_Already_Exists"
        )
        second.close()
        client.sendall(enc.encode_message(s.GET_REPORT, message_id=41))  # not simulated
        assert _message(client)[:2] == (s.ERROR_MESSAGE, 41)
        client.sendall(enc.encode_set_keepalive(message_id=42, period_ms=50))
        assert _message(client)[:2] == (s.SET_READER_CONFIG_RESPONSE, 42)
        assert _message(client)[0] == s.KEEPALIVE
        assert _message(client)[0] == s.KEEPALIVE
        client.sendall(enc.encode_close_connection(message_id=43))
        mtype, mid, _ = _message(client)
        while mtype == s.KEEPALIVE:
            mtype, mid, _ = _message(client)
        assert (mtype, mid) == (s.CLOSE_CONNECTION_RESPONSE, 43)
        client.close()
        assert servers.connections("R0001") == 1
    finally:
        servers.close()
