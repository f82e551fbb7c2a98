"""Bearer tokens that were expired, tampered with, forged or outlived their account's rights,
and login rate limiting that a client cannot talk its way around."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import psycopg
import pytest
from api_helpers import KEYS, PASSWORD, add_user, config, login
from fastapi.testclient import TestClient

from api.app import create_app
from api.security import issue_token

ME = "/api/v1/users/me"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _tamper_role(token: str, role: str) -> str:
    """The same token with its payload's role changed and the old signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = role
    return f"{header}.{_b64(claims)}.{signature}"


def _forgeries(resident_token: str, resident_id: int) -> dict[str, str]:
    now = datetime.now(UTC)
    claims = {
        "sub": str(resident_id),
        "name": "x",
        "role": "admin",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
    }
    secret = KEYS["jwt_secret"]
    return {
        "role changed, signature kept": _tamper_role(resident_token, "admin"),
        "signature stripped": resident_token.rsplit(".", 1)[0] + ".",
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "other secret": jwt.encode(claims, b"z" * 32, algorithm="HS256"),
        "HS512 with the right secret": jwt.encode(claims, secret, algorithm="HS512"),
        "expired, right secret": issue_token(
            secret=secret,
            user_id=resident_id,
            username="x",
            role="resident",
            ttl_s=60,
            now=now - timedelta(hours=2),
        ),
        "no exp": jwt.encode({"sub": str(resident_id), "role": "admin"}, secret, "HS256"),
        "unknown user": issue_token(
            secret=secret, user_id=999_999, username="ghost", role="admin", ttl_s=60, now=now
        ),
        "sub not a number": jwt.encode({**claims, "sub": "1 OR 1=1"}, secret, "HS256"),
        "garbage": "a.b.c",
        "empty": "",
    }


def test_tampered_forged_and_expired_tokens_are_401(api_db: str, client: TestClient) -> None:
    resident_id = add_user(api_db, "tok-resident", "resident")
    token = login(client, "tok-resident")["Authorization"].removeprefix("Bearer ")
    for name, forged in _forgeries(token, resident_id).items():
        response = client.get("/api/v1/users", headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401, f"{name}: {response.status_code} {response.text}"
        assert response.headers["content-type"] == "application/problem+json", name
    # And the genuine token still works, for what a resident may do.
    assert client.get(ME, headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_a_demoted_account_loses_its_rights_with_the_same_token(
    api_db: str, client: TestClient
) -> None:
    officer_id = add_user(api_db, "tok-officer", "officer")
    officer = login(client, "tok-officer")
    assert client.get("/api/v1/thefts", headers=officer).status_code == 200
    with psycopg.connect(api_db) as conn:  # the token still says "officer"
        conn.execute("UPDATE users SET role = 'resident' WHERE user_id = %s", (officer_id,))
    assert client.get("/api/v1/thefts", headers=officer).status_code == 403


@pytest.mark.parametrize("header", ["X-Forwarded-For", "X-Real-IP", "Forwarded"])
def test_login_limit_is_not_evaded_by_forwarding_headers(api_db: str, header: str) -> None:
    add_user(api_db, f"limited-{header}", "resident")
    username = f"limited-{header}"
    with TestClient(create_app(config(api_db, login_max_failures=3))) as limited:
        for i in range(6):
            spoof = {header: f"203.0.113.{i}" if header != "Forwarded" else f"for=198.51.100.{i}"}
            limited.post(
                "/api/v1/auth/token", data={"username": username, "password": "no"}, headers=spoof
            )
        refused = limited.post(
            "/api/v1/auth/token",
            data={"username": username, "password": PASSWORD},
            headers={header: "192.0.2.99"},
        )
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0


def test_login_failures_do_not_reveal_which_usernames_exist(api_db: str) -> None:
    add_user(api_db, "exists", "resident")
    with TestClient(create_app(config(api_db))) as fresh:
        known = fresh.post("/api/v1/auth/token", data={"username": "exists", "password": "no"})
        unknown = fresh.post("/api/v1/auth/token", data={"username": "nobody", "password": "no"})
    assert known.status_code == unknown.status_code == 401
    assert known.json()["detail"] == unknown.json()["detail"]
