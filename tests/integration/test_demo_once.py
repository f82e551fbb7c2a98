"""`tagtrail demo --once --json` end to end through the machine's Mosquitto and PostgreSQL,
then the API on the database it filled."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from testsupport import create_database, drop_database

from api.app import create_app
from api.config import ApiConfig
from api.users.service import create_user

OFFICER, PASSWORD = "duty.officer", "correct horse battery"


@pytest.fixture(scope="module")
def demo_run(
    pg_admin_url: str, mqtt_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, Any], str]]:
    name, url = create_database(pg_admin_url)
    env = {
        **os.environ,
        "TAGTRAIL_DATABASE_URL": url,
        "TAGTRAIL_MQTT_URL": mqtt_url,
        "TAGTRAIL_TOPIC_PREFIX": f"tagtrail-test-{uuid.uuid4().hex[:12]}/v1",
        "TAGTRAIL_DATA_DIR": str(tmp_path_factory.mktemp("data")),
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tagtrail", "demo", "--once", "--json"],
            env=env,
            capture_output=True,
            timeout=240,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        import psycopg

        with psycopg.connect(url) as conn:
            create_user(
                conn,
                username=OFFICER,
                password=PASSWORD,
                role="officer",
                actor="test",
                actor_role="test",
            )
        yield orjson.loads(done.stdout), url
    finally:
        drop_database(pg_admin_url, name)


def test_demo_prints_stolen_plate_passages_and_timed_route(
    demo_run: tuple[dict[str, Any], str],
) -> None:
    result, _ = demo_run
    assert result["plate"]
    assert len(result["passages"]) >= 3
    times = [datetime.fromisoformat(p["time"]) for p in result["passages"]]
    assert times == sorted(times)
    assert all(t.tzinfo is not None for t in times)
    route = result["route"]
    assert route["type"] == "Feature"
    assert route["geometry"]["type"] == "LineString"
    coords = route["geometry"]["coordinates"]
    assert len(coords) >= 3
    assert len(route["properties"]["times"]) == len(coords)
    stats = result["stats"]
    # Nothing is lost between stages: every reader message reached the engine.
    assert stats["reader_messages"] == stats["gateway_messages_in"]
    assert stats["gateway_reads_out"] == stats["engine_reads_received"] > 0
    assert stats["engine_passages_stored"] > 0
    assert stats["alerts"] >= 1


def _login(client: TestClient) -> dict[str, str]:
    token = client.post("/api/v1/auth/token", data={"username": OFFICER, "password": PASSWORD})
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def test_api_serves_the_route_and_audits_it(demo_run: tuple[dict[str, Any], str]) -> None:
    result, url = demo_run
    plate = result["plate"]
    with TestClient(create_app(ApiConfig(database_url=url))) as client:
        officer = _login(client)
        bike = client.get("/api/v1/bikes", params={"plate": plate.lower()}, headers=officer)
        assert bike.status_code == 200, bike.text
        assert bike.json()["case_number"] == result["case_number"]
        assert "*" in bike.json()["owner_phone"]

        route = client.get(
            f"/api/v1/routes/{plate}",
            params={"case_number": result["case_number"]},
            headers=officer,
        )
        assert route.status_code == 200, route.text
        assert route.json()["geometry"]["type"] == "LineString"
        assert len(route.json()["properties"]["passages"]) == len(result["passages"])

        page = client.get(f"/routes/{plate}")
        assert page.status_code == 200
        assert "leaflet.js" in page.text
        assert client.get("/static/leaflet/leaflet.js").status_code == 200
        network = client.get("/api/v1/network", headers=officer).json()
        assert {f["properties"]["layer"] for f in network["features"]} == {
            "roads",
            "streets",
            "readers",
        }

    import psycopg

    with psycopg.connect(url) as conn:
        audit = conn.execute(
            "SELECT actor, case_number FROM audit_log WHERE action = 'route.view' ORDER BY at"
        ).fetchall()
    assert (OFFICER, result["case_number"]) in audit


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        ("/api/v1/routes/{plate}", {}, 400, "case number or a reason"),
        (
            "/api/v1/routes/{plate}",
            {"reason": "checking a tip", "since": "2026-11-29T06:00:00"},
            400,
            "time zone",
        ),
        (
            "/api/v1/routes/{plate}",
            {"reason": "checking a tip", "since": "yesterday"},
            422,
            "datetime",
        ),
        ("/api/v1/routes/NOPLATE", {"reason": "checking a tip"}, 404, "no registered bike"),
        ("/api/v1/bikes", {}, 400, "plate or a frame_number"),
        ("/api/v1/bikes", {"plate": "x" * 40}, 422, "at most 32"),
    ],
)
def test_bad_requests_get_clear_4xx(
    demo_run: tuple[dict[str, Any], str],
    path: str,
    params: dict[str, str],
    status: int,
    message: str,
) -> None:
    result, url = demo_run
    with TestClient(create_app(ApiConfig(database_url=url))) as client:
        response = client.get(
            path.format(plate=result["plate"]), params=params, headers=_login(client)
        )
    assert response.status_code == status, response.text
    assert message in response.text


def test_no_sql_in_api_views() -> None:
    # Each domain's SQL is in its store modules (store.py, *_store.py) or the shared
    # api/registry/; views and services hold no SQL.
    api_dir = Path(__file__).resolve().parents[2] / "api"
    for path in api_dir.rglob("*.py"):
        if path.name == "store.py" or path.name.endswith("_store.py"):
            continue
        if path.parent.name == "registry":
            continue
        text = path.read_text()
        assert "SELECT " not in text, path
        assert "INSERT " not in text, path
