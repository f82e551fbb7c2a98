"""The public "is this e-bike stolen?" check: no account, yes or no and the day reported,
never a place; look-alike characters fold; every check audited; one address limited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient
from scenarios import registration
from theft_scenes import register, report_theft

from api.public import views

FIELDS = {"checked_by", "value", "reported_stolen", "reported_on", "advice"}


def _stolen(client: TestClient, headers: dict, n: int) -> dict:
    body = registration(n)
    bike_id = register(client, headers, body)
    report_theft(client, headers, bike_id, datetime.now(UTC) - timedelta(hours=2), place="Gate 3")
    return body


def test_a_stolen_plate_and_frame_say_so_without_any_place(
    api_db: str, client: TestClient, headers: dict
) -> None:
    views.LIMIT_STORAGE.reset()
    stolen = _stolen(client, headers, 7400)
    clear = registration(7401)
    assert client.post("/api/v1/bikes", json=clear, headers=headers["registrar"]).status_code == 201

    hit = client.get("/api/v1/public/stolen-check", params={"plate": stolen["plate"]})
    assert hit.status_code == 200, hit.text
    body = hit.json()
    assert set(body) == FIELDS, "nothing but yes/no, the day and advice"
    assert body["reported_stolen"] is True
    assert body["reported_on"] == datetime.now(UTC).date().isoformat()
    assert "Gate" not in hit.text
    # The frame number typed with look-alikes (O for 0) and spaces still finds it.
    typed = stolen["frame_number"].replace("0", "O")
    by_frame = client.get("/api/v1/public/stolen-check", params={"frame_number": f" {typed} "})
    assert by_frame.json()["reported_stolen"] is True

    miss = client.get("/api/v1/public/stolen-check", params={"plate": clear["plate"]})
    assert miss.json()["reported_stolen"] is False
    unknown = client.get("/api/v1/public/stolen-check", params={"plate": "NEVER-SEEN-1"})
    # A plate nobody registered answers exactly like a registered one that is not stolen.
    assert unknown.json() | {"value": ""} == miss.json() | {"value": ""}

    with psycopg.connect(api_db) as conn:
        audited = conn.execute(
            "SELECT subject, detail->>'hit', bike_id IS NOT NULL FROM audit_log"
            " WHERE action = 'public.stolen_check' ORDER BY audit_id"
        ).fetchall()
    assert audited == [
        (f"plate:{stolen['plate']}", "true", True),
        (f"frame_number: {typed} ", "true", True),
        (f"plate:{clear['plate']}", "false", False),
        ("plate:NEVER-SEEN-1", "false", False),
    ]


def test_neither_or_both_is_a_400(client: TestClient) -> None:
    views.LIMIT_STORAGE.reset()
    assert client.get("/api/v1/public/stolen-check").status_code == 400
    both = client.get("/api/v1/public/stolen-check", params={"plate": "A1", "frame_number": "B2"})
    assert both.status_code == 400
    assert "exactly one" in both.json()["detail"]


def test_one_address_is_limited_with_retry_after(client: TestClient) -> None:
    views.LIMIT_STORAGE.reset()
    answers = [
        client.get("/api/v1/public/stolen-check", params={"plate": f"WALK{i:04d}"})
        for i in range(11)
    ]
    assert [a.status_code for a in answers[:10]] == [200] * 10
    assert answers[10].status_code == 429
    assert int(answers[10].headers["Retry-After"]) >= 1
