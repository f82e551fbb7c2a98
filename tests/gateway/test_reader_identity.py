"""A reader's identity is the one its transport proves, never a name written in its message.

Over the real Mosquitto, reader R0001 publishes on its own raw topics (the only ones the broker
ACL lets it publish on) messages that name other readers: an Impinj ``hostname``, a Zebra
``hostName``, active-tag frames with another reader's id. Before the fix the gateway filed
those reads under the named reader (R0002, an unregistered ``POLICE-HQ-GATE``): one reader's
password forged sightings anywhere. Now they are refused as ``reader_id_mismatch``, counted
and logged with the message bytes, and only R0001's own reads go out, under R0001. A serial
port is bound to its configured reader the same way.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gw_helpers import (
    PtyReader,
    RunningGateway,
    active_frames,
    raw_gateway_config,
    spool_only_config,
    wait_until,
)

from reader_gateway.orchestrator.gateway import Gateway
from reader_gateway.orchestrator.records import decode_record
from reader_gateway.protocols import tagtrail_active
from reader_gateway.protocols.impinj_iot import encode_tag_inventory_event
from reader_gateway.protocols.zebra_iotc import encode_tag_data_event
from reader_gateway.wire import decode_batch


@pytest.fixture
def running(tmp_path: Path, mqtt_url: str, topic_prefix: str) -> Iterator[RunningGateway]:
    run = RunningGateway(raw_gateway_config(tmp_path, mqtt_url, topic_prefix), mqtt_url)
    yield run
    run.close()


def _tag(group: int, i: int) -> str:
    return f"E2{group:02X}{i:020X}"


def test_reader_r0001_cannot_file_reads_under_another_reader_by_naming_it(
    running: RunningGateway, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    now = datetime.now(UTC) - timedelta(seconds=5)
    raw = f"{topic_prefix}/raw"

    def impinj(group: int, hostname: str) -> list[bytes]:
        return [
            encode_tag_inventory_event(
                hostname=hostname, tag_id=_tag(group, i), antenna=1, rssi_dbm=-60,
                read_at=now + timedelta(milliseconds=i),
            )
            for i in range(5)
        ]  # fmt: skip

    forged_zebra = [
        encode_tag_data_event(
            tag_id=_tag(3, i), antenna=1, rssi_dbm=-60, read_at=now + timedelta(milliseconds=i),
            event_num=i, hostname="R0002",
        )
        for i in range(5)
    ]  # fmt: skip

    def active(group: int, device: int) -> list[bytes]:
        return [
            tagtrail_active.encode_frame(
                reader_id=device, reader_seq=i, read_at=now + timedelta(milliseconds=i),
                tag_id=f"{group:02X}{i:014X}", rssi_dbm=-60,
            )
            for i in range(5)
        ]  # fmt: skip

    # Forged: every message below came from R0001's own topics but names another reader.
    running.publish(f"{raw}/impinj-iot/R0001", impinj(1, "R0002"))
    running.publish(f"{raw}/impinj-iot/R0001", impinj(2, "POLICE-HQ-GATE"))
    running.publish(f"{raw}/zebra-iotc/R0001", forged_zebra)
    running.publish(f"{raw}/tagtrail-active/R0001", [b"".join(active(4, device=2))])
    # Honest: R0001 naming itself (by its account name, or by its device id's alias).
    running.publish(f"{raw}/impinj-iot/R0001", impinj(5, "R0001"))
    running.publish(f"{raw}/tagtrail-active/R0001", [b"".join(active(6, device=1))])

    gateway = running.gateway
    assert gateway.wait_until(lambda: gateway.messages_in == 22, 10), gateway.messages_in
    wait_until(lambda: len(running.collector.natural_keys()) >= 10, 10, "R0001's own reads")
    assert gateway.wait_until(gateway.idle, 10)  # every message handled and acknowledged
    keys = running.collector.natural_keys()
    assert {k[0] for k in keys} == {"R0001"}
    assert sorted(k[1] for k in keys) == sorted(
        [_tag(5, i) for i in range(5)] + [f"06{i:014X}" for i in range(5)]
    )
    assert set(gateway.readers) == {"R0001"}  # no health entry for a named reader either
    assert gateway.readers["R0001"].rejects["reader_id_mismatch"] == 20
    assert running.rejects("R0001", "reader_id_mismatch") == 20
    assert gateway.readers["R0001"].duplicates == 0
    # Every forged message is in the quarantine with its bytes, as evidence.
    quarantined = [e for e in gateway.quarantine.entries() if e["reason"] == "reader_id_mismatch"]
    assert sum(int(str(e["reads"])) for e in quarantined) == 20
    assert {e["reader_id"] for e in quarantined} == {"R0001"}
    claims = b"".join(base64.b64decode(str(e["raw_b64"])) for e in quarantined)
    assert b'"hostname":"POLICE-HQ-GATE"' in claims
    assert b'"hostName":"R0002"' in claims
    # The log line (one per reader and reason per 10 s) names what the first forged message
    # claimed and carries its bytes.
    assert "the message names reader 'R0002', but came from reader 'R0001'" in caplog.text
    assert b'"hostname":"R0002"'.hex() in caplog.text


def test_serial_frames_naming_another_reader_are_refused_not_stored(tmp_path: Path) -> None:
    reader = PtyReader(tmp_path / "by-id-active")
    config = spool_only_config(tmp_path, reader.link, gateway_id="gw-pty-id", max_delay_s=0.05)
    gateway = Gateway(config)
    stop = threading.Event()
    runner = threading.Thread(target=gateway.run, args=(stop,))
    try:
        gateway.start()
        runner.start()
        assert gateway.wait_until(lambda: gateway.readers["AT-00000007"].connected, 10)
        # The port is configured as AT-00000007: frames of device 8 on it are not its reads.
        reader.write(b"".join(active_frames(40, reader_id=8)))
        reader.write(b"".join(active_frames(25, start=40, reader_id=7)))
        health = gateway.readers["AT-00000007"]
        assert gateway.wait_until(
            lambda: gateway.reads_accepted + health.rejects["reader_id_mismatch"] == 65, 10
        ), (gateway.reads_accepted, health.rejects)
        assert gateway.reads_accepted == 25
        assert health.rejects["reader_id_mismatch"] == 40
        assert "AT-00000008" not in gateway.readers
    finally:
        stop.set()
        if runner.is_alive():
            runner.join(10)
        gateway.close()
        reader.close()


def test_a_serial_bus_files_each_reader_it_admits_under_its_own_name(tmp_path: Path) -> None:
    """An RS-485 bus carries several active readers' frames: ``frame_readers`` admits them (each
    read under the reader its frame names); a reader outside the patterns is still refused."""
    reader = PtyReader(tmp_path / "by-id-bus")
    base = spool_only_config(tmp_path, reader.link, gateway_id="gw-bus", max_delay_s=0.05)
    port = base.serial[0].model_copy(
        update={"reader_id": "BUS-1", "frame_readers": ["AT-0000000?"]}
    )
    gateway = Gateway(base.model_copy(update={"serial": [port]}))
    stop = threading.Event()
    runner = threading.Thread(target=gateway.run, args=(stop,))
    try:
        gateway.start()
        runner.start()
        assert gateway.wait_until(lambda: gateway.readers["BUS-1"].connected, 10)
        reader.write(b"".join(active_frames(20, reader_id=7)))
        reader.write(b"".join(active_frames(20, start=20, reader_id=9)))
        reader.write(b"".join(active_frames(15, start=40, reader_id=0x100)))  # AT-00000100
        health = gateway.readers["BUS-1"]
        assert gateway.wait_until(
            lambda: gateway.reads_accepted + health.rejects["reader_id_mismatch"] == 55, 10
        ), (gateway.reads_accepted, health.rejects)
        assert gateway.reads_accepted == 40
        assert health.rejects["reader_id_mismatch"] == 15
        stop.set()  # the gateway thread stops before this one reads its spool
        runner.join(10)
        spooled = gateway.spool.take_unsent(100)
        names = set()
        for record in spooled:
            names |= set(decode_batch(decode_record(record.payload)[2]).reader_ids().tolist())
        assert names == {"AT-00000007", "AT-00000009"}
    finally:
        stop.set()
        if runner.is_alive():
            runner.join(10)
        gateway.close()
        reader.close()
