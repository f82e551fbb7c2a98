"""The officers' hot lookups (route, last seen, next readers) run as ``async`` views on their
own asyncio connections: the account is still re-read on every request, a disabled account or
a changed role takes effect at once, unknown bikes are 404 and audited as such (who looked
for what), refused requests are not audited, and every answer is audited exactly once."""

from __future__ import annotations

import psycopg
from api_helpers import add_user, login
from fastapi.testclient import TestClient
from scenarios import registration

LOOKUPS = (
    "/api/v1/routes/NOPLATE",
    "/api/v1/bikes/999999/last-seen",
    "/api/v1/bikes/999999/next-readers",
)


def _audit_count(url: str, actor: str) -> int:
    """The actor's location lookups in the audit log (logging in is audited too)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM audit_log WHERE actor = %s"
            " AND (action LIKE 'route.%%' OR action LIKE 'bike.%%')",
            (actor,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_account_is_reread_on_every_lookup(api_db: str, client: TestClient) -> None:
    add_user(api_db, "async-officer", "officer")
    officer = login(client, "async-officer")
    for path in LOOKUPS:  # the officer gets in: unknown bike or plate, 404
        response = client.get(path, params={"reason": "checking a tip"}, headers=officer)
        assert response.status_code == 404, (path, response.text)
    with psycopg.connect(api_db) as conn:
        conn.execute("UPDATE users SET role = 'resident' WHERE username = 'async-officer'")
    for path in LOOKUPS:  # the same token, a changed role: refused at once
        response = client.get(path, params={"reason": "checking a tip"}, headers=officer)
        assert response.status_code == 403, (path, response.text)
    with psycopg.connect(api_db) as conn:
        conn.execute(
            "UPDATE users SET role = 'officer', disabled = true WHERE username = 'async-officer'"
        )
    for path in LOOKUPS:  # a disabled account: 401
        response = client.get(path, params={"reason": "checking a tip"}, headers=officer)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    # The three misses are on record (who looked for what); the refused requests are not.
    assert _audit_count(api_db, "async-officer") == len(LOOKUPS)


def test_lookups_need_a_reason_and_a_token(client: TestClient) -> None:
    for path in LOOKUPS:
        assert client.get(path, params={"reason": "checking a tip"}).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer nonsense"}).status_code == 401


def test_refused_lookups_are_not_audited_and_misses_are(
    api_db: str, client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    made = client.post("/api/v1/bikes", json=registration(8101), headers=headers["registrar"])
    assert made.status_code == 201, made.text
    bike_id, plate = made.json()["bike_id"], made.json()["plate"]
    officer = headers["officer"]
    before = _audit_count(api_db, "the-officer")
    # Never seen: 404 (503 first when no road network is loaded). The answer's audit row
    # rolls back with the request's transaction; the miss is recorded in one of its own.
    misses = 0
    for path in (
        f"/api/v1/routes/{plate}",
        f"/api/v1/bikes/{bike_id}/last-seen",
        f"/api/v1/bikes/{bike_id}/next-readers",
    ):
        response = client.get(path, params={"reason": "checking a tip"}, headers=officer)
        assert response.status_code in (404, 503), (path, response.text)
        misses += response.status_code == 404
        missing_reason = client.get(path, headers=officer)
        assert missing_reason.status_code == 400, (path, missing_reason.text)
    assert _audit_count(api_db, "the-officer") == before + misses
