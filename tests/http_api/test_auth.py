"""Login, tokens, rate limiting and the account endpoints."""

from __future__ import annotations

import subprocess
import sys

import psycopg
from api_helpers import PASSWORD, add_user, config
from fastapi.testclient import TestClient

from api.app import create_app
from api.security import hash_password, id_number_valid, issue_token, verify_password


def test_password_hashes_are_argon2_and_verify() -> None:
    hashed = hash_password("s3cret-pass")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "s3cret-pass")
    assert not verify_password(hashed, "wrong")
    assert not verify_password(None, "anything")


def test_gb11643_checksum() -> None:
    assert id_number_valid("11010519491231002X")
    assert id_number_valid("110101199003074258")
    assert not id_number_valid("110101199003074259")
    assert not id_number_valid("11010119900307425")
    assert not id_number_valid("１１0101199003074258")


def test_login_issues_a_token_that_opens_users_me(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    me = client.get("/api/v1/users/me", headers=headers["officer"])
    assert me.status_code == 200, me.text
    assert me.json()["role"] == "officer"
    assert "password_hash" not in me.text


def test_bad_tokens_get_401_problem(client: TestClient) -> None:
    for value in (
        "Bearer nonsense",
        "Bearer "
        + issue_token(
            secret=b"x" * 32,
            user_id=1,
            username="a",
            role="admin",
            ttl_s=60,
            now=__import__("datetime").datetime.now(__import__("datetime").UTC),
        ),
    ):
        response = client.get("/api/v1/users/me", headers={"Authorization": value})
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"


def test_expired_token_is_refused(api_db: str) -> None:
    add_user(api_db, "shortlived", "officer")
    with TestClient(create_app(config(api_db, token_ttl_s=-10))) as short:
        token = short.post(
            "/api/v1/auth/token", data={"username": "shortlived", "password": PASSWORD}
        ).json()["access_token"]
        response = short.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_login_is_rate_limited_per_user_and_address(api_db: str) -> None:
    add_user(api_db, "target", "resident")
    with TestClient(create_app(config(api_db, login_max_failures=3))) as limited:
        for _ in range(3):
            bad = limited.post("/api/v1/auth/token", data={"username": "target", "password": "x"})
            assert bad.status_code == 401
        refused = limited.post(
            "/api/v1/auth/token", data={"username": "target", "password": PASSWORD}
        )
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        # Another account from the same address is not locked out.
        add_user(api_db, "bystander", "resident")
        ok = limited.post(
            "/api/v1/auth/token", data={"username": "bystander", "password": PASSWORD}
        )
        assert ok.status_code == 200


def test_disabled_account_loses_access_at_once(
    api_db: str, client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    user_id = add_user(api_db, "leaver", "registrar")
    from api_helpers import login

    token = login(client, "leaver")
    patched = client.patch(
        f"/api/v1/users/{user_id}", json={"disabled": True}, headers=headers["admin"]
    )
    assert patched.status_code == 200, patched.text
    assert client.get("/api/v1/users/me", headers=token).status_code == 401


def test_admin_creates_users_and_duplicates_conflict(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    body = {"username": "new.officer", "password": "long enough pw", "role": "officer"}
    assert client.post("/api/v1/users", json=body, headers=headers["admin"]).status_code == 201
    again = client.post("/api/v1/users", json=body, headers=headers["admin"])
    assert again.status_code == 409
    assert "taken" in again.json()["detail"]
    listed = client.get("/api/v1/users", params={"limit": 2}, headers=headers["admin"]).json()
    assert len(listed["items"]) == 2
    assert listed["total"] >= 6


def test_cli_creates_a_user(api_db: str, tmp_path: object) -> None:
    env = {"TAGTRAIL_DATABASE_URL": api_db, "TAGTRAIL_DATA_DIR": str(tmp_path), "PATH": ""}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tagtrail",
            "users",
            "create",
            "--username",
            "cli.admin",
            "--password",
            "from the shell",
            "--role",
            "admin",
        ],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    with psycopg.connect(api_db) as conn:
        row = conn.execute("SELECT role FROM users WHERE username = 'cli.admin'").fetchone()
    assert row == ("admin",)
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "tagtrail",
            "users",
            "create",
            "--username",
            "x",
            "--password",
            "short",
            "--role",
            "admin",
        ],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
