"""The PDF case sheet: the case number, the officer, when it was made, and every passage's
time in the officer's zone and its reader's address are on the paper; the lookup is audited
like any other export."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
from fastapi.testclient import TestClient
from pypdf import PdfReader
from scenarios import line_city, registration
from test_story import _ride
from theft_scenes import register, report_theft

CASE = "HZ-SHEET-7"
STREET = "Jiefang Road"  # the line city's road: every reader stands on it


def _stolen_bike_that_rode(api_db: str, client: TestClient, headers: dict) -> tuple[str, datetime]:
    line_city(api_db, street=STREET)
    body = registration(7300)
    bike_id = register(client, headers, body)
    now = datetime.now(UTC).replace(microsecond=0)
    report_theft(
        client, headers, bike_id, now - timedelta(minutes=5), place="Gate", case_number=CASE
    )
    ride_start = now + timedelta(seconds=2)
    _ride(api_db, body["tag_id"], ride_start, ["R0", "R1", "R2"])
    return body["plate"], ride_start


def test_the_pdf_sheet_carries_case_officer_and_every_passage_time(
    api_db: str, client: TestClient, headers: dict
) -> None:
    plate, ride_start = _stolen_bike_that_rode(api_db, client, headers)
    params = {"case_number": CASE, "until": (ride_start + timedelta(minutes=10)).isoformat()}
    route = client.get(f"/api/v1/routes/{plate}", params=params, headers=headers["officer"])
    assert route.status_code == 200, route.text
    passages = route.json()["properties"]["passages"]
    assert len(passages) == 3

    sheet = client.get(
        f"/api/v1/routes/{plate}/export",
        params={**params, "format": "pdf", "tz": "Asia/Shanghai"},
        headers=headers["officer"],
    )
    assert sheet.status_code == 200, sheet.text
    assert sheet.headers["content-type"] == "application/pdf"
    assert sheet.headers["content-disposition"].endswith('.pdf"')
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(sheet.content)).pages)
    assert plate in text
    assert CASE in text
    assert "the-officer" in text
    assert "Generated" in text
    assert "Asia/Shanghai" in text
    shanghai = ZoneInfo("Asia/Shanghai")
    for passage in passages:
        at = datetime.fromisoformat(passage["closest_at"].replace("Z", "+00:00"))
        assert f"{at.astimezone(shanghai):%Y-%m-%d %H:%M:%S}" in text
        assert passage["reader_id"] in text
        # Named as the console names it: the id and where it stands.
        assert f"{passage['reader_id']} · {STREET}" in text

    with psycopg.connect(api_db) as conn:
        audited = conn.execute(
            "SELECT actor, case_number FROM audit_log WHERE action = 'route.export.pdf'"
        ).fetchall()
    assert audited == [("the-officer", CASE)]


def test_an_unknown_time_zone_is_a_400_naming_it(
    api_db: str, client: TestClient, headers: dict
) -> None:
    answer = client.get(
        "/api/v1/routes/ANY1/export",
        params={"case_number": CASE, "format": "pdf", "tz": "Mars/Olympus"},
        headers=headers["officer"],
    )
    assert answer.status_code == 400
    assert "Mars/Olympus" in answer.json()["detail"]
