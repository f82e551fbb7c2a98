"""The LLRP transport against a scripted reader: the session's bytes, reads, keepalives, a
clean stop, and every kind of bad input ending the connection with its reason, then a
reconnect — with nothing decoded before the fault lost."""

from __future__ import annotations

import queue
import struct
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from gw_helpers import wait_until
from llrp_peer import ScriptedReader

from reader_gateway.config import LlrpReaderConfig
from reader_gateway.protocols import llrp_encode as enc
from reader_gateway.protocols import llrp_spec as s
from reader_gateway.protocols.base import TagRead
from reader_gateway.transport.llrp import LlrpReader
from reader_gateway.transport.llrp_session import LlrpChunk, LlrpItem, LlrpState

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def _tags(n: int, start: int = 0) -> list[enc.TagReport]:
    return [
        enc.TagReport(
            f"E2801160600002{i:010X}", 1 + i % 4, -50 - i % 20,
            first_seen=T0 + timedelta(milliseconds=10 * i), channel=3,
        )
        for i in range(start, start + n)
    ]  # fmt: skip


def _reports(tags: list[enc.TagReport], first_id: int = 1000) -> bytes:
    return b"".join(
        enc.encode_ro_access_report([t], message_id=first_id + i) for i, t in enumerate(tags)
    )


class Sink:
    """Collects what the transport hands the gateway."""

    def __init__(self) -> None:
        self.items: queue.Queue[LlrpItem] = queue.Queue()
        self.seen: list[LlrpItem] = []

    def __call__(self, item: LlrpItem) -> None:
        self.items.put(item)

    def _drain(self) -> None:
        while not self.items.empty():
            self.seen.append(self.items.get())

    def reads(self) -> list[TagRead]:
        self._drain()
        return [r for i in self.seen if isinstance(i, LlrpChunk) for r in i.result.reads]

    def states(self) -> list[LlrpState]:
        self._drain()
        return [i for i in self.seen if isinstance(i, LlrpState)]

    def errors(self) -> list[str]:
        return [st.error.reason for st in self.states() if st.error is not None]

    def phases(self) -> list[str]:
        return [st.phase for st in self.states()]


@pytest.fixture
def peer() -> Iterator[ScriptedReader]:
    reader = ScriptedReader()
    yield reader
    reader.close()


def _config(port: int, **extra: object) -> LlrpReaderConfig:
    return LlrpReaderConfig.model_validate(
        {
            "host": "127.0.0.1",
            "port": port,
            "reader_id": "LL-1",
            # Long enough that a loaded machine's pauses are not taken for a dead reader.
            "keepalive_s": 1.0,
            "dead_after_s": 3.0,
            "response_timeout_s": 3.0,
            "reconnect_min_s": 0.05,
            "reconnect_max_s": 0.2,
            **extra,
        }
    )


def _run(peer: ScriptedReader, script: Callable[[], None]) -> threading.Thread:
    errors: list[BaseException] = []

    def body() -> None:
        try:
            script()
        except BaseException as exc:  # surfaced by the test through the thread's result
            errors.append(exc)
            raise

    thread = threading.Thread(target=body, daemon=True)
    thread.errors = errors  # type: ignore[attr-defined]
    thread.start()
    return thread


def _join(thread: threading.Thread) -> None:
    thread.join(20)
    assert not thread.is_alive(), "the scripted reader did not finish"
    assert not thread.errors, thread.errors  # type: ignore[attr-defined]


def test_session_bytes_reads_keepalive_and_clean_stop(peer: ScriptedReader) -> None:
    cfg = _config(
        peer.port, antennas=[1, 2], power_dbm=20.4, session=2, search_mode=2, dead_after_s=30
    )
    sink = Sink()
    tags = _tags(5)
    got: dict[int, bytes] = {}
    acks: list[bytes] = []
    stop_sequence: list[int] = []

    def script() -> None:
        peer.accept()
        peer.send(enc.encode_connection_attempt(at=T0))
        mid, _ = peer.expect(s.GET_READER_CAPABILITIES)
        peer.send(enc.encode_capabilities_response(
            message_id=mid, max_antennas=4, power_table_cdbm=[1000 + 100 * i for i in range(21)],
        ))  # fmt: skip
        got[s.SET_READER_CONFIG] = peer.answer(s.SET_READER_CONFIG, s.SET_READER_CONFIG_RESPONSE)
        mid, got[s.CUSTOM_MESSAGE] = peer.expect(s.CUSTOM_MESSAGE)
        peer.send(enc.encode_message(
            s.CUSTOM_MESSAGE, struct.pack(">IB", s.IMPINJ_VENDOR_ID, 22)
            + enc.encode_llrp_status(), message_id=mid,
        ))  # fmt: skip
        got[s.DELETE_ROSPEC] = peer.answer(s.DELETE_ROSPEC, s.DELETE_ROSPEC_RESPONSE, 100, "none")
        for mtype, resp in ((s.ADD_ROSPEC, s.ADD_ROSPEC_RESPONSE),
                            (s.ENABLE_ROSPEC, s.ENABLE_ROSPEC_RESPONSE),
                            (s.START_ROSPEC, s.START_ROSPEC_RESPONSE)):  # fmt: skip
            got[mtype] = peer.answer(mtype, resp)
        data = _reports(tags[:4]) + enc.encode_keepalive(message_id=77)
        for i in range(0, len(data), 7):  # TCP hands bytes over in any pieces
            peer.send(data[i : i + 7])
        acks.append(peer.expect(s.KEEPALIVE_ACK)[1])
        mid, _ = peer.expect(s.STOP_ROSPEC)
        stop_sequence.append(s.STOP_ROSPEC)
        peer.send(_reports(tags[4:], 2000))  # reported before the stop took effect: kept
        peer.send(enc.encode_response(s.STOP_ROSPEC_RESPONSE, message_id=mid))
        peer.answer(s.DELETE_ROSPEC, s.DELETE_ROSPEC_RESPONSE)  # answer() checks the type
        stop_sequence.append(s.DELETE_ROSPEC)
        peer.answer(s.CLOSE_CONNECTION, s.CLOSE_CONNECTION_RESPONSE)
        stop_sequence.append(s.CLOSE_CONNECTION)
        peer.close_connection()

    thread = _run(peer, script)
    reader = LlrpReader(cfg, sink)
    reader.start()
    wait_until(lambda: len(sink.reads()) >= 4 and acks, 10, "four reads and a keepalive ack")
    reader.stop()
    _join(thread)

    rid = cfg.rospec_id
    assert got[s.SET_READER_CONFIG] == enc.encode_set_keepalive(message_id=2, period_ms=1000)
    assert got[s.CUSTOM_MESSAGE] == enc.encode_impinj_enable_extensions(message_id=3)
    assert got[s.DELETE_ROSPEC] == enc.encode_delete_rospec(message_id=4, rospec_id=rid)
    # 20.4 dBm: the highest level not above it is 20.0 dBm, index 11 of the reader's table.
    config = enc.encode_antenna_configuration(power_index=11, session=2, search_mode=2)
    rospec = enc.encode_rospec(rospec_id=rid, antennas=[1, 2], antenna_configurations=[config])
    assert got[s.ADD_ROSPEC] == enc.encode_add_rospec(message_id=5, rospec=rospec)
    assert got[s.START_ROSPEC] == enc.encode_start_rospec(message_id=7, rospec_id=rid)
    assert acks == [enc.encode_keepalive_ack(message_id=77)]
    assert stop_sequence == [s.STOP_ROSPEC, s.DELETE_ROSPEC, s.CLOSE_CONNECTION]
    assert [(r.tag_id, r.antenna, r.rssi_dbm, r.read_at, r.channel) for r in sink.reads()] == [
        (t.tag_id, t.antenna, float(t.rssi_dbm or 0), t.first_seen, 3) for t in tags
    ]
    assert sink.phases()[-3:] == ["reading", "stopping", "disconnected"]
    assert sink.errors() == []
    reading = next(st for st in sink.states() if st.phase == "reading" and st.reader)
    assert reading.reader["max_antennas"] == 4


def _bad_bytes(kind: str) -> bytes:
    if kind == "version":
        return struct.pack(">HII", (3 << 10) | s.RO_ACCESS_REPORT, 10, 1)
    if kind == "oversized":
        return struct.pack(">HII", (1 << 10) | s.RO_ACCESS_REPORT, 1 << 30, 1)
    if kind == "unknown_message":
        return enc.encode_message(999, b"\x01\x02", message_id=5)
    if kind == "error_status":
        return enc.encode_response(s.ERROR_MESSAGE, message_id=0, status_code=401,
                                   description="antenna fault")  # fmt: skip
    if kind == "truncated":  # half a report, then the reader closes the connection
        return enc.encode_ro_access_report(_tags(1, 99), message_id=9)[:20]
    return b""  # closed: nothing more; keepalive_timeout: the reader goes quiet


@pytest.mark.parametrize(
    "kind", ["version", "oversized", "unknown_message", "error_status", "keepalive_timeout",
             "closed", "truncated"],
)  # fmt: skip
def test_bad_input_resets_the_connection_and_keeps_what_came_before(
    peer: ScriptedReader, kind: str
) -> None:
    sink = Sink()
    tags = _tags(6)

    def script() -> None:
        peer.handshake()
        peer.send(_reports(tags[:3]) + _bad_bytes(kind))
        if kind in ("closed", "truncated"):
            peer.close_connection()
        elif kind != "keepalive_timeout":
            # The gateway resets: it closes its side without a word.
            peer.conn.settimeout(5)  # type: ignore[union-attr]
            assert peer.conn.recv(1 << 16) == b""  # type: ignore[union-attr]
        else:
            peer.conn.settimeout(5)  # type: ignore[union-attr]
            data = b""
            while chunk := peer.conn.recv(1 << 16):  # type: ignore[union-attr]
                data += chunk
        peer.close_connection()
        peer.handshake()  # it comes back
        peer.send(_reports(tags[3:], 3000))
        mid, _ = peer.expect(s.STOP_ROSPEC)
        peer.send(enc.encode_response(s.STOP_ROSPEC_RESPONSE, message_id=mid))
        peer.answer(s.DELETE_ROSPEC, s.DELETE_ROSPEC_RESPONSE)
        peer.answer(s.CLOSE_CONNECTION, s.CLOSE_CONNECTION_RESPONSE)

    thread = _run(peer, script)
    reader = LlrpReader(_config(peer.port), sink)
    reader.start()
    wait_until(lambda: len(sink.reads()) >= 6, 15, "the reads of both connections")
    reader.stop()
    _join(thread)
    assert [r.tag_id for r in sink.reads()] == [t.tag_id for t in tags]
    assert sink.errors() == ["closed" if kind == "truncated" else kind]
    rejects = [j.reason for i in sink.seen if isinstance(i, LlrpChunk) for j in i.result.rejects]
    expected = {"version": ["version"], "oversized": ["oversized"], "truncated": ["truncated"],
                "unknown_message": ["unknown_message"]}  # fmt: skip
    assert rejects == expected.get(kind, [])  # the bytes themselves: counted and quarantined
    assert reader.sessions == 2
    error = next(st.error for st in sink.states() if st.error is not None)
    assert str(error)  # a reason a person can read, also on the status topic


def test_refused_connection_and_unreachable_reader_are_retried(peer: ScriptedReader) -> None:
    sink = Sink()

    def script() -> None:
        peer.accept()
        peer.send(enc.encode_connection_attempt(at=T0, status=2))  # another client holds it
        peer.close_connection()
        peer.server.close()  # then nobody listens for a while

    thread = _run(peer, script)
    reader = LlrpReader(_config(peer.port), sink)
    reader.start()
    wait_until(lambda: "connect_failed" in sink.errors(), 10, "a failed reconnect")
    reader.stop()
    _join(thread)
    assert sink.errors()[0] == "refused"
    assert not reader._thread.is_alive()  # stop() is not held up by the backoff


def test_a_failing_session_is_logged_and_the_reader_reconnected(peer: ScriptedReader) -> None:
    class FailingOnce(Sink):
        failed = False

        def __call__(self, item: LlrpItem) -> None:
            if isinstance(item, LlrpChunk) and item.result.reads and not self.failed:
                self.failed = True
                raise RuntimeError("a bug downstream")
            super().__call__(item)

    sink = FailingOnce()
    tags = _tags(2)

    def script() -> None:
        peer.handshake()
        peer.send(_reports(tags[:1]))
        peer.conn.settimeout(5)  # type: ignore[union-attr]
        assert peer.conn.recv(1024) == b""  # type: ignore[union-attr]
        peer.close_connection()
        peer.handshake()
        peer.send(_reports(tags[1:], 5000))
        mid, _ = peer.expect(s.STOP_ROSPEC)
        peer.send(enc.encode_response(s.STOP_ROSPEC_RESPONSE, message_id=mid))
        peer.answer(s.DELETE_ROSPEC, s.DELETE_ROSPEC_RESPONSE)
        peer.answer(s.CLOSE_CONNECTION, s.CLOSE_CONNECTION_RESPONSE)

    thread = _run(peer, script)
    reader = LlrpReader(_config(peer.port), sink)
    reader.start()
    wait_until(lambda: len(sink.reads()) >= 1, 15, "a read after the reconnect")
    reader.stop()
    _join(thread)
    assert sink.errors() == ["internal_error"]
    assert [r.tag_id for r in sink.reads()] == [tags[1].tag_id]
