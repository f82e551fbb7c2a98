"""GET /api/v1/bikes/{id}/where-now: officers only, audited like last seen, 404 for a bike never
seen, and a 90% region around the last sighting that is smaller than the reach circle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from api_helpers import add_user, login
from fastapi.testclient import TestClient
from scenarios import line_city, registration
from theft_scenes import ride


def _ride(url: str, tag_id: str, start: datetime, readers: list[str]) -> None:
    """The bike passes ``readers`` 70 s apart (2 s of reads each) through the real engine."""
    ride(url, tag_id, start, readers, gateway_id="gw-where-now")


def _audited(url: str, action: str) -> list[tuple[str, str, str | None]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT actor, subject, case_number FROM audit_log WHERE action = %s ORDER BY 1",
            (action,),
        ).fetchall()


def test_where_now_roles_audit_and_answer(
    api_db: str, client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    line_city(api_db)
    made = client.post("/api/v1/bikes", json=registration(8301), headers=headers["registrar"])
    assert made.status_code == 201, made.text
    bike_id, tag_id = made.json()["bike_id"], registration(8301)["tag_id"]
    officer = headers["officer"]
    tip = {"reason": "checking a tip"}
    url = f"/api/v1/bikes/{bike_id}/where-now"

    # Never seen: 404, and the miss is on record.
    never = client.get(url, params=tip, headers=officer)
    assert never.status_code == 404, never.text
    assert len(_audited(api_db, "bike.where_now")) == 1

    ride_start = datetime.now(UTC) + timedelta(seconds=2)
    _ride(api_db, tag_id, ride_start, ["R0", "R1", "R2", "R3"])
    seen = client.get(f"/api/v1/bikes/{bike_id}/last-seen", params=tip, headers=officer).json()
    last_at = datetime.fromisoformat(seen["at"].replace("Z", "+00:00"))

    at = last_at + timedelta(minutes=5)
    answer = client.get(url, params={**tip, "at": at.isoformat()}, headers=officer)
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert doc["last_seen"]["reader_id"] == "R3"
    assert doc["elapsed_s"] == 300.0
    assert abs(doc["reach_radius_m"] - 32 / 3.6 * 300) < 0.5
    cells = doc["region"]["features"]
    assert cells
    held = sum(c["properties"]["probability"] for c in cells)
    assert 0.9 <= held <= 1.0 + 1e-6
    assert 0 < doc["area_km2"] < doc["reach_area_km2"]
    assert doc["silent_readers"] == 5  # every reader but the sighting's own
    assert len(_audited(api_db, "bike.where_now")) == 2

    # Later, the reach is three times as far (the region cannot grow much: the line's ends).
    later = client.get(
        url, params={**tip, "at": (last_at + timedelta(minutes=15)).isoformat()}, headers=officer
    )
    assert later.status_code == 200, later.text
    assert abs(later.json()["reach_radius_m"] - 3 * doc["reach_radius_m"]) < 1

    # Bad times: a clear 400; no grounds: 400; other roles: 403; no token: 401.
    before = client.get(url, params={**tip, "at": (last_at - timedelta(minutes=1)).isoformat()},
                        headers=officer)  # fmt: skip
    assert before.status_code == 400, before.text
    assert before.headers["content-type"] == "application/problem+json"
    zoneless = client.get(url, params={**tip, "at": "2026-11-29T06:00:00"}, headers=officer)
    assert zoneless.status_code == 400, zoneless.text
    assert client.get(url, headers=officer).status_code == 400
    add_user(api_db, "wn-resident", "resident")
    resident = login(client, "wn-resident")
    assert client.get(url, params=tip, headers=resident).status_code == 403
    assert client.get(url, params=tip, headers=headers["registrar"]).status_code == 403
    assert client.get(url, params=tip).status_code == 401
    assert [a for a, _, _ in _audited(api_db, "bike.where_now")] == [
        "the-officer"
    ] * 3  # refused requests are not audited
