"""Reads from a reader that is not in the deployment registry are held apart, through the
real engine on the real PostgreSQL: stored in their own table, counted (the engine's metric),
shown to operators, and never a bike's position, last seen, passage or alert -- even for a
stolen bike, and even when the unknown reader heard it last. A redelivered batch adds nothing;
a reader imported later is tracked from its next read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from scenarios import line_city, registration
from theft_scenes import bind_tags_since, register, report_theft

from reader_gateway.wire import ReadBatch, batch_from_columns
from track_engine.metrics import EngineMetrics
from track_engine.pipeline import Engine
from track_engine.unknown_readers import UnknownReaders

ROGUE = "R-ROGUE"
REASON = {"reason": "checking a rogue reader"}


def _batch(tag_id: str, visits: list[tuple[str, datetime]], seq: int) -> ReadBatch:
    """Six reads a visit, 200 ms apart."""
    readers, times = [], []
    for reader, at in visits:
        t0 = int(at.timestamp() * 1e6)
        readers += [reader] * 6
        times += [t0 + i * 200_000 for i in range(6)]
    return batch_from_columns(
        gateway_id="gw-unknown", batch_seq=seq, sent_at_us=times[-1], reader_ids=readers,
        antenna=[1] * len(readers), tag=[tag_id] * len(readers),
        rssi_dbm=[-60.0] * len(readers), read_at_us=times, seq=list(range(len(readers))),
    )  # fmt: skip


@pytest.fixture(scope="module")
def scene(api_db: str, client: TestClient, headers: dict[str, dict[str, str]]) -> dict[str, Any]:
    """A stolen bike heard at R1, then (later) by a reader nobody registered."""
    line_city(api_db)
    body = registration(951)
    bike_id = register(client, headers, body)
    now = datetime.now(UTC)
    bind_tags_since(api_db, bike_id, now - timedelta(hours=1))
    report_theft(client, headers, bike_id, now - timedelta(minutes=30))
    metrics = EngineMetrics()
    batch = _batch(
        body["tag_id"], [("R1", now - timedelta(minutes=6)), (ROGUE, now - timedelta(minutes=3))], 1
    )
    with psycopg.connect(api_db) as conn:
        engine = Engine(conn, gap_s=5.0)
        engine.unknown_readers.on_held = metrics.reads_unknown_reader.inc  # as the service does
        first = engine.process([batch])
        engine.process([batch])  # redelivered: nothing new anywhere
        engine.flush()
    return {"bike_id": bike_id, "tag_id": body["tag_id"], "metrics": metrics, "first": first}


def test_an_unknown_readers_reads_are_held_apart(
    api_db: str, client: TestClient, headers: dict[str, dict[str, str]], scene: dict[str, Any]
) -> None:
    assert scene["first"].reads_received == 6  # R1's; the rogue's were taken out before
    assert [a.reader_id for a in scene["first"].alerts] == ["R1"]
    with psycopg.connect(api_db) as conn:
        tracked = conn.execute(
            """SELECT (SELECT count(*) FROM reads WHERE reader_id = %(r)s),
                      (SELECT count(*) FROM passages WHERE reader_id = %(r)s),
                      (SELECT count(*) FROM alerts WHERE reader_id = %(r)s),
                      (SELECT count(*) FROM reads WHERE reader_id = 'R1')""",
            {"r": ROGUE},
        ).fetchone()
        held = conn.execute(
            "SELECT reader_id, tag_id, gateway_id, count(*) FROM unknown_reader_reads"
            " GROUP BY 1, 2, 3"
        ).fetchall()
    assert tracked == (0, 0, 0, 6)
    assert held == [(ROGUE, scene["tag_id"], "gw-unknown", 6)]  # once, though sent twice
    # Counted: the engine's metric saw the six (the redelivery held none new).
    metric = scene["metrics"].registry.get_sample_value(
        "tagtrail_engine_reads_unknown_reader_total"
    )
    assert metric == 6
    # Never the bike's last seen, though it heard the bike last.
    seen = client.get(
        f"/api/v1/bikes/{scene['bike_id']}/last-seen", params=REASON, headers=headers["officer"]
    )
    assert seen.status_code == 200, seen.text
    assert seen.json()["reader_id"] == "R1"
    assert ROGUE not in seen.text


def test_operators_see_unknown_readers(
    client: TestClient, headers: dict[str, dict[str, str]], scene: dict[str, Any]
) -> None:
    page = client.get("/api/v1/unknown-readers", headers=headers["operator"])
    assert page.status_code == 200, page.text
    [rogue] = page.json()["items"]
    assert (rogue["reader_id"], rogue["reads"], rogue["tags"], rogue["gateway_ids"]) == (
        ROGUE, 6, 1, ["gw-unknown"],
    )  # fmt: skip
    assert rogue["registered"] is False
    assert scene["tag_id"] not in page.text  # counts, never tags
    for role in ("registrar", "resident", "auditor"):
        refused = client.get("/api/v1/unknown-readers", headers=headers[role])
        assert refused.status_code == 403, (role, refused.text)


def test_a_reader_imported_later_is_tracked_from_its_next_read(
    api_db: str, client: TestClient, headers: dict[str, dict[str, str]], scene: dict[str, Any]
) -> None:
    imported = client.post(
        "/api/v1/readers/import",
        json=[{"reader_id": ROGUE, "protocol": "r2000", "lon": 120.001, "lat": 30.0}],
        headers=headers["admin"],
    )
    assert imported.status_code == 200, imported.text
    with psycopg.connect(api_db) as conn:
        engine = Engine(conn, gap_s=5.0)
        # An engine that started before the import looks again for an id it does not know.
        engine.unknown_readers = UnknownReaders(reload_s=0.0)
        engine.unknown_readers.known = frozenset({"R1"})
        at = datetime.now(UTC) - timedelta(minutes=1)
        result = engine.process([_batch(scene["tag_id"], [(ROGUE, at)], 2)])
        engine.flush()
        stored = conn.execute("SELECT count(*) FROM reads WHERE reader_id = %s", (ROGUE,))
        assert stored.fetchone() == (6,)
    assert result.reads_received == 6
    page = client.get("/api/v1/unknown-readers", headers=headers["operator"]).json()
    assert [(r["reader_id"], r["reads"], r["registered"]) for r in page["items"]] == [
        (ROGUE, 6, True)
    ]
