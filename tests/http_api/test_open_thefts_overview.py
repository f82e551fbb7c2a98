"""The duty desk's overview map through the API on the real PostgreSQL: every open theft with
its bike's last sighting (reader, position, time, from the real engine), or none when the bike
was not seen yet; only the duty desk's roles may look, with grounds, and each look is audited
with what it showed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from scenarios import line_city, registration
from theft_scenes import bind_tags_since, register, report_theft, ride

URL = "/api/v1/thefts/open/last-seen"
REASON = {"reason": "duty desk: overview of open thefts"}
CASE = "HZ-MAP-1"


def _stolen(
    api_db: str, client: TestClient, headers: dict[str, dict[str, str]], n: int
) -> dict[str, Any]:
    body = registration(n)
    bike_id = register(client, headers, body)
    now = datetime.now(UTC)
    bind_tags_since(api_db, bike_id, now - timedelta(hours=1))
    theft_id = report_theft(client, headers, bike_id, now - timedelta(minutes=30))
    return {"bike_id": bike_id, "theft_id": theft_id, **body}


@pytest.fixture(scope="module")
def scene(api_db: str, client: TestClient, headers: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Two open thefts: one under a case seen at R1 then R2, one never seen; and a recovered
    one (not open, not shown)."""
    line_city(api_db)
    seen = _stolen(api_db, client, headers, 901)
    confirmed = client.post(
        f"/api/v1/thefts/{seen['theft_id']}/confirm",
        json={"case_number": CASE},
        headers=headers["officer"],
    )
    assert confirmed.status_code == 200, confirmed.text
    ride(
        api_db, seen["tag_id"], datetime.now(UTC) - timedelta(minutes=10), ["R1", "R2"],
        gateway_id="gw-map", reads=6, rssi_fall_db=0.0,
    )  # fmt: skip
    unseen = _stolen(api_db, client, headers, 902)
    closed = _stolen(api_db, client, headers, 903)
    back = client.post(
        f"/api/v1/thefts/{closed['theft_id']}/recover", json={}, headers=headers["officer"]
    )
    assert back.status_code == 200, back.text
    return {"seen": seen, "unseen": unseen, "closed": closed}


def test_no_open_theft_is_an_empty_list(
    api_db: str, client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    """Runs before the scene (module order): no theft at all yet."""
    response = client.get(URL, params=REASON, headers=headers["officer"])
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []


def test_open_thefts_with_their_last_sighting(
    client: TestClient, headers: dict[str, dict[str, str]], scene: dict[str, Any], api_db: str
) -> None:
    for role in ("officer", "admin"):
        response = client.get(URL, params=REASON, headers=headers[role])
        assert response.status_code == 200, response.text
        items = {i["theft_id"]: i for i in response.json()["items"]}
        assert set(items) == {scene["seen"]["theft_id"], scene["unseen"]["theft_id"]}
        seen = items[scene["seen"]["theft_id"]]
        assert (seen["plate"], seen["case_number"], seen["status"]) == (
            scene["seen"]["plate"],
            CASE,
            "confirmed",
        )
        assert seen["last_seen"]["reader_id"] == "R2"
        with psycopg.connect(api_db) as conn:
            reader = conn.execute("SELECT lon, lat FROM readers WHERE reader_id = 'R2'").fetchone()
        assert reader is not None
        assert (seen["last_seen"]["lon"], seen["last_seen"]["lat"]) == pytest.approx(reader)
        unseen = items[scene["unseen"]["theft_id"]]
        assert (unseen["plate"], unseen["case_number"], unseen["last_seen"]) == (
            scene["unseen"]["plate"],
            None,
            None,
        )


def test_only_the_duty_desk_with_grounds(
    client: TestClient, headers: dict[str, dict[str, str]], scene: dict[str, Any]
) -> None:
    del scene
    for role in ("resident", "operator", "registrar", "auditor"):
        refused = client.get(URL, params=REASON, headers=headers[role])
        assert refused.status_code == 403, (role, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
    assert client.get(URL).status_code == 401
    bare = client.get(URL, headers=headers["officer"])
    assert bare.status_code == 400, bare.text
    assert bare.headers["content-type"] == "application/problem+json"
    assert client.get(URL, params={"case_number": CASE}, headers=headers["officer"]).is_success
    unknown = client.get(URL, params={"case_number": "HZ-NONE-1"}, headers=headers["officer"])
    assert unknown.status_code == 404, unknown.text


def test_each_look_is_audited_with_what_it_showed(
    client: TestClient, headers: dict[str, dict[str, str]], scene: dict[str, Any], api_db: str
) -> None:
    response = client.get(URL, params=REASON, headers=headers["admin"])
    assert response.status_code == 200, response.text
    with psycopg.connect(api_db) as conn:
        row = conn.execute(
            """SELECT actor, role, reason, detail FROM audit_log
               WHERE action = 'thefts.last_seen' ORDER BY audit_id DESC LIMIT 1"""
        ).fetchone()
    assert row is not None
    actor, role, reason, detail = row
    assert (actor, role, reason) == ("the-admin", "admin", REASON["reason"])
    assert sorted(detail["theft_ids"]) == sorted(
        [scene["seen"]["theft_id"], scene["unseen"]["theft_id"]]
    )
    assert detail["bike_ids"] == sorted([scene["seen"]["bike_id"], scene["unseen"]["bike_id"]])
    assert detail["seen"] == 1
