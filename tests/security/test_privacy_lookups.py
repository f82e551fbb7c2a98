"""Privacy of residents' positions: after an owner change, in the duty desk's replay, in the
grounds a lookup needs, in lookups that find nothing, and on the map's reader positions.

Through the API on the machine's PostgreSQL. Alerts are stored with the engine's own
statement (track_engine/storage/postgres.py), as the engine stores them when a watched tag is read.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest
from api_helpers import add_user, login
from fastapi.testclient import TestClient
from scenarios import line_city, registration
from theft_scenes import report_theft

H = dict[str, dict[str, str]]
GOOD_REASON = "tip from a patrol"


@pytest.fixture(scope="module", autouse=True)
def road_network(api_db: str) -> None:
    """A road network, so that lookups get past "no network yet" (503)."""
    line_city(api_db)


@pytest.fixture(scope="module")
def event_id(client: TestClient, headers: H) -> int:
    """A tagging event residents book, so that registration links their accounts."""
    made = client.post(
        "/api/v1/events",
        json={
            "name": "Privacy day",
            "place": "East gate",
            "starts_at": "2031-02-01T01:00:00Z",
            "ends_at": "2031-02-01T09:00:00Z",
            "capacity": 50,
        },
        headers=headers["admin"],
    )
    assert made.status_code == 201, made.text
    return int(made.json()["event_id"])


def _resident(api_db: str, client: TestClient, name: str, event_id: int) -> tuple[dict, int]:
    """A resident's headers and the booking that links them at registration."""
    add_user(api_db, name, "resident")
    who = login(client, name)
    booking = client.post(f"/api/v1/events/{event_id}/bookings", headers=who)
    assert booking.status_code == 201, booking.text
    return who, int(booking.json()["booking_id"])


def _alert(api_db: str, watch_id: int, reader_id: str, *, raised_ago_s: float = 0.0) -> int:
    """An alert of ``watch_id`` read now at ``reader_id`` (raised ``raised_ago_s`` ago)."""
    with psycopg.connect(api_db) as conn:
        tag = conn.execute(
            "SELECT tb.tag_id FROM watches w JOIN tag_bindings tb USING (bike_id) "
            "WHERE w.watch_id = %s AND upper_inf(tb.valid)",
            (watch_id,),
        ).fetchone()
        assert tag is not None
        row = conn.execute(
            "INSERT INTO alerts (watch_id, tag_id, reader_id, read_at, raised_at) "
            "VALUES (%s, %s, %s, now() - make_interval(secs => %s), "
            "        now() - make_interval(secs => %s)) RETURNING alert_id",
            (watch_id, tag[0], reader_id, raised_ago_s, raised_ago_s),
        ).fetchone()
        assert row is not None
        return int(row[0])


def _audit(api_db: str, sql_where: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(api_db) as conn:
        return conn.execute(
            "SELECT actor, action, subject, bike_id, reason, case_number, detail "
            f"FROM audit_log WHERE {sql_where} ORDER BY audit_id",
            args,
        ).fetchall()


# --- (a) owner change -------------------------------------------------------------------------


def test_new_owner_sees_only_alerts_since_the_handover_and_the_old_watch_is_disarmed(
    api_db: str, client: TestClient, headers: H, event_id: int
) -> None:
    old, old_booking = _resident(api_db, client, "owner-before", event_id)
    new, new_booking = _resident(api_db, client, "owner-after", event_id)
    made = client.post(
        "/api/v1/bikes",
        json=registration(8201, booking_id=old_booking),
        headers=headers["registrar"],
    )
    assert made.status_code == 201, made.text
    bike_id = made.json()["bike_id"]
    ends_at = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    armed = client.post(f"/api/v1/bikes/{bike_id}/watches", json={"ends_at": ends_at}, headers=old)
    assert armed.status_code == 201, armed.text
    old_watch = armed.json()["watch_id"]
    _alert(api_db, old_watch, "R2")
    assert client.get("/api/v1/alerts/mine", headers=old).json()["total"] == 1
    # An earlier theft of the previous owner's, with where it happened, recovered since.
    reported = client.post(
        "/api/v1/thefts",
        json={
            "bike_id": bike_id,
            "stolen_at": (datetime.now(UTC) - timedelta(days=2)).isoformat(),
            "place": "outside the previous owner's flat",
        },
        headers=old,
    )
    assert reported.status_code == 201, reported.text
    old_theft = reported.json()["theft_id"]
    back = client.post(f"/api/v1/thefts/{old_theft}/recover", json={}, headers=headers["officer"])
    assert back.status_code == 200, back.text
    assert client.get(f"/api/v1/thefts/{old_theft}", headers=old).status_code == 200

    handed = client.post(
        f"/api/v1/bikes/{bike_id}/owner",
        json={"owner": registration(8202)["owner"], "booking_id": new_booking},
        headers=headers["registrar"],
    )
    assert handed.status_code == 200, handed.text
    # The previous owner's reader, position and time are not the new owner's to see...
    assert client.get("/api/v1/alerts/mine", headers=new).json()["total"] == 0
    # ...and the previous owner's "alert me" is disarmed, on record.
    assert client.get(f"/api/v1/bikes/{bike_id}/watches", headers=new).json() == []
    assert client.get(f"/api/v1/thefts/{old_theft}", headers=new).status_code == 404
    disarmed = _audit(api_db, "action = 'watch.disarm' AND subject = %s", f"watch:{old_watch}")
    assert len(disarmed) == 1
    actor, _, _, audited_bike, _, _, detail = disarmed[0]
    assert (actor, audited_bike, detail["why"]) == ("the-registrar", bike_id, "owner_change")

    # The new owner's own watch and alerts work as before.
    mine = client.post(f"/api/v1/bikes/{bike_id}/watches", json={"ends_at": ends_at}, headers=new)
    assert mine.status_code == 201, mine.text
    fresh = _alert(api_db, mine.json()["watch_id"], "R3")
    alerts = client.get("/api/v1/alerts/mine", headers=new).json()
    assert [a["alert_id"] for a in alerts["items"]] == [fresh]
    assert client.get("/api/v1/alerts/mine", headers=old).json()["total"] == 0


# --- (b) the duty desk's replay ---------------------------------------------------------------


def _events(body: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            out.append((fields["event"], orjson.loads(fields["data"])))
    return out


@pytest.fixture(scope="module")
def stolen(client: TestClient, headers: H) -> dict[str, Any]:
    """A registered bike reported stolen (its theft watch is open) and confirmed as a case."""
    made = client.post("/api/v1/bikes", json=registration(8301), headers=headers["registrar"])
    assert made.status_code == 201, made.text
    theft_id = report_theft(
        client,
        headers,
        made.json()["bike_id"],
        datetime.now(UTC) - timedelta(hours=3),
        case_number="HZ-PRIV-1",
    )
    watches = client.get(
        f"/api/v1/bikes/{made.json()['bike_id']}/watches", headers=headers["officer"]
    ).json()
    return {**made.json(), "theft_id": theft_id, "watch_id": watches[0]["watch_id"]}


def test_desk_replay_needs_grounds_reaches_back_ten_minutes_and_is_audited_with_what_it_sent(
    api_db: str, client: TestClient, headers: H, stolen: dict[str, Any]
) -> None:
    old = _alert(api_db, stolen["watch_id"], "R1", raised_ago_s=2 * 3600)
    recent = _alert(api_db, stolen["watch_id"], "R4", raised_ago_s=60)
    replay = {"Last-Event-ID": "0.0", **headers["admin"]}
    short = {"max_seconds": "0.5", "max_events": "50"}
    refused = client.get("/api/v1/live/alerts", params=short, headers=replay)
    assert refused.status_code == 400, refused.text
    assert "case number or a reason" in refused.json()["detail"]
    meaningless = client.get("/api/v1/live/alerts", params={**short, "reason": "x"}, headers=replay)
    assert meaningless.status_code == 422, meaningless.text
    no_case = {**short, "case_number": "HZ-NOPE-7"}
    for asked in (replay, headers["admin"]):  # a case given must exist, resume or not
        missing = client.get("/api/v1/live/alerts", params=no_case, headers=asked)
        assert missing.status_code == 404, missing.text

    reason = "resume after a dropped link"
    answer = client.get("/api/v1/live/alerts", params={**short, "reason": reason}, headers=replay)
    assert answer.status_code == 200, answer.text
    sent = [data["alert_id"] for kind, data in _events(answer.text) if kind == "alert"]
    assert recent in sent
    assert old not in sent  # two hours back is not a resume: bounded to ten minutes
    row = _audit(api_db, "action = 'live.alerts' AND actor = 'the-admin'")[-1]
    assert (row[4], row[5]) == (reason, None)
    record = row[6]
    assert record["last_event_id"] == "0.0"
    assert record["replay"]["alerts"] == len(sent)
    assert record["replay"]["alert_ids"] == [min(sent), max(sent)]
    assert stolen["bike_id"] in record["replay"]["bike_ids"]


# --- (c) grounds: reasons that say something, cases that exist and are open ---------------------


@pytest.mark.parametrize(
    "reason",
    [
        "x",
        "\u200b" * 12,
        "x\u200bx\u200bx\u200bx",
        "12345678",
        "a  b  c",
        "\u00ad\u2060ok\ufeff",
        "x.......",
        "x" + "\u0301" * 8,
    ],
)
def test_meaningless_reasons_are_422(
    client: TestClient, headers: H, stolen: dict[str, Any], reason: str
) -> None:
    for path in (
        f"/api/v1/routes/{stolen['plate']}",
        f"/api/v1/bikes/{stolen['bike_id']}/last-seen",
        f"/api/v1/thefts/{stolen['theft_id']}/companions",
        f"/api/v1/live/bikes/{stolen['bike_id']}",
    ):
        answer = client.get(
            path, params={"reason": reason, "max_seconds": "0.2"}, headers=headers["officer"]
        )
        assert answer.status_code == 422, (path, reason, answer.text)
        assert "reason must say why" in answer.json()["detail"]


@pytest.mark.parametrize("reason", [GOOD_REASON, "盗窃案件调查", "  tip  from\u200b a patrol  "])
def test_reasons_in_words_pass_and_are_recorded_cleaned(
    api_db: str, client: TestClient, headers: H, stolen: dict[str, Any], reason: str
) -> None:
    path = f"/api/v1/bikes/{stolen['bike_id']}/last-seen"
    answer = client.get(path, params={"reason": reason}, headers=headers["officer"])
    assert answer.status_code == 404, answer.text  # past the grounds: never seen
    row = _audit(api_db, "action = 'bike.last_seen' AND actor = 'the-officer'")[-1]
    assert row[4] == " ".join(reason.replace("\u200b", "").split())


def test_case_numbers_must_name_an_open_case(
    api_db: str, client: TestClient, headers: H, stolen: dict[str, Any]
) -> None:
    path = f"/api/v1/bikes/{stolen['bike_id']}/last-seen"
    officer = headers["officer"]
    missing = client.get(path, params={"case_number": "HZ-NO-SUCH-CASE"}, headers=officer)
    assert missing.status_code == 404, missing.text
    assert "no case HZ-NO-SUCH-CASE" in missing.json()["detail"]
    live_missing = client.get("/api/v1/live/cases/HZ-NO-SUCH-CASE", headers=officer)
    assert live_missing.status_code == 404, live_missing.text
    open_case = client.get(path, params={"case_number": "HZ-PRIV-1"}, headers=officer)
    assert open_case.status_code == 404, open_case.text  # the case is fine: never seen
    assert "never been seen" in open_case.json()["detail"]

    made = client.post("/api/v1/bikes", json=registration(8302), headers=headers["registrar"])
    theft = client.post(
        "/api/v1/thefts",
        json={"bike_id": made.json()["bike_id"], "stolen_at": datetime.now(UTC).isoformat()},
        headers=officer,
    ).json()
    client.post(
        f"/api/v1/thefts/{theft['theft_id']}/confirm",
        json={"case_number": "HZ-PRIV-CLOSED"},
        headers=officer,
    )
    recovered = client.post(f"/api/v1/thefts/{theft['theft_id']}/recover", json={}, headers=officer)
    assert recovered.status_code == 200, recovered.text
    closed = client.get(path, params={"case_number": "HZ-PRIV-CLOSED"}, headers=officer)
    assert closed.status_code == 422, closed.text
    assert "recovered" in closed.json()["detail"]
    live_closed = client.get("/api/v1/live/cases/HZ-PRIV-CLOSED", headers=officer)
    assert live_closed.status_code == 422, live_closed.text


# --- (d) lookups that find nothing are audited ------------------------------------------------


def test_lookups_that_find_nothing_are_audited_with_who_looked_for_what(
    api_db: str, client: TestClient, headers: H, stolen: dict[str, Any]
) -> None:
    officer = headers["officer"]
    asked = [
        ("/api/v1/routes/ZZ404", {"reason": GOOD_REASON}, "route.view", "plate:ZZ404"),
        ("/api/v1/routes/ZZ404/export", {"reason": GOOD_REASON, "format": "csv"},
         "route.export.csv", "plate:ZZ404"),
        ("/api/v1/bikes/987654/last-seen", {"reason": GOOD_REASON}, "bike.last_seen",
         "bike:987654"),
        ("/api/v1/bikes/987654/next-readers", {"reason": GOOD_REASON}, "bike.next_readers",
         "bike:987654"),
        ("/api/v1/live/bikes/987654", {"reason": GOOD_REASON}, "live.bike", "bike:987654"),
        ("/api/v1/thefts/987654/companions", {"reason": GOOD_REASON}, "case.companions",
         "theft:987654"),
        ("/api/v1/live/cases/HZ-NOPE-9", {}, "live.case", "case:HZ-NOPE-9"),
        (f"/api/v1/bikes/{stolen['bike_id']}/last-seen", {"case_number": "HZ-NOPE-9"},
         "bike.last_seen", f"bike:{stolen['bike_id']}"),
        (f"/api/v1/routes/{stolen['plate']}", {"reason": GOOD_REASON}, "route.view",
         f"bike:{stolen['bike_id']}"),
    ]  # fmt: skip
    for path, params, action, subject in asked:
        before = _audit(api_db, "action = %s AND subject = %s", action, subject)
        answer = client.get(path, params=params, headers=officer)
        assert answer.status_code == 404, (path, answer.text)
        after = _audit(api_db, "action = %s AND subject = %s", action, subject)
        assert len(after) == len(before) + 1, (path, after)
        actor, _, _, _, reason, case_number, detail = after[-1]
        assert actor == "the-officer"
        case = params.get("case_number") or ("HZ-NOPE-9" if "/live/cases/" in path else None)
        assert (reason, case_number) == (params.get("reason", ""), case)
        assert detail["outcome"] == "not found"
        assert detail["answer"] == answer.json()["detail"]


def test_a_miss_with_a_nul_in_the_plate_is_audited_with_the_nul_spelled_out(
    api_db: str, client: TestClient, headers: H
) -> None:
    answer = client.get(
        "/api/v1/routes/A%00B", params={"reason": GOOD_REASON}, headers=headers["officer"]
    )
    assert answer.status_code == 404, answer.text
    [row] = _audit(api_db, "action = 'route.view' AND subject = %s", "plate:A\\x00B")
    assert row[6]["plate"] == "A\\x00B"


# --- (e) the map's reader positions -----------------------------------------------------------


def test_network_reader_positions_need_a_login(client: TestClient, headers: H) -> None:
    assert client.get("/api/v1/network").status_code == 401
    for role in ("resident", "registrar", "auditor"):
        assert client.get("/api/v1/network", headers=headers[role]).status_code == 403, role
    for role in ("officer", "admin"):
        answer = client.get("/api/v1/network", headers=headers[role])
        assert answer.status_code == 200, (role, answer.text)
        layers = {f["properties"]["layer"] for f in answer.json()["features"]}
        assert layers - {"streets"} == {"roads", "readers"}
