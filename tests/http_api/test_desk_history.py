"""The duty desk's memory through the API on the real PostgreSQL: alerts raised by the real
engine and a stolen-frame flag raised at registration, while no desk was open, are listed
for this shift and the last 24 h, filtered by kind, plate, case and acknowledgement;
acknowledging records who and when (once: a second is a 409 naming the first), and both the
history and each acknowledgement are in the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from api_helpers import add_user, login
from fastapi.testclient import TestClient
from scenarios import line_city, registration
from theft_scenes import bind_tags_since, register, report_theft, ride

from api.alerts.service import Shifts, period_start

CASE = "HZ-DESK-1"
REASON = {"reason": "duty desk: alerts of this shift"}


@pytest.fixture(scope="module")
def scene(api_db: str, client: TestClient, headers: dict[str, dict[str, str]]) -> dict[str, Any]:
    """A stolen bike under a case seen at R1 and R2, and its frame presented again at a desk:
    two alerts and a flag, raised before anyone looked."""
    line_city(api_db)
    add_user(api_db, "officer-two", "officer")
    body = registration(701)
    bike_id = register(client, headers, body)
    now = datetime.now(UTC)
    bind_tags_since(api_db, bike_id, now - timedelta(hours=1))
    report_theft(client, headers, bike_id, now - timedelta(minutes=30), case_number=CASE)
    ride(
        api_db, body["tag_id"], now - timedelta(minutes=10), ["R1", "R2"],
        gateway_id="gw-desk", reads=6, rssi_fall_db=0.0,
    )  # fmt: skip
    again = registration(702, frame_number=body["frame_number"])
    flagged = client.post("/api/v1/bikes", json=again, headers=headers["registrar"])
    assert flagged.status_code in (200, 201, 202, 409), flagged.text
    return {"bike_id": bike_id, "plate": body["plate"]}


def _history(client: TestClient, headers: dict[str, str], **params: Any) -> Any:
    response = client.get("/api/v1/alerts", params={**REASON, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_what_was_raised_while_no_desk_was_open_is_listed(
    client: TestClient, headers: dict[str, dict[str, str]], scene: dict[str, Any]
) -> None:
    page = _history(client, headers["officer"], period="24h")
    kinds = sorted((i["source"], i["kind"], i["reader_id"]) for i in page["items"])
    assert kinds == [
        ("alert", "theft", "R1"),
        ("alert", "theft", "R2"),
        ("flag", "stolen_frame", None),
    ]
    assert {i["bike_id"] for i in page["items"]} == {scene["bike_id"]}
    assert all(i["case_number"] == CASE and i["plate"] == scene["plate"] for i in page["items"])
    assert (page["total"], page["unacknowledged"]) == (3, 3)
    # Newest first.
    raised = [i["raised_at"] for i in page["items"]]
    assert raised == sorted(raised, reverse=True)


def test_filters(
    client: TestClient, headers: dict[str, dict[str, str]], scene: dict[str, Any]
) -> None:
    officer = headers["officer"]
    flags = _history(client, officer, period="24h", kind="stolen_frame")["items"]
    assert [(i["source"], i["kind"]) for i in flags] == [("flag", "stolen_frame")]
    assert _history(client, officer, period="24h", kind="armed")["items"] == []
    assert _history(client, officer, period="24h", plate=scene["plate"])["total"] == 3
    assert _history(client, officer, period="24h", plate="浙B·99999")["total"] == 0
    assert _history(client, officer, period="24h", bike_id=scene["bike_id"])["total"] == 3
    assert _history(client, officer, period="24h", case=CASE)["total"] == 3
    assert _history(client, officer, period="24h", case="HZ-OTHER")["total"] == 0
    # No grounds: refused like any location lookup; a bad kind: 422.
    bare = client.get("/api/v1/alerts", headers=officer)
    assert bare.status_code == 400, bare.text
    assert bare.headers["content-type"] == "application/problem+json"
    bad = client.get("/api/v1/alerts", params={**REASON, "kind": "x"}, headers=officer)
    assert bad.status_code == 422, bad.text


def test_acknowledge_records_who_and_when_once_and_audits(
    api_db: str, client: TestClient, headers: dict[str, dict[str, str]], scene: dict[str, Any]
) -> None:
    officer = headers["officer"]
    items = _history(client, officer, period="24h")["items"]
    alert = next(i for i in items if i["source"] == "alert")
    flag = next(i for i in items if i["source"] == "flag")
    before = datetime.now(UTC)
    done = client.post(
        f"/api/v1/alerts/{alert['id']}/acknowledge", json={"note": "unit 12 sent"}, headers=officer
    )
    assert done.status_code == 200, done.text
    assert done.json()["acknowledged_by"] == "the-officer"
    at = datetime.fromisoformat(done.json()["acknowledged_at"])
    assert before - timedelta(seconds=5) <= at <= datetime.now(UTC)
    # The first acknowledgement stands: a second officer is told who was first.
    second = client.post(
        f"/api/v1/alerts/{alert['id']}/acknowledge", headers=login(client, "officer-two")
    )
    assert second.status_code == 409, second.text
    assert "the-officer" in second.json()["detail"]
    flagged = client.post(f"/api/v1/alerts/flags/{flag['id']}/acknowledge", headers=officer)
    assert flagged.status_code == 200, flagged.text
    missing = client.post("/api/v1/alerts/999999/acknowledge", headers=officer)
    assert missing.status_code == 404, missing.text

    waiting = _history(client, officer, period="24h", acknowledged="false")
    assert [i["source"] for i in waiting["items"]] == ["alert"]
    assert alert["id"] not in [i["id"] for i in waiting["items"]]
    assert (waiting["total"], waiting["unacknowledged"]) == (1, 1)
    acked = _history(client, officer, period="24h", acknowledged="true")["items"]
    assert sorted((i["source"], i["acknowledged_by"]) for i in acked) == [
        ("alert", "the-officer"),
        ("flag", "the-officer"),
    ]
    with psycopg.connect(api_db) as conn:
        rows = conn.execute(
            """SELECT action, actor, subject, bike_id, case_number, detail->>'note'
               FROM audit_log WHERE action LIKE '%%.acknowledge' ORDER BY audit_id"""
        ).fetchall()
        history = conn.execute(
            "SELECT count(*), min(reason) FROM audit_log WHERE action = 'alerts.history'"
        ).fetchone()
    assert rows == [
        ("alert.acknowledge", "the-officer", f"alert:{alert['id']}", scene["bike_id"], CASE,
         "unit 12 sent"),
        ("flag.acknowledge", "the-officer", f"flag:{flag['id']}", scene["bike_id"], CASE, ""),
    ]  # fmt: skip
    assert history is not None
    assert history[0] >= 3
    assert history[1] == REASON["reason"]


def test_this_shift_keeps_what_still_waits_from_before_it(
    api_db: str, client: TestClient, headers: dict[str, dict[str, str]], scene: dict[str, Any]
) -> None:
    """A desk closed over a change of shift: what nobody took stays on the shift's list; what
    was taken before the shift began is only in the 24-hour view."""
    del scene
    officer = headers["officer"]
    before_shift = Shifts().start(datetime.now(UTC)) - timedelta(minutes=1)
    with psycopg.connect(api_db) as conn:  # as if raised during the last shift
        conn.execute("UPDATE alerts SET raised_at = %s", (before_shift,))
        conn.execute("UPDATE registration_flags SET raised_at = %s", (before_shift,))
    shift = _history(client, officer)
    assert [(i["source"], i["acknowledged_by"]) for i in shift["items"]] == [("alert", None)]
    assert shift["waiting_since"] is not None
    assert datetime.fromisoformat(shift["since"]) > before_shift
    day = _history(client, officer, period="24h")
    assert day["total"] == 3
    assert day["waiting_since"] is None


def test_only_the_duty_desk_may_look(
    client: TestClient, headers: dict[str, dict[str, str]], scene: dict[str, Any]
) -> None:
    del scene
    assert _history(client, headers["admin"], period="shift")["total"] >= 0
    for role in ("registrar", "resident", "auditor", "operator"):
        response = client.get("/api/v1/alerts", params=REASON, headers=headers[role])
        assert response.status_code == 403, (role, response.text)


def test_shift_boundaries() -> None:
    shifts = Shifts(hours=8, first_hour_utc=6)
    at = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    assert period_start("shift", now=at, shifts=shifts) == datetime(2026, 12, 6, 22, tzinfo=UTC)
    at = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    assert period_start("shift", now=at, shifts=shifts) == at
    at = datetime(2026, 12, 7, 13, 59, tzinfo=UTC)
    assert period_start("shift", now=at, shifts=shifts) == datetime(2026, 12, 7, 6, tzinfo=UTC)
    assert period_start("24h", now=at, shifts=shifts) == at - timedelta(hours=24)
    with pytest.raises(ValueError, match="shifts of 0 h"):
        Shifts(hours=0)


def test_the_waiting_count_follows_acknowledgements_made_elsewhere(
    api_db: str, client: TestClient, headers: dict[str, dict[str, str]], scene: dict[str, Any]
) -> None:
    """What a desk asks after an ``ack`` event about an item it does not list: the number
    still waiting under its filters, the same as the history's, without grounds or audit."""
    officer = headers["officer"]

    def waiting(**params: Any) -> int:
        answer = client.get("/api/v1/alerts/waiting", params=params, headers=officer)
        assert answer.status_code == 200, answer.text
        assert set(answer.json()) == {"unacknowledged", "waiting_since"}
        return int(answer.json()["unacknowledged"])

    with psycopg.connect(api_db) as conn:
        audited_before = conn.execute("SELECT count(*) FROM audit_log").fetchone()
    left = _history(client, officer, period="24h", acknowledged="false")["items"]
    assert left, "the earlier tests leave one alert waiting"
    for period in ("shift", "24h"):
        assert waiting() == _history(client, officer, period=period)["unacknowledged"]
    assert waiting() == len(left)
    assert waiting(plate=scene["plate"]) == waiting(case=CASE) == len(left)
    assert waiting(kind="stolen_frame") == 0
    assert waiting(plate="浙B·99999") == 0

    # Another officer takes what is left: the count says so at once.
    for item in left:
        path = "flags/" if item["source"] == "flag" else ""
        done = client.post(
            f"/api/v1/alerts/{path}{item['id']}/acknowledge", headers=login(client, "officer-two")
        )
        assert done.status_code == 200, done.text
    assert waiting() == 0
    assert _history(client, officer, period="24h")["unacknowledged"] == 0

    with psycopg.connect(api_db) as conn:
        new_rows = conn.execute(
            "SELECT action FROM audit_log ORDER BY audit_id OFFSET %s", audited_before
        ).fetchall()
    assert all(action != "alerts.waiting" for (action,) in new_rows)
    assert sum(action == "alerts.history" for (action,) in new_rows) == 4  # the _history calls
    for role in ("registrar", "resident", "auditor", "operator"):
        refused = client.get("/api/v1/alerts/waiting", headers=headers[role])
        assert refused.status_code == 403, (role, refused.text)
