"""The whole pipeline over LLRP: simulated fixed readers serve their reads on loopback TCP,
the gateway connects to each as an LLRP client, publishes to Mosquitto, the engine stores in
PostgreSQL — every simulated read once."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from reader_gateway.config import GatewayConfig
from reader_gateway.orchestrator.gateway import Gateway
from simulators.emit import reader_messages
from simulators.llrp_readers import LlrpReaderServers
from simulators.ptys import paced
from simulators.scenario import SimOptions, run
from track_engine.consumer.config import EngineConfig
from track_engine.consumer.service import EngineService

START = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_simulated_llrp_readers_to_postgres_every_read_once(
    tmp_path: Path, db_url: str, mqtt_url: str, topic_prefix: str
) -> None:
    sim = run(SimOptions(seed=5, bikes=60, hours=0.25, size_m=1500, coverage=0.25,
                         protocol_mix={"llrp": 1.0}, active_fraction=0.0, thefts=0, clones=0,
                         start=START))  # fmt: skip
    protocols = {r.reader_id: r.protocol for r in sim.readers}
    messages = list(reader_messages(sim.reads, protocols, seed=1))
    readers = sorted({m.reader_id for m in messages})
    assert len(readers) >= 3, "a scenario with several LLRP readers"
    assert len(messages) >= 200, "a scenario with some LLRP traffic"
    servers = LlrpReaderServers(readers)
    config = GatewayConfig.model_validate(
        {
            "gateway_id": f"gw-llrp-{uuid.uuid4().hex[:6]}",
            "topic_prefix": topic_prefix,
            "broker": {"url": mqtt_url, "persistent_session": False},
            "batching": {"max_delay_s": 0.05},
            # Simulated reads are dated 2025 and the readers keep NTP time.
            "clock": {"estimate": False, "max_read_age_s": 3000 * 86_400.0},
            "spool": {"dir": str(tmp_path / "spool"), "confirm_timeout_s": 5},
            "llrp": [
                {"host": host, "port": port, "reader_id": rid, "keepalive_s": 2,
                 "dead_after_s": 30, "power_dbm": 30, "session": 1}
                for rid, (host, port) in servers.endpoints.items()
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
            read_max_age_s=None,
        )
    )
    engine.start()
    stop_engine, stop_gateway = threading.Event(), threading.Event()
    engine_thread = threading.Thread(target=engine.run, args=(stop_engine,))
    gateway = Gateway(config)
    gateway_thread = threading.Thread(target=gateway.run, args=(stop_gateway,))
    try:
        _wait(engine.connected.is_set, 20, "the engine's subscription")
        engine_thread.start()
        gateway.start()
        gateway_thread.start()
        sent = paced(messages, servers.write, stop=threading.Event(), speedup=None,
                     sim_start_us=0)  # fmt: skip
        assert sent == len(messages)
        assert sum(servers.sent(r) for r in readers) == len(messages)
        _wait(lambda: gateway.reads_confirmed >= len(messages), 60, "every read confirmed stored")
    finally:
        stop_gateway.set()
        if gateway_thread.is_alive():
            gateway_thread.join(30)
        gateway.close()
        servers.close()
        stop_engine.set()
        if engine_thread.is_alive():
            engine_thread.join(10)
        engine.flush()
        engine.close()
    reads = sim.reads
    want = set(
        zip(
            reads["tag_id"].astype(str),
            reads["read_at_us"].astype("int64"),
            reads["reader_id"].astype(str),
            reads["antenna"].astype("int64"),
            strict=True,
        )
    )
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT tag_id, (extract(epoch FROM read_at) * 1e6)::bigint, reader_id, antenna"
            " FROM reads"
        ).fetchall()
    assert len(rows) == len(set(rows))
    assert set(rows) == want
    # Every reader's session was set up once and stopped cleanly (no reset).
    assert all(servers.connections(r) == 1 for r in readers)
    resets = [
        sample
        for metric in gateway.metrics.registry.collect()
        for sample in metric.samples
        if sample.name == "tagtrail_gateway_reader_resets_total"
    ]
    assert resets == []
