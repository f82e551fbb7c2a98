"""Tagging events, registration with its conflicts and stolen matches, re-tagging, owner
change, deregistration, the slip, search, and the residents' rule."""

from __future__ import annotations

import psycopg
from api_helpers import add_user, login
from fastapi.testclient import TestClient
from scenarios import registration

H = dict[str, dict[str, str]]


def test_event_booking_check_in_and_registration_links_the_resident(
    api_db: str, client: TestClient, headers: H
) -> None:
    event = client.post(
        "/api/v1/events",
        json={
            "name": "Tag day",
            "place": "North gate",
            "starts_at": "2030-01-01T01:00:00Z",
            "ends_at": "2030-01-01T09:00:00Z",
            "capacity": 1,
        },
        headers=headers["registrar"],
    )
    assert event.status_code == 201, event.text
    event_id = event.json()["event_id"]
    add_user(api_db, "resident-a", "resident")
    resident = login(client, "resident-a")
    booking = client.post(f"/api/v1/events/{event_id}/bookings", headers=resident)
    assert booking.status_code == 201, booking.text
    full = client.post(f"/api/v1/events/{event_id}/bookings", headers=headers["resident"])
    assert full.status_code == 409
    assert "fully booked" in full.json()["detail"]
    booking_id = booking.json()["booking_id"]
    listed = client.get(f"/api/v1/events/{event_id}/bookings", headers=headers["registrar"])
    assert listed.json()["total"] == 1

    body = registration(1, event_id=event_id, booking_id=booking_id)
    created = client.post("/api/v1/bikes", json=body, headers=headers["registrar"])
    assert created.status_code == 201, created.text
    bike = created.json()
    assert bike["owner"]["id_number"] == "*" * 14 + body["owner"]["id_number"][-4:]
    assert "*" in bike["owner"]["phone"]
    assert bike["tags"][0]["tag_id"] == body["tag_id"]
    with psycopg.connect(api_db) as conn:
        row = conn.execute(
            "SELECT id_number_enc, checked_in_at FROM owners, event_bookings "
            "WHERE owner_id = (SELECT owner_id FROM bikes WHERE bike_id = %s) "
            "AND booking_id = %s",
            (bike["bike_id"], booking_id),
        ).fetchone()
    assert row is not None
    assert row[0] is not None
    assert row[1] is not None
    assert body["owner"]["id_number"].encode() not in row[0]

    mine = client.get("/api/v1/bikes/mine", headers=resident)
    assert [b["bike_id"] for b in mine.json()] == [bike["bike_id"]]
    slip = client.get(f"/api/v1/bikes/{bike['bike_id']}/slip", headers=resident)
    assert slip.status_code == 200
    assert "registration slip" in slip.text
    assert body["tag_id"] in slip.text
    # Another resident cannot reach it by any id.
    for path in (f"/api/v1/bikes/{bike['bike_id']}", f"/api/v1/bikes/{bike['bike_id']}/slip"):
        assert client.get(path, headers=headers["resident"]).status_code == 404


def test_conflicts_are_clear_409s(client: TestClient, headers: H) -> None:
    first = client.post("/api/v1/bikes", json=registration(10), headers=headers["registrar"])
    assert first.status_code == 201, first.text
    cases = [
        (registration(11, tag_id=registration(10)["tag_id"]), "tag-bound", "already bound"),
        (registration(12, plate="浙b 00010"), "plate-taken", "plate is taken"),
        (registration(13, frame_number="LYD2O24AOOOOO1O"), "frame-registered", "frame number"),
    ]
    for body, code, message in cases:
        response = client.post("/api/v1/bikes", json=body, headers=headers["registrar"])
        assert response.status_code == 409, response.text
        assert response.json()["type"].endswith(code)
        assert message in response.json()["detail"]


def test_invalid_id_number_is_422_with_a_message(client: TestClient, headers: H) -> None:
    body = registration(20)
    body["owner"]["id_number"] = "110101199003074259"
    response = client.post("/api/v1/bikes", json=body, headers=headers["registrar"])
    assert response.status_code == 422
    assert "check character" in response.json()["detail"]


def test_search_normalizes_plates_and_tolerates_frame_look_alikes(
    client: TestClient, headers: H
) -> None:
    client.post("/api/v1/bikes", json=registration(30), headers=headers["registrar"])
    by_plate = client.get(
        "/api/v1/bikes",
        params={"plate": "ｚｂ－00030".replace("ｚ", "浙")},
        headers=headers["officer"],
    )
    assert by_plate.status_code == 200, by_plate.text
    by_frame = client.get(
        "/api/v1/bikes", params={"frame_number": "lyd2o24a 0000030"}, headers=headers["officer"]
    )
    assert by_frame.status_code == 200, by_frame.text
    assert by_frame.json()["bike_id"] == by_plate.json()["bike_id"]


def test_retag_owner_change_and_deregistration(api_db: str, client: TestClient, headers: H) -> None:
    bike = client.post("/api/v1/bikes", json=registration(40), headers=headers["registrar"]).json()
    bike_id = bike["bike_id"]
    retagged = client.post(
        f"/api/v1/bikes/{bike_id}/retag",
        json={"tag_id": "e28011a1ffff0040"},
        headers=headers["registrar"],
    )
    assert retagged.status_code == 200, retagged.text
    tags = retagged.json()["tags"]
    assert [t["tag_id"] for t in tags] == [bike["tags"][0]["tag_id"], "E28011A1FFFF0040"]
    assert tags[0]["valid_to"] is not None
    assert tags[1]["valid_to"] is None
    new_owner = registration(41)["owner"]
    changed = client.post(
        f"/api/v1/bikes/{bike_id}/owner", json={"owner": new_owner}, headers=headers["admin"]
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["owner"]["name"] == "Owner 41"
    gone = client.post(f"/api/v1/bikes/{bike_id}/deregister", headers=headers["registrar"])
    assert gone.status_code == 200
    again = client.post(f"/api/v1/bikes/{bike_id}/deregister", headers=headers["registrar"])
    assert again.status_code == 409
    # Plate, frame and tag are free again.
    reuse = registration(40, tag_id="E28011A1FFFF0040")
    assert client.post("/api/v1/bikes", json=reuse, headers=headers["registrar"]).status_code == 201
    with psycopg.connect(api_db) as conn:
        actions = {
            r[0]
            for r in conn.execute("SELECT action FROM audit_log WHERE bike_id = %s", (bike_id,))
        }
    assert {"bike.register", "bike.retag", "bike.owner_change", "bike.deregister"} <= actions
