"""GET /api/v1/bikes/{id}/next-readers: the road model given the way the bike came, blended with
where the fleet went from the same reader (and by the same way), each reader with its ETA window
(``eta_from`` to ``eta_to``) and what it rests on (``source``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
import pytest
from fastapi.testclient import TestClient
from scenarios import SPACING_M, line_city, registration
from theft_scenes import report_theft

from track_engine.db.writer import PartitionKeeper, store_passages
from track_engine.passages import PASSAGE_COLUMNS

US = 1_000_000


def _store(url: str, t0: datetime, *visits: tuple[str, str, float]) -> None:
    """Passages (tag, reader, seconds after ``t0``), 1 s either side of the closest approach."""
    t0_us = int(t0.timestamp() * US)
    closest = np.array([t0_us + round(s * US) for _, _, s in visits], dtype=np.int64)
    frame = pd.DataFrame(
        {
            "tag_id": [t for t, _, _ in visits], "reader_id": [r for _, r, _ in visits],
            "first_at_us": closest - US, "last_at_us": closest + US, "closest_at_us": closest,
            "peak_rssi_dbm": -50.0, "read_count": 10, "direction": "",
        }
    )[PASSAGE_COLUMNS]  # fmt: skip
    with psycopg.connect(url) as conn:
        store_passages(conn, frame, partitions=PartitionKeeper())


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def city(api_db: str) -> str:
    """R0 ... R5 on one road, 300 m apart."""
    line_city(api_db)
    return api_db


def test_next_readers_follow_the_heading_with_eta_windows(
    city: str, api_db: str, client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    made = client.post("/api/v1/bikes", json=registration(8401), headers=headers["registrar"])
    assert made.status_code == 201, made.text
    bike_id, tag_id = made.json()["bike_id"], registration(8401)["tag_id"]
    url = f"/api/v1/bikes/{bike_id}/next-readers"
    tip = {"reason": "checking a tip"}
    # Sightings after the tag's registration (a passage before it is not the bike's).
    now = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)

    # Seen at R1, then R2: no history yet, the road model alone. R1 is the way back.
    _store(api_db, now, (tag_id, "R1", 0), (tag_id, "R2", 70))
    answer = client.get(url, params=tip, headers=headers["officer"])
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert doc["last_seen"]["reader_id"] == "R2"
    first = doc["next_readers"][0]
    assert (first["reader_id"], first["source"]) == ("R3", "road")
    assert first["probability"] > 0.8
    seen_at = _at(doc["last_seen"]["at"])
    # The window is the 300 m at 10-32 km/h and 10 s either side, the ETA inside it.
    from_s, to_s = SPACING_M / (32 / 3.6) - 10, SPACING_M / (10 / 3.6) + 10
    assert abs((_at(first["eta_from"]) - seen_at).total_seconds() - from_s) < 1e-3
    assert abs((_at(first["eta_to"]) - seen_at).total_seconds() - to_s) < 1e-3
    assert _at(first["eta_from"]) < _at(first["eta"]) < _at(first["eta_to"])

    # Yesterday 14 tags came from R3 and went on to R1; 12 came from R1 and went on to R3,
    # 50-52 s after R2. The fleet alone says R1; the tags that came the bike's way say R3.
    day = now - timedelta(days=1)
    history: list[tuple[str, str, float]] = []
    for k in range(26):
        tag, start = f"E2801190000000000000{k:04d}", 600.0 * k
        came, to = ("R3", "R1") if k < 14 else ("R1", "R3")
        history += [(tag, came, start), (tag, "R2", start + 70), (tag, to, start + 120 + k % 3)]
    _store(api_db, day, *history)
    # A new sighting (the kept history is per sighting): the bike passes R1 and R2 again.
    _store(api_db, now, (tag_id, "R1", 200), (tag_id, "R2", 270))
    doc = client.get(url, params=tip, headers=headers["officer"]).json()
    first = doc["next_readers"][0]
    assert (first["reader_id"], first["source"]) == ("R3", "history")
    seen_at = _at(doc["last_seen"]["at"])
    travel = np.array([50.0 + k % 3 for k in range(14, 26)])
    p10, p50, p90 = np.quantile(travel, [0.1, 0.5, 0.9])
    assert first["travel_s"] == p50
    # Ridden 12 times (10 or more): the fleet's 10th-90th percentile x0.9 and x1.1, 10 s more.
    assert abs((_at(first["eta_from"]) - seen_at).total_seconds() - (p10 * 0.9 - 10)) < 1e-3
    assert abs((_at(first["eta_to"]) - seen_at).total_seconds() - (p90 * 1.1 + 10)) < 1e-3
    assert abs(sum(r["probability"] for r in doc["next_readers"]) - 1.0) < 1e-9


def test_a_stolen_bike_is_not_expected_to_ride_its_owner_s_way(
    city: str, api_db: str, client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    made = client.post("/api/v1/bikes", json=registration(8402), headers=headers["registrar"])
    assert made.status_code == 201, made.text
    bike_id, tag_id = made.json()["bike_id"], registration(8402)["tag_id"]
    with psycopg.connect(api_db) as conn:  # registered two days ago
        conn.execute(
            "UPDATE tag_bindings SET valid = tstzrange(now() - interval '2 days', NULL)"
            " WHERE tag_id = %s",
            (tag_id,),
        )
    url, tip = f"/api/v1/bikes/{bike_id}/next-readers", {"reason": "checking a tip"}
    now = datetime.now(UTC).replace(microsecond=0)
    # Yesterday the owner rode R1, R2 and back to R1, eight times: the bike's own habit.
    day = now - timedelta(days=1)
    habit: list[tuple[str, str, float]] = []
    for k in range(8):
        habit += [(tag_id, "R1", 600.0 * k), (tag_id, "R2", 600.0 * k + 70)]
        habit += [(tag_id, "R1", 600.0 * k + 140)]
    _store(api_db, day, *habit)

    # Half an hour ago, R1 then R2 again: the owner's habit says back to R1.
    _store(api_db, now - timedelta(minutes=30), (tag_id, "R1", 0), (tag_id, "R2", 70))
    owner = client.get(url, params=tip, headers=headers["officer"]).json()["next_readers"][0]
    assert (owner["reader_id"], owner["source"]) == ("R1", "history")

    # Stolen 20 minutes ago; the thief rides R1 then R2: the owner's rides say nothing of
    # where the thief goes, so the road model's straight on, not the owner's way back.
    report_theft(client, headers, bike_id, now - timedelta(minutes=20))
    _store(api_db, now - timedelta(minutes=10), (tag_id, "R1", 0), (tag_id, "R2", 70))
    doc = client.get(url, params=tip, headers=headers["officer"]).json()
    assert doc["last_seen"]["reader_id"] == "R2"
    assert doc["next_readers"][0]["reader_id"] == "R3"
