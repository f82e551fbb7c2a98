"""The stolen-bike scene many API and security tests start from: a bike registered through the
API (its tags bound from earlier, if need be), its theft reported and confirmed as a case, and
its tag heard by readers through the real engine."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from reader_gateway.wire import batch_from_columns
from track_engine.pipeline import Engine, ProcessResult

Headers = dict[str, dict[str, str]]


def register(client: TestClient, headers: Headers, body: dict[str, Any]) -> int:
    """Register ``body`` as the registrar (201); the bike's id."""
    bike = client.post("/api/v1/bikes", json=body, headers=headers["registrar"])
    assert bike.status_code == 201, bike.text
    return int(bike.json()["bike_id"])


def bind_tags_since(url: str, bike_id: int, since: datetime) -> None:
    """The bike's tag bindings hold from ``since`` (registration binds them from now), so that
    reads and a theft before the registration find the bike."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE tag_bindings SET valid = tstzrange(%s, NULL) WHERE bike_id = %s",
            (since, bike_id),
        )


def report_theft(
    client: TestClient,
    headers: Headers,
    bike_id: int,
    stolen_at: datetime,
    *,
    place: str | None = None,
    case_number: str | None = None,
    by: dict[str, str] | None = None,
) -> int:
    """Report the bike stolen at ``stolen_at`` (as ``by``, the officer by default: 201) and,
    with ``case_number``, confirm it as that case (as the officer: 200); the theft's id."""
    report: dict[str, Any] = {"bike_id": bike_id, "stolen_at": stolen_at.isoformat()}
    if place is not None:
        report["place"] = place
    theft = client.post("/api/v1/thefts", json=report, headers=by or headers["officer"])
    assert theft.status_code == 201, theft.text
    theft_id = int(theft.json()["theft_id"])
    if case_number is not None:
        confirmed = client.post(
            f"/api/v1/thefts/{theft_id}/confirm",
            json={"case_number": case_number},
            headers=headers["officer"],
        )
        assert confirmed.status_code == 200, confirmed.text
    return theft_id


def ride(
    url: str,
    tag_id: str,
    start: datetime,
    readers: list[str],
    *,
    gateway_id: str,
    batch_seq: int = 1,
    reads: int = 11,
    rssi_fall_db: float = 2.0,
) -> ProcessResult:
    """The bike passes ``readers`` 70 s apart, ``reads`` reads 200 ms apart at each, loudest
    (-60 dBm) at the middle read and ``rssi_fall_db`` weaker a read away from it, in one batch
    through the real engine (reads, alerts, passages); what the engine made of it."""
    reader_ids, read_at_us, rssi = [], [], []
    t0_us = int(start.timestamp() * 1e6)
    for k, reader in enumerate(readers):
        for i in range(reads):
            reader_ids.append(reader)
            read_at_us.append(t0_us + k * 70_000_000 + i * 200_000)
            rssi.append(-60.0 - abs(i - reads // 2) * rssi_fall_db)
    batch = batch_from_columns(
        gateway_id=gateway_id,
        batch_seq=batch_seq,
        sent_at_us=read_at_us[-1],
        reader_ids=reader_ids,
        antenna=[1] * len(reader_ids),
        tag=[tag_id] * len(reader_ids),
        rssi_dbm=rssi,
        read_at_us=read_at_us,
        seq=list(range(len(reader_ids))),
    )
    with psycopg.connect(url) as conn:
        engine = Engine(conn, gap_s=5.0)
        result = engine.process([batch])
        engine.flush()
    return result
