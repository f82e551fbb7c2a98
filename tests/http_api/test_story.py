"""The whole story through the API: tagging event → registration → theft report → the bike
passes readers (wire batches through the engine) → the officer gets the route, the live
update and the next readers → the auditor sees every lookup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
from api_helpers import add_user, login
from fastapi.testclient import TestClient
from scenarios import line_city, registration
from theft_scenes import ride


def _ride(
    url: str, tag_id: str, start: datetime, readers: list[str], *, watched: bool = True
) -> None:
    """The bike passes ``readers`` 70 s apart; the engine stores reads, alerts, passages."""
    result = ride(url, tag_id, start, readers, gateway_id="gw-story", batch_seq=1 if watched else 2)
    assert bool(result.alerts) == watched, "only the stolen bike's reads raise alerts"


def _events(text: str) -> list[tuple[str, str, dict]]:
    out = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            out.append((fields["id"], fields["event"], orjson.loads(fields["data"])))
    return out


def test_event_to_audited_route(api_db: str, client: TestClient, headers: dict) -> None:
    line_city(api_db)
    now = datetime.now(UTC).replace(microsecond=0)
    event = client.post(
        "/api/v1/events",
        json={
            "name": "Story day",
            "place": "Gate",
            "capacity": 5,
            "starts_at": (now - timedelta(hours=3)).isoformat(),
            "ends_at": (now + timedelta(hours=3)).isoformat(),
        },
        headers=headers["registrar"],
    ).json()
    add_user(api_db, "story-resident", "resident")
    resident = login(client, "story-resident")
    booking = client.post(f"/api/v1/events/{event['event_id']}/bookings", headers=resident).json()
    body = registration(7000, event_id=event["event_id"], booking_id=booking["booking_id"])
    bike = client.post("/api/v1/bikes", json=body, headers=headers["registrar"])
    assert bike.status_code == 201, bike.text
    bike_id, tag_id = bike.json()["bike_id"], body["tag_id"]

    stolen_at = now - timedelta(minutes=30)
    theft = client.post(
        "/api/v1/thefts",
        json={"bike_id": bike_id, "stolen_at": stolen_at.isoformat(), "place": "Gate"},
        headers=resident,
    )
    assert theft.status_code == 201, theft.text
    confirmed = client.post(
        f"/api/v1/thefts/{theft.json()['theft_id']}/confirm",
        json={"case_number": "HZ-STORY-1"},
        headers=headers["officer"],
    )
    assert confirmed.json()["status"] == "confirmed"
    # The same frame presented again at the desk is flagged for the duty desk.
    again = client.post(
        "/api/v1/bikes",
        json=registration(7001, frame_number=body["frame_number"]),
        headers=headers["registrar"],
    )
    assert again.status_code == 409
    assert again.json()["type"].endswith("stolen-match")

    # A second bike rides beside it (the thief's own, say): registered before the ride.
    beside = registration(7002)
    assert (
        client.post("/api/v1/bikes", json=beside, headers=headers["registrar"]).status_code == 201
    )

    # The tag is bound from registration on, so the ride comes after it (a little ahead).
    ride_start = datetime.now(UTC) + timedelta(seconds=2)
    _ride(api_db, tag_id, ride_start, ["R0", "R1", "R2", "R3"])
    _ride(api_db, beside["tag_id"], ride_start + timedelta(seconds=1), ["R0", "R1", "R2", "R3"],
          watched=False)  # fmt: skip

    officer = headers["officer"]
    case = {"case_number": "HZ-STORY-1"}
    window = {"until": (ride_start + timedelta(minutes=10)).isoformat()}
    route = client.get(
        f"/api/v1/routes/{body['plate']}", params={**case, **window}, headers=officer
    )
    assert route.status_code == 200, route.text
    passages = route.json()["properties"]["passages"]
    assert [p["reader_id"] for p in passages] == ["R0", "R1", "R2", "R3"]
    for fmt, marker in (("gpx", "<trkpt"), ("kml", "<gx:Track>"), ("csv", "passage,")):
        export = client.get(
            f"/api/v1/routes/{body['plate']}/export",
            params={**case, **window, "format": fmt},
            headers=officer,
        )
        assert export.status_code == 200, export.text
        assert marker in export.text

    live = client.get(
        f"/api/v1/live/bikes/{bike_id}",
        params={**case, "since": stolen_at.isoformat(), "max_events": 8},
        headers=officer,
    )
    assert live.status_code == 200, live.text
    events = _events(live.text)
    assert [e[1] for e in events].count("passage") == 4
    assert "alert" in [e[1] for e in events]
    assert events[-1][2]["route_extension"]  # the road from R2 to R3
    # Reconnecting with the last id replays nothing already seen.
    resumed = client.get(
        f"/api/v1/live/bikes/{bike_id}",
        params={**case, "max_seconds": 0.3},
        headers={**officer, "Last-Event-ID": events[-1][0]},
    )
    assert _events(resumed.text) == []
    desk = client.get(  # a resume replays (the last ten minutes) under a case or a reason
        "/api/v1/live/alerts",
        params={**case, "max_seconds": 0.3},
        headers={**officer, "Last-Event-ID": "0.0"},
    )
    kinds = {e[1] for e in _events(desk.text)}
    assert kinds == {"alert", "stolen_match"}

    seen = client.get(f"/api/v1/bikes/{bike_id}/last-seen", params=case, headers=officer)
    assert seen.status_code == 200, seen.text
    assert seen.json()["reader_id"] == "R3"
    nxt = client.get(f"/api/v1/bikes/{bike_id}/next-readers", params=case, headers=officer)
    assert nxt.status_code == 200, nxt.text
    assert "R4" in [r["reader_id"] for r in nxt.json()["next_readers"]]

    # The companion, by its plate, under the officer's own case number: an open case (a case
    # number that names no theft is refused), here another theft the officer works on.
    other = client.post("/api/v1/bikes", json=registration(7003), headers=headers["registrar"])
    other_theft = client.post(
        "/api/v1/thefts",
        json={"bike_id": other.json()["bike_id"], "stolen_at": stolen_at.isoformat()},
        headers=officer,
    )
    client.post(
        f"/api/v1/thefts/{other_theft.json()['theft_id']}/confirm",
        json={"case_number": "HZ-STORY-2"},
        headers=officer,
    ).raise_for_status()
    companions = client.get(
        f"/api/v1/thefts/{theft.json()['theft_id']}/companions",
        params={"case_number": "HZ-STORY-2", "until": window["until"]},
        headers=officer,
    )
    assert companions.status_code == 200, companions.text
    [companion] = companions.json()["companions"]
    assert (companion["tag_id"], companion["plate"]) == (beside["tag_id"], beside["plate"])
    assert companion["shared"] == 4

    audit = client.get(
        "/api/v1/audit", params={"bike_id": bike_id, "limit": 100}, headers=headers["auditor"]
    ).json()["items"]
    assert [a["case_number"] for a in audit if a["action"] == "case.companions"] == ["HZ-STORY-2"]
    actions = {(a["action"], a["actor"], a["role"]) for a in audit}
    for action in (
        "route.view",
        "route.export.gpx",
        "live.bike",
        "bike.last_seen",
        "bike.next_readers",
    ):
        assert (action, "the-officer", "officer") in actions, action
    assert ("theft.report", "story-resident", "resident") in actions
    assert all(a["case_number"] == "HZ-STORY-1" for a in audit if a["action"] == "route.view")
    assert all(a["remote_addr"] for a in audit)
    stats = client.get("/api/v1/stats", headers=headers["auditor"]).json()
    assert stats["cases"]["thefts_reported"] >= 1
    assert stats["cases"]["watches_hit"] >= 1
