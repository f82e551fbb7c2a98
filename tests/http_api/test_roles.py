"""Every endpoint × every role: 401 without a token, 403 for roles it does not admit, neither
for the roles it does (and never a 500). Residents cannot reach another resident's bike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from api_helpers import ROLES, add_user, login
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from httpx import Response
from scenarios import registration

from api.openapi import route_roles

# No account needed: health, login, and the public stolen check (limited per address).
PUBLIC = {
    ("/api/v1/health", "GET"),
    ("/api/v1/auth/token", "POST"),
    ("/api/v1/public/stolen-check", "GET"),
}
SAMPLE = {"plate": "ZB00001", "case_number": "C-1", "reader_id": "R-1"}
# Keep streams short, for the roles that get one.
LIVE = {"max_events": "1", "max_seconds": "0.2"}


def _api_routes(client: TestClient) -> list[tuple[str, str, APIRoute]]:
    out = []
    for route in client.app.state.api_routes:  # type: ignore[attr-defined]
        if route.path.startswith("/api/"):
            out.extend((route.path, method, route) for method in sorted(route.methods))
    return out


def _url(path: str, value: int = 1) -> str:
    for name, sample in SAMPLE.items():
        path = path.replace("{" + name + "}", sample)
    for name in ("bike_id", "theft_id", "watch_id", "event_id", "booking_id", "user_id"):
        path = path.replace("{" + name + "}", str(value))
    return path


def test_every_endpoint_declares_its_roles(client: TestClient) -> None:
    undeclared = [
        (path, method)
        for path, method, route in _api_routes(client)
        if route_roles(route) is None and (path, method) not in PUBLIC
    ]
    assert undeclared == []
    schema = client.get("/openapi.json").json()
    assert schema["paths"]["/api/v1/routes/{plate}"]["get"]["x-roles"] == ["officer"]


def test_role_matrix(client: TestClient, headers: dict[str, dict[str, str]]) -> None:
    checked = 0
    for path, method, route in _api_routes(client):
        roles = route_roles(route)
        if roles is None:
            continue
        url = _url(path)
        anonymous = client.request(method, url, params=LIVE)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        for role in ROLES:
            response = client.request(method, url, params=LIVE, headers=headers[role], json={})
            if role in roles:
                assert response.status_code not in (401, 403), (method, path, role, response.text)
            else:
                assert response.status_code == 403, (method, path, role, response.text)
                assert response.headers["content-type"] == "application/problem+json"
            checked += 1
    assert checked >= 40 * len(ROLES)


def _mentions_bike(response: Response, bike_id: int) -> bool:
    """True if a JSON body carries ``bike_id`` anywhere, or an HTML/SSE body names the bike."""
    if not response.headers.get("content-type", "").startswith("application/json"):
        return f"TT-{bike_id:08d}" in response.text or f'"bike_id":{bike_id}' in response.text

    def walk(node: Any) -> bool:
        if isinstance(node, dict):
            return node.get("bike_id") == bike_id or any(walk(v) for v in node.values())
        if isinstance(node, list):
            return any(walk(v) for v in node)
        return False

    return walk(response.json())


@pytest.fixture(scope="module")
def two_residents(api_db: str, client: TestClient, headers: dict[str, dict[str, str]]) -> dict:
    """Resident A with a registered bike, a theft report and an armed watch; resident B."""
    event = client.post(
        "/api/v1/events",
        json={
            "name": "E",
            "place": "P",
            "starts_at": "2031-01-01T00:00:00Z",
            "ends_at": "2031-01-01T08:00:00Z",
            "capacity": 10,
        },
        headers=headers["admin"],
    ).json()
    add_user(api_db, "res-a", "resident")
    add_user(api_db, "res-b", "resident")
    a, b = login(client, "res-a"), login(client, "res-b")
    booking = client.post(f"/api/v1/events/{event['event_id']}/bookings", headers=a).json()
    bike = client.post(
        "/api/v1/bikes",
        json=registration(900, booking_id=booking["booking_id"]),
        headers=headers["registrar"],
    ).json()
    now = datetime.now(UTC)
    watch = client.post(
        f"/api/v1/bikes/{bike['bike_id']}/watches",
        json={"ends_at": (now + timedelta(hours=2)).isoformat()},
        headers=a,
    )
    assert watch.status_code == 201, watch.text
    theft = client.post(
        "/api/v1/thefts",
        json={"bike_id": bike["bike_id"], "stolen_at": (now - timedelta(minutes=5)).isoformat()},
        headers=a,
    )
    assert theft.status_code == 201, theft.text
    return {
        "a": a,
        "b": b,
        "bike_id": bike["bike_id"],
        "theft_id": theft.json()["theft_id"],
        "watch_id": watch.json()["watch_id"],
    }


def test_residents_cannot_reach_another_residents_bike_by_any_id(
    client: TestClient, two_residents: dict
) -> None:
    a, b = two_residents["a"], two_residents["b"]
    bike_id, theft_id, watch_id = (
        two_residents["bike_id"],
        two_residents["theft_id"],
        two_residents["watch_id"],
    )
    assert client.get(f"/api/v1/bikes/{bike_id}", headers=a).status_code == 200
    assert client.get(f"/api/v1/thefts/{theft_id}", headers=a).status_code == 200
    reached = []
    for path, method, route in _api_routes(client):
        roles = route_roles(route)
        if roles is None or "resident" not in roles:
            continue
        url = path.replace("{bike_id}", str(bike_id)).replace("{theft_id}", str(theft_id))
        url = _url(url.replace("{watch_id}", str(watch_id)))
        body = {
            "bike_id": bike_id,
            "stolen_at": datetime.now(UTC).isoformat(),
            "ends_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        }
        response = client.request(method, url, headers=b, json=body, params=LIVE)
        if response.status_code < 400 and _mentions_bike(response, bike_id):
            reached.append((method, path, response.status_code))
    assert reached == []
    assert client.get("/api/v1/bikes/mine", headers=b).json() == []
    assert client.get("/api/v1/alerts/mine", headers=b).json()["total"] == 0
    # Everything that takes an id answers "not found" rather than "forbidden": ids reveal nothing.
    for url in (
        f"/api/v1/bikes/{bike_id}",
        f"/api/v1/thefts/{theft_id}",
        f"/api/v1/bikes/{bike_id}/slip",
        f"/api/v1/bikes/{bike_id}/watches",
    ):
        assert client.get(url, headers=b).status_code == 404, url
    assert client.delete(f"/api/v1/watches/{watch_id}", headers=b).status_code == 404
