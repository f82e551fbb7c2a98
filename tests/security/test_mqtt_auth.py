"""TagTrail's own MQTT clients authenticate and use TLS, against the secured Mosquitto.

A reader (the simulator's ``MqttEmitter``) publishes as ``R0001`` on its own raw topic; the
gateway, logged in as ``gw-1``, turns it into batches; the engine, logged in as ``engine-0``
over the TLS listener (``mqtts://`` with the test CA), stores them. Credentials and TLS all
come from the MQTT URL (``reader_gateway.brokers.mqtt_target``). A wrong password is refused
loudly, and no password ever reaches a log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from broker_helpers import ACCOUNTS, PREFIX, SecuredBroker, secured_mosquitto
from gw_helpers import wait_until

from reader_gateway.brokers import mqtt_target
from reader_gateway.config import GatewayConfig
from reader_gateway.orchestrator.gateway import Gateway
from reader_gateway.protocols import tagtrail_active
from reader_gateway.wire import WireError
from simulators.emit import MqttEmitter, ReaderMessage
from track_engine.consumer.config import EngineConfig
from track_engine.consumer.service import EngineService


@pytest.fixture(scope="module")
def broker() -> Iterator[SecuredBroker]:
    with secured_mosquitto() as secured:
        yield secured


def test_mqtt_urls_carry_credentials_and_tls_settings() -> None:
    plain = mqtt_target("mqtt://gw-1:s%40cret%3A1@broker:1884")
    assert (plain.host, plain.port, plain.username, plain.password, plain.tls) == (
        "broker", 1884, "gw-1", "s@cret:1", False,
    )  # fmt: skip
    tls = mqtt_target("mqtts://engine-0:pw@broker?ca=/etc/ca.pem&cert=/c.pem&key=/k.pem")
    assert (tls.port, tls.tls, tls.ca_file, tls.cert_file, tls.key_file) == (
        8883, True, "/etc/ca.pem", "/c.pem", "/k.pem",
    )  # fmt: skip
    assert mqtt_target("mqtt://broker").username is None
    assert "pw" not in repr(tls)
    assert "pw" not in tls.redacted_url()
    for bad in ("mqtt://u:pw@broker?ca=/x", "http://u:pw@broker", "mqtts://u:pw@broker?cafile=x"):
        with pytest.raises(WireError) as error:
            mqtt_target(bad)
        assert "pw" not in str(error.value)


def _frames(n: int) -> bytes:
    now = datetime.now(UTC)
    return b"".join(
        tagtrail_active.encode_frame(
            reader_id=1,
            reader_seq=i,
            read_at=now + timedelta(milliseconds=i),
            tag_id=f"{0xE000000000000000 + i:016X}",
            rssi_dbm=-60,
        )
        for i in range(n)
    )


def test_reader_gateway_and_engine_log_in_and_engine_uses_tls(
    broker: SecuredBroker, db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    engine = EngineService(
        EngineConfig(
            database_url=db_url, mqtt_url=broker.url("engine-0", tls=True), topic_prefix=PREFIX,
            client_id="tagtrail-engine-auth", persistent_session=False, gap_s=2.0,
        )
    )  # fmt: skip
    gateway = Gateway(
        GatewayConfig.model_validate(
            {
                "gateway_id": "gw-1",
                "topic_prefix": PREFIX,
                "broker": {"url": broker.url("gw-1"), "persistent_session": False},
                "batching": {"max_reads": 50, "max_delay_s": 0.05},
                "clock": {"estimate": False},
                "spool": {"dir": str(tmp_path / "spool")},
                "mqtt": [{"topic": f"{PREFIX}/raw/+/+"}],
                # R0001's active-tag receiver writes its device id 1 into its frames.
                "reader_aliases": {"AT-00000001": "R0001"},
            }
        )
    )
    stop = threading.Event()
    workers = [
        threading.Thread(target=engine.run, args=(stop,)),
        threading.Thread(target=gateway.run, args=(stop,)),
    ]
    emitter: MqttEmitter | None = None
    try:
        engine.start()
        gateway.start()
        for worker in workers:
            worker.start()
        assert engine.connected.wait(10), "the engine never got its SUBACK over TLS"
        assert gateway.connected.wait(10), "the gateway never got its SUBACK"
        emitter = MqttEmitter(broker.url("R0001"), topic_prefix=PREFIX, client_id="reader-auth")
        emitter.publish(ReaderMessage("tagtrail-active", "R0001", _frames(40), 0))
        assert emitter.drain(10)
        wait_until(lambda: engine.counters.reads_stored >= 40, 20, "the reads stored")
    finally:
        stop.set()
        for worker in workers:
            if worker.is_alive():
                worker.join(10)
        if emitter is not None:
            emitter._client.disconnect()
            emitter._client.loop_stop()
        gateway.close()
        engine.close()
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT reader_id, count(*) FROM reads GROUP BY reader_id")
        assert row.fetchall() == [("R0001", 40)]
    for secret in ACCOUNTS.values():
        assert secret not in caplog.text


def test_a_wrong_password_is_refused_loudly_and_never_logged(
    broker: SecuredBroker, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "not-the-engine-secret-42"
    engine = EngineService(
        EngineConfig(
            database_url=db_url, mqtt_url=broker.url("engine-0", password=wrong),
            topic_prefix=PREFIX, client_id="tagtrail-engine-wrong", persistent_session=False,
        )
    )  # fmt: skip
    try:
        with caplog.at_level(logging.ERROR, logger="track_engine.consumer"):
            engine.start()
            wait_until(lambda: "refused the connection" in caplog.text, 10, "the refusal log")
        assert not engine.connected.is_set()
    finally:
        engine.close()
    assert wrong not in caplog.text
