"""/api/v1/notifications: who may subscribe to what, with which addresses; a user's own
subscriptions only; webhook secrets shown once; apprise tokens masked; every change audited."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from api_helpers import add_user, config, create_migrated_database, login
from fastapi.testclient import TestClient
from testsupport import drop_database

from api.app import create_app

SUBS = "/api/v1/notifications/subscriptions"


@pytest.fixture(scope="module")
def api_db(pg_admin_url: str) -> Iterator[str]:
    """A migrated database shared by the module's tests."""
    name, url = create_migrated_database(pg_admin_url)
    try:
        yield url
    finally:
        drop_database(pg_admin_url, name)


@pytest.fixture(scope="module")
def client(api_db: str) -> Iterator[TestClient]:
    """The API with the default target policy (no private webhooks) and apprise's Telegram."""
    with TestClient(create_app(config(api_db, notify_apprise_schemes=("tgram",)))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def who(api_db: str, client: TestClient) -> dict[str, dict[str, str]]:
    """Headers of one account per role, plus a second resident."""
    out = {}
    for role in ("admin", "officer", "registrar", "resident", "auditor"):
        add_user(api_db, f"p-{role}", role)
        out[role] = login(client, f"p-{role}")
    add_user(api_db, "p-resident2", "resident")
    out["resident2"] = login(client, "p-resident2")
    return out


def _problem(response: object, status: int) -> dict:
    assert getattr(response, "status_code", None) == status, getattr(response, "text", "")
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    return dict(response.json())  # type: ignore[attr-defined]


def test_kinds_follow_the_role(client: TestClient, who: dict[str, dict[str, str]]) -> None:
    mail = {"channel": "email", "address": "x@example.org"}
    problem = _problem(
        client.post(SUBS, json={**mail, "kinds": ["stolen_seen"]}, headers=who["resident"]), 403
    )
    assert "bike_moved" in problem["detail"]
    _problem(client.post(SUBS, json={**mail, "kinds": ["bike_moved"]}, headers=who["officer"]), 403)
    for role in ("registrar", "auditor"):
        _problem(client.post(SUBS, json={**mail, "kinds": ["bike_moved"]}, headers=who[role]), 403)
    ok = client.post(SUBS, json={**mail, "kinds": ["stolen_frame", "stolen_seen"]},
                     headers=who["admin"])  # fmt: skip
    assert ok.status_code == 201, ok.text
    assert ok.json()["kinds"] == ["stolen_frame", "stolen_seen"]


@pytest.mark.parametrize(
    ("channel", "address"),
    [
        ("email", "not-an-address"),
        ("email", "a@example.org\r\nBcc: everyone@example.org"),
        ("webhook", "ftp://example.org/hook"),
        ("webhook", "http://127.0.0.1:8000/internal"),  # loopback: refused by default
        ("webhook", "https://user:pw@example.org/hook"),
        ("apprise", "json://example.org/"),  # generic HTTP: not in the allowed schemes
        ("apprise", "tgram://"),  # Telegram without bot token: apprise cannot use it
    ],
)
def test_unusable_addresses_are_422(
    client: TestClient, who: dict[str, dict[str, str]], channel: str, address: str
) -> None:
    body = {"channel": channel, "address": address, "kinds": ["bike_moved"]}
    _problem(client.post(SUBS, json=body, headers=who["resident"]), 422)


def test_unknown_fields_and_kinds_are_422(
    client: TestClient, who: dict[str, dict[str, str]]
) -> None:
    base = {"channel": "email", "address": "a@example.org", "kinds": ["bike_moved"]}
    _problem(client.post(SUBS, json={**base, "extra": 1}, headers=who["resident"]), 422)
    _problem(
        client.post(SUBS, json={**base, "kinds": ["where_is_it"]}, headers=who["resident"]), 422
    )
    _problem(client.post(SUBS, json={**base, "kinds": []}, headers=who["resident"]), 422)


def test_own_subscriptions_only_secrets_once_and_audited(
    api_db: str, client: TestClient, who: dict[str, dict[str, str]]
) -> None:
    hook = client.post(
        SUBS,
        json={"channel": "webhook", "address": "https://hooks.example.org/tt",
              "kinds": ["stolen_seen"]},
        headers=who["officer"],
    )  # fmt: skip
    assert hook.status_code == 201, hook.text
    sub_id = hook.json()["subscription_id"]
    assert len(hook.json()["webhook_secret"]) >= 32
    listed = client.get(SUBS, headers=who["officer"]).json()
    assert [(s["subscription_id"], s["webhook_secret"]) for s in listed] == [(sub_id, None)]

    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    chat = client.post(
        SUBS,
        json={"channel": "apprise", "address": f"tgram://{token}/987654", "kinds": ["bike_moved"]},
        headers=who["resident"],
    )
    assert chat.status_code == 201, chat.text
    assert token not in chat.json()["address"]  # the bot token is masked
    assert chat.json()["address"].startswith("tgram://")

    # Another resident's id answers like a missing one.
    chat_id = chat.json()["subscription_id"]
    for method in ("PATCH", "DELETE"):
        _problem(client.request(method, f"{SUBS}/{chat_id}", json={"enabled": False},
                                headers=who["resident2"]), 404)  # fmt: skip
    assert client.get(SUBS, headers=who["resident2"]).json() == []

    changed = client.patch(f"{SUBS}/{chat_id}", json={"enabled": False}, headers=who["resident"])
    assert changed.status_code == 200, changed.text
    assert changed.json()["enabled"] is False
    _problem(client.patch(f"{SUBS}/{chat_id}", json={"kinds": ["stolen_seen"]},
                          headers=who["resident"]), 403)  # fmt: skip
    assert client.delete(f"{SUBS}/{chat_id}", headers=who["resident"]).status_code == 204
    assert client.get(SUBS, headers=who["resident"]).json() == []
    _problem(client.delete(f"{SUBS}/{chat_id}", headers=who["resident"]), 404)

    with psycopg.connect(api_db) as conn:
        actions = conn.execute(
            "SELECT actor, action FROM audit_log WHERE subject = %s ORDER BY audit_id",
            (f"subscription:{chat_id}",),
        ).fetchall()
        stored_secret = conn.execute(
            "SELECT webhook_secret FROM notice_subscriptions WHERE subscription_id = %s", (sub_id,)
        ).fetchone()
    assert actions == [
        ("p-resident", "notice.subscribe"),
        ("p-resident", "notice.subscription_change"),
        ("p-resident", "notice.unsubscribe"),
    ]
    assert stored_secret == (hook.json()["webhook_secret"],)


def test_notices_list_is_own_and_outbox_is_for_admins(
    client: TestClient, who: dict[str, dict[str, str]]
) -> None:
    mine = client.get("/api/v1/notifications/notices", headers=who["resident"])
    assert mine.status_code == 200, mine.text
    assert mine.json()["items"] == []
    for role in ("officer", "resident", "registrar", "auditor"):
        _problem(client.get("/api/v1/notifications/outbox", headers=who[role]), 403)
    assert client.get("/api/v1/notifications/outbox", headers=who["admin"]).status_code == 200
    _problem(client.post("/api/v1/notifications/outbox/999/retry", headers=who["admin"]), 404)


def test_database_roles_keep_secrets_and_history(api_db: str) -> None:
    """The read-only role sees subscriptions but not webhook secrets nor apprise URLs (they
    carry service tokens); the API's role appends delivery attempts but never rewrites them."""
    with psycopg.connect(api_db) as conn:
        conn.execute("SET ROLE tagtrail_readonly")
        conn.execute("SELECT subscription_id, channel, kinds FROM notice_subscriptions")
        for column in ("webhook_secret", "address"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute(f"SELECT {column} FROM notice_subscriptions")
        conn.execute("RESET ROLE")
        conn.execute("SET ROLE tagtrail_api")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE notice_attempts SET error = ''")
