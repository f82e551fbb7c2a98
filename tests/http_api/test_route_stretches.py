"""The route API says how sure each stretch is: on a square block two equal ways join the
readers at opposite corners, so each stretch is a coin toss with the other way beside it."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from scenarios import registration, square_city
from test_story import _ride
from theft_scenes import register, report_theft

CASE = "HZ-STRETCH-18"


def test_the_route_carries_each_stretch_s_probability_and_alternatives(
    api_db: str, client: TestClient, headers: dict
) -> None:
    square_city(api_db)
    body = registration(7418)
    bike_id = register(client, headers, body)
    now = datetime.now(UTC).replace(microsecond=0)
    report_theft(
        client, headers, bike_id, now - timedelta(minutes=5), place="Block", case_number=CASE
    )
    ride_start = now + timedelta(seconds=2)
    _ride(api_db, body["tag_id"], ride_start, ["S0", "S3", "S0"])  # 400 m each, 70 s apart

    params = {"case_number": CASE, "until": (ride_start + timedelta(minutes=10)).isoformat()}
    route = client.get(f"/api/v1/routes/{body['plate']}", params=params, headers=headers["officer"])
    assert route.status_code == 200, route.text
    props = route.json()["properties"]
    passages = props["passages"]
    assert [p["reader_id"] for p in passages] == ["S0", "S3", "S0"]
    corner = {p["reader_id"]: [p["lon"], p["lat"]] for p in passages}

    stretches = props["stretches"]
    assert [(s["from_reader"], s["to_reader"]) for s in stretches] == [("S0", "S3"), ("S3", "S0")]
    for s in stretches:
        assert s["probability"] == pytest.approx(0.5, abs=0.1)
        (alt,) = s["alternatives"]
        assert alt["probability"] == pytest.approx(0.5, abs=0.1)
        assert s["probability"] + alt["probability"] <= 1.0 + 1e-3
        coords = alt["coordinates"]
        assert len(coords) == 3  # corner, the other corner of the block, corner
        assert coords[0] == pytest.approx(corner[s["from_reader"]])
        assert coords[-1] == pytest.approx(corner[s["to_reader"]])

    # The printed case sheet lists the coin-toss stretches with their shares.
    sheet = client.get(
        f"/api/v1/routes/{body['plate']}/export",
        params={**params, "format": "pdf"},
        headers=headers["officer"],
    )
    assert sheet.status_code == 200, sheet.text
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(sheet.content)).pages)
    assert "other possible ways" in text
    for a, b in (("S0", "S3"), ("S3", "S0")):
        assert re.search(rf"{a} → {b}: drawn way \d+% sure; other ways \d+%", text), text
