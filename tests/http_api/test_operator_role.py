"""The operator role: readers' health and the deployment (readers, road network, cameras,
ingest figures), never a bike, its location, a case, an alert or the audit log. The account is
made the way an administrator makes it, with ``tagtrail users create --role operator``."""

from __future__ import annotations

import psycopg
import pytest
from api_helpers import PASSWORD, login
from fastapi.testclient import TestClient
from scenarios import line_city, registration
from typer.testing import CliRunner

from tagtrail.cli import app

MAY_SEE = ("/readers", "/readers/R0", "/network", "/cameras", "/stats/ingest")
# Bikes, their routes and whereabouts, cases, the desk's alerts, accounts and the audit log.
MAY_NOT_SEE = (
    ("GET", "/bikes/{bike_id}"),
    ("GET", "/bikes?plate={plate}"),
    ("GET", "/routes/{plate}?reason=checking+the+readers"),
    ("GET", "/bikes/{bike_id}/last-seen?reason=checking+the+readers"),
    ("GET", "/bikes/{bike_id}/next-readers?reason=checking+the+readers"),
    ("GET", "/thefts"),
    ("GET", "/alerts?reason=checking+the+readers"),
    ("GET", "/live/alerts?max_events=1&max_seconds=0.2"),
    ("GET", "/audit"),
    ("GET", "/users"),
    ("GET", "/stats"),
    ("POST", "/readers/import"),
)


@pytest.fixture(scope="module")
def scene(api_db: str, client: TestClient, headers: dict[str, dict[str, str]]) -> dict[str, str]:
    """A city with readers, a registered bike, and an operator made on the command line."""
    line_city(api_db)
    body = registration(901)
    bike = client.post("/api/v1/bikes", json=body, headers=headers["registrar"])
    assert bike.status_code == 201, bike.text
    made = CliRunner().invoke(
        app,
        ["users", "create", "--username", "night-ops", "--password", PASSWORD,
         "--role", "operator"],
        env={"TAGTRAIL_DATABASE_URL": api_db},
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "created operator night-ops" in made.output
    return {"bike_id": str(bike.json()["bike_id"]), "plate": body["plate"]}


def test_operator_sees_readers_and_deployment(client: TestClient, scene: dict[str, str]) -> None:
    del scene
    operator = login(client, "night-ops")
    for path in MAY_SEE:
        response = client.get(f"/api/v1{path}", headers=operator)
        assert response.status_code == 200, (path, response.text)
    readers = client.get("/api/v1/readers", headers=operator).json()["items"]
    assert sorted(r["reader_id"] for r in readers) == [f"R{i}" for i in range(6)]
    assert all("health" in r and "last_heard_at" in r for r in readers)


def test_operator_never_sees_bikes_cases_or_alerts(
    api_db: str, client: TestClient, scene: dict[str, str]
) -> None:
    operator = login(client, "night-ops")
    for method, path in MAY_NOT_SEE:
        url = "/api/v1" + path.format(**scene)
        response = client.request(method, url, headers=operator, json=[])
        assert response.status_code == 403, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert scene["plate"] not in response.text
    # Refusals of location lookups are not lookups: nothing of the bike was recorded as seen.
    with psycopg.connect(api_db) as conn:
        seen = conn.execute(
            "SELECT count(*) FROM audit_log WHERE actor = 'night-ops' AND bike_id IS NOT NULL"
        ).fetchone()
    assert seen == (0,)


def test_an_unknown_role_is_still_refused_on_the_command_line(api_db: str) -> None:
    made = CliRunner().invoke(
        app,
        ["users", "create", "--username", "ops-two", "--password", PASSWORD,
         "--role", "superuser"],
        env={"TAGTRAIL_DATABASE_URL": api_db},
    )  # fmt: skip
    assert made.exit_code == 2, made.output
    assert "role" in made.output
