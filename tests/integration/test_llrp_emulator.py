"""The gateway against an LLRP reader emulator that is not ours: llrpkit's (MIT, its own LLRP
codec). Connect, configure, receive reads, lose the connection (the emulated reader goes away
and comes back), reconnect, stop cleanly — and every read the emulator reported is stored in
PostgreSQL exactly once, through Mosquitto and the engine."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from llrpkit.emulator import LLRPEmulator
from llrpkit.protocol import LLRPMessage, messages

from reader_gateway.config import GatewayConfig
from reader_gateway.orchestrator.gateway import Gateway
from track_engine.consumer.config import EngineConfig
from track_engine.consumer.service import EngineService

READER = "EMU-1"


class RecordingEmulator(LLRPEmulator):
    """llrpkit's emulator, keeping every tag report it wrote to a live connection.

    ``_send`` is the emulator's one way out to the client (llrpkit 0.3); it is repeated here
    with one line added, so that a report counts as reported only when it was handed to an
    open transport — the same bytes the emulator sends, decoded by llrpkit's own codec.
    """

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.reported: list[tuple[str, int, int]] = []  # (EPC hex, first seen us, antenna)

    async def _send(self, msg: LLRPMessage, *, message_id: int = 0) -> None:
        writer = self._writer
        if writer is None:
            return
        async with self._send_lock:
            try:
                writer.write(msg.to_bytes(message_id=message_id))
                if isinstance(msg, messages.RO_ACCESS_REPORT) and not writer.is_closing():
                    for trd in msg.tag_report_datas:
                        self.reported.append((
                            trd.epc_parameter.epc.hex().upper(),
                            trd.first_seen_timestamp_utc.microseconds,
                            trd.antenna_id.antenna_id,
                        ))  # fmt: skip
                await writer.drain()
            except (ConnectionError, OSError):
                self._stop_reporting()


class Loop:
    """An asyncio loop on a thread of its own, for the emulator."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def call(self, fn: Callable[[], Any]) -> Any:
        async def call() -> Any:
            return fn()

        return self.run(call())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def loop() -> Iterator[Loop]:
    running = Loop()
    yield running
    running.close()


@pytest.mark.slow
def test_llrpkit_emulator_reads_stored_once_across_a_lost_connection(
    tmp_path: Path, db_url: str, mqtt_url: str, topic_prefix: str, loop: Loop
) -> None:
    emulator = RecordingEmulator(reads_per_sec=150.0, antenna_count=4, seed=3)
    loop.run(emulator.start())
    config = GatewayConfig.model_validate(
        {
            "gateway_id": f"gw-emu-{uuid.uuid4().hex[:6]}",
            "topic_prefix": topic_prefix,
            "broker": {"url": mqtt_url, "persistent_session": False},
            "batching": {"max_delay_s": 0.05},
            "clock": {"estimate": False},
            "spool": {"dir": str(tmp_path / "spool"), "confirm_timeout_s": 5},
            "llrp": [
                {"host": "127.0.0.1", "port": emulator.port, "reader_id": READER,
                 "antennas": [1, 2, 3, 4], "power_dbm": 27.0, "session": 1, "search_mode": 2,
                 "keepalive_s": 0.5, "dead_after_s": 3.0,
                 "reconnect_min_s": 0.1, "reconnect_max_s": 0.5}
            ],
        }
    )  # fmt: skip
    engine = EngineService(
        EngineConfig(
            database_url=db_url,
            mqtt_url=mqtt_url,
            topic_prefix=topic_prefix,
            client_id=f"engine-{topic_prefix}",
            persistent_session=False,
        )
    )
    engine.start()
    stop_engine, stop_gateway = threading.Event(), threading.Event()
    engine_thread = threading.Thread(target=engine.run, args=(stop_engine,))
    gateway = Gateway(config)
    gateway_thread = threading.Thread(target=gateway.run, args=(stop_gateway,))
    health = gateway.readers[READER]
    try:
        _wait(engine.connected.is_set, 20, "the engine's subscription")
        engine_thread.start()
        gateway.start()
        gateway_thread.start()
        # Connected, configured, reading: reads reach PostgreSQL.
        _wait(lambda: gateway.reads_confirmed >= 100, 30, "100 reads stored")
        assert emulator.keepalive_acks >= 1  # the gateway answers the emulator's keepalives
        # The reader goes away (reboot, cable): the gateway sees the connection end...
        loop.run(emulator.stop())
        _wait(lambda: not health.connected, 10, "the gateway noticing the lost connection")
        before = len(emulator.reported)
        time.sleep(0.5)  # ...and retries with backoff while nobody listens
        loop.run(emulator.start())  # same port (llrpkit kept the one it was given)
        # ...reconnects, configures the fresh reader again, and reads on.
        _wait(lambda: len(emulator.reported) >= before + 100, 30, "reads after the reconnect")
        # A clean stop of the reader: ROSpec stopped and deleted, connection closed.
        gateway.llrp[0].stop()
        assert not gateway.llrp[0]._thread.is_alive()
        assert loop.call(lambda: dict(emulator._rospecs)) == {}  # our ROSpec is gone
        assert loop.call(lambda: emulator._writer) is None  # and the connection closed
        reported = len(emulator.reported)
        _wait(lambda: gateway.reads_confirmed >= reported, 60, "every reported read stored")
    finally:
        stop_gateway.set()
        if gateway_thread.is_alive():
            gateway_thread.join(30)
        gateway.close()
        stop_engine.set()
        if engine_thread.is_alive():
            engine_thread.join(10)
        engine.flush()
        engine.close()
        loop.run(emulator.stop())
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT tag_id, (extract(epoch FROM read_at) * 1e6)::bigint, antenna FROM reads"
            " WHERE reader_id = %s",
            (READER,),
        ).fetchall()
    want = emulator.reported
    assert len(set(want)) == len(want)  # each report is one read of its own
    assert len(rows) == len(want)  # stored exactly once...
    assert set(rows) == set(want)  # ...each read the emulator reported
    resets = gateway.metrics.registry.get_sample_value(
        "tagtrail_gateway_reader_resets_total", {"reader": READER, "reason": "closed"}
    )
    assert resets == 1.0  # the one lost connection (and connect failures while it was down)
    assert health.transport["phase"] == "disconnected"
