"""Simulated LLRP readers: the reports decode back to the simulated reads, and the TCP
servers play a reader's side of the conversation (greeting, one client, keepalives, errors)."""

from __future__ import annotations

import socket
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reader_gateway.protocols import llrp_encode as enc
from reader_gateway.protocols import llrp_spec as s
from reader_gateway.protocols.llrp import LlrpDecoder
from simulators import wire_columns as wc
from simulators.emit import ReaderMessage, reader_messages
from simulators.emit_files import EmitTables, order_reads, write_streams
from simulators.llrp_readers import LlrpReaderServers
from simulators.scenario import SimOptions, run

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


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
START = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)  # 08:00 local time, morning peak


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.binary(min_size=1, max_size=31),  # EPC bytes: 12 (EPC-96) or any other length
            st.integers(1, 0xFFFF),
            st.floats(-128.4, 127.4, allow_nan=False),
            st.integers(0, 253_402_300_799_999_999),  # up to 9999-12-31
            st.integers(0, 2**40),
        ),
        min_size=1,
        max_size=20,
    ),
    st.booleans(),
)
def test_column_encoder_gives_the_gateway_encoders_bytes(
    rows: list[tuple[bytes, int, float, int, int]], epc96: bool
) -> None:
    rows = [((e * 12)[:12] if epc96 else e, a, r, t, m) for e, a, r, t, m in rows]
    got = wc.llrp_reports(
        message_id=np.array([m for *_, m in rows], np.int64),
        epc=wc.epc_table([e.hex() for e, *_ in rows]),
        antenna=np.array([a for _, a, *_ in rows], np.int64),
        rssi_dbm=np.array([r for _, _, r, *_ in rows]),
        read_at_us=np.array([t for *_, t, _ in rows], np.int64),
    )
    flat, lens = got.build()
    ends = np.cumsum(lens)
    split = [flat[e - n : e].tobytes() for e, n in zip(ends, lens, strict=True)]
    assert split == [
        enc.encode_ro_access_report(
            [
                enc.TagReport(
                    e.hex(), a, int(np.rint(r)), first_seen=EPOCH + timedelta(microseconds=t)
                )
            ],
            message_id=m & 0xFFFF_FFFF,
        )
        for e, a, r, t, m in rows
    ]


def test_llrp_reader_files_are_the_live_streams(tmp_path: Path) -> None:
    sim = run(SimOptions(seed=6, bikes=60, hours=0.25, size_m=1500, coverage=0.25,
                         protocol_mix={"llrp": 1.0, "r2000": 1.0}, active_fraction=0.0,
                         thefts=0, clones=0, start=START))  # fmt: skip
    protocols = {r.reader_id: r.protocol for r in sim.readers}
    reads = sim.reads
    coded = pd.DataFrame({
        "reader": reads["reader_id"].cat.codes.to_numpy(np.int16),
        "antenna": reads["antenna"].to_numpy(), "tag": reads["tag_id"].cat.codes.to_numpy(),
        "rssi_dbm": reads["rssi_dbm"].to_numpy(), "read_at_us": reads["read_at_us"].to_numpy(),
        "true_at_us": reads["true_at_us"].to_numpy(),
    })  # fmt: skip
    tables = EmitTables.build(sim.readers, list(reads["tag_id"].cat.categories), seed=3,
                              garbage_prob=0.0)  # fmt: skip
    write_streams(tmp_path, tables, order_reads(coded))
    expected: dict[str, bytearray] = {}
    for m in reader_messages(reads, protocols, seed=3):
        if m.protocol == "llrp":
            expected.setdefault(m.reader_id, bytearray()).extend(m.payload)
    assert expected, "the scenario has LLRP readers with reads"
    folder = tmp_path / "emitted" / "llrp"
    got = {p.stem: p.read_bytes() for p in folder.glob("*.bin")}
    assert got == {k: bytes(v) for k, v in expected.items()}


def test_reports_wait_for_a_started_rospec() -> None:
    servers = LlrpReaderServers(["R0001"])
    report = enc.encode_ro_access_report(
        [enc.TagReport("E2801160600002AAAAAAAAAA", 1, -50, first_seen=AT)], message_id=1
    )
    message = ReaderMessage("llrp", "R0001", report, 0)
    try:
        with pytest.raises(TimeoutError, match="R0001"):
            servers.write(message, timeout_s=0.2)  # no client: a reader reads nothing
        client = socket.create_connection(servers.endpoints["R0001"], timeout=5)
        assert _message(client)[0] == s.READER_EVENT_NOTIFICATION
        client.sendall(enc.encode_start_rospec(message_id=5, rospec_id=1))
        assert _message(client)[:2] == (s.START_ROSPEC_RESPONSE, 5)
        servers.write(message, timeout_s=5)
        assert _message(client) == (s.RO_ACCESS_REPORT, 1, report[10:])
        assert servers.sent("R0001") == 1
        client.close()
    finally:
        servers.close()
