"""Login under attack, through a real ``tagtrail api`` process (uvicorn, real sockets) where a
TestClient would hide the bug: forwarded addresses, floods, oversized bodies; and the account
rules behind it (password policy, token revocation on a password change, audited failures).

Each test would fail on the API as it was: uvicorn believed ``X-Forwarded-For`` from loopback,
the limiter counted only (username, address) pairs, every login held a pooled connection while
argon2 ran, bodies of any size were read, any 8 characters made a password, tokens outlived a
password change (there was none), and failed logins left no trace in the audit log.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from api_helpers import PASSWORD, add_user, config, login
from api_subprocess import start_api, stop_api
from fastapi.testclient import TestClient
from testsupport import free_port

from api.app import create_app

TOKEN = "/api/v1/auth/token"
ApiFactory = Callable[..., str]


@pytest.fixture
def api_server(api_db: str, tmp_path: Path) -> Iterator[ApiFactory]:
    """Start ``tagtrail api`` processes on free ports with extra ``TAGTRAIL_*`` settings;
    each call returns its base URL. All are stopped (SIGINT) at the end of the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(**settings: str) -> str:
        port = free_port()
        log = tmp_path / f"api-{port}.log"
        env = {
            **os.environ,
            "TAGTRAIL_DATABASE_URL": api_db,
            "TAGTRAIL_DATA_DIR": str(tmp_path / "data"),
            **{f"TAGTRAIL_{k.upper()}": v for k, v in settings.items()},
        }
        procs.append(start_api(port, env, log))
        return f"http://127.0.0.1:{port}"

    try:
        yield start
    finally:
        for proc in procs:
            stop_api(proc)


def _audit(url: str, action: str, actors: str) -> list[tuple[str, str, dict[str, str]]]:
    """(actor, address, detail) of the audit entries of ``action`` by actors matching the
    LIKE pattern ``actors`` (the module's tests share one database)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """SELECT actor, remote_addr, detail FROM audit_log
               WHERE action = %s AND actor LIKE %s ORDER BY audit_id""",
            (action, actors),
        ).fetchall()
    return [(str(a), str(r), dict(d)) for a, r, d in rows]


def test_x_forwarded_for_from_loopback_neither_resets_the_login_limit_nor_forges_the_audit(
    api_db: str, api_server: ApiFactory
) -> None:
    add_user(api_db, "xff.target", "resident")
    base = api_server()  # no trusted proxy configured: the default
    with httpx.Client(base_url=base, timeout=30) as http:
        for i in range(5):
            bad = http.post(
                TOKEN,
                data={"username": "xff.target", "password": "not the password"},
                headers={"X-Forwarded-For": f"203.0.113.{i}"},
            )
            assert bad.status_code == 401, bad.text
        refused = http.post(
            TOKEN,
            data={"username": "xff.target", "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.77"},
        )
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["retry-after"]) > 0
    failures = _audit(api_db, "auth.login_failed", "xff.%")
    assert [(actor, addr) for actor, addr, _ in failures] == [("xff.target", "127.0.0.1")] * 5


def test_one_address_spraying_usernames_is_refused_while_the_owner_elsewhere_logs_in(
    api_db: str, api_server: ApiFactory
) -> None:
    add_user(api_db, "spray.owner", "officer")
    base = api_server(trusted_proxies='["127.0.0.1"]')
    attacker = {"X-Forwarded-For": "203.0.113.66"}
    with httpx.Client(base_url=base, timeout=30) as http:
        answers = Counter()
        for i in range(24):  # the owner's account among made-up ones, all from one address
            username = "spray.owner" if i % 3 == 0 else f"made-up-{i}"
            answers[
                http.post(
                    TOKEN, data={"username": username, "password": "guess"}, headers=attacker
                ).status_code
            ] += 1
        fresh_name = http.post(
            TOKEN, data={"username": "never-tried", "password": "guess"}, headers=attacker
        )
        owner = http.post(
            TOKEN,
            data={"username": "spray.owner", "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.5"},
        )
        neighbour = http.post(
            TOKEN,
            data={"username": "never-tried", "password": "guess"},
            headers={"X-Forwarded-For": "198.51.100.6"},
        )
    assert answers == Counter({401: 20, 429: 4})  # 20 failures per address, then refused
    assert fresh_name.status_code == 429, fresh_name.text
    assert owner.status_code == 200, owner.text  # the flood did not lock the owner out
    assert neighbour.status_code == 401, neighbour.text
    # The forwarded address is the one audited, since the proxy is trusted.
    failed = _audit(api_db, "auth.login_failed", "%")
    sprayed = {addr for a, addr, _ in failed if a == "spray.owner" or a.startswith("made-up-")}
    assert sprayed == {"203.0.113.66"}
    assert [addr for _, addr, _ in _audit(api_db, "auth.login", "spray.%")] == ["198.51.100.5"]


def test_many_addresses_guessing_one_account_are_refused(
    api_db: str, api_server: ApiFactory
) -> None:
    add_user(api_db, "wanted", "officer")
    base = api_server(trusted_proxies='["127.0.0.1"]')
    with httpx.Client(base_url=base, timeout=30) as http:
        codes = [
            http.post(
                TOKEN,
                data={"username": "wanted", "password": f"guess {i}"},
                headers={"X-Forwarded-For": f"10.{i // 250}.{i % 250}.1"},
            ).status_code
            for i in range(52)
        ]
    assert codes[:50] == [401] * 50
    assert codes[50:] == [429, 429]


def test_a_login_flood_gets_429_with_retry_after_never_5xx(
    api_db: str, api_server: ApiFactory
) -> None:
    base = api_server(trusted_proxies='["127.0.0.1"]')
    barrier = threading.Barrier(40)
    answers: list[httpx.Response] = []

    def attempt(i: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            barrier.wait()
            answers.append(
                http.post(
                    TOKEN,
                    data={"username": f"nobody-{i}", "password": "guess"},
                    headers={"X-Forwarded-For": f"10.1.{i}.1"},  # one address each
                )
            )

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    codes = Counter(r.status_code for r in answers)
    assert len(answers) == 40
    assert set(codes) <= {401, 429}, codes
    busy = [r for r in answers if r.status_code == 429]
    assert busy, codes  # two hash slots cannot take 40 at once
    assert {r.headers["retry-after"] for r in busy} == {"1"}
    assert codes[401] == len(_audit(api_db, "auth.login_failed", "nobody-%"))


def _raw_request(port: int, head: bytes, body_parts: Iterator[bytes]) -> bytes:
    """Send ``head`` and then body parts until the server answers (or stops reading); the
    bytes of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        sock.settimeout(0.05)
        answer = b""
        for part in body_parts:
            with contextlib.suppress(TimeoutError):
                answer += sock.recv(65536)
            if answer:
                break
            try:
                sock.sendall(part)
            except OSError:  # the server closed after answering
                break
        sock.settimeout(30)
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def test_a_body_over_the_bound_is_refused_with_413_before_it_is_read(
    api_server: ApiFactory,
) -> None:
    base = api_server()
    port = int(base.rsplit(":", 1)[1])
    sent = 0

    def hundred_megabytes() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(100 * 16):
            sent += 65536
            yield b"a" * 65536

    declared = _raw_request(
        port,
        b"POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 104857600\r\n\r\n",
        hundred_megabytes(),
    )
    assert declared.startswith(b"HTTP/1.1 413"), declared[:200]
    assert sent < 10 * 1024 * 1024  # answered long before the 100 MB were sent

    sent = 0
    chunked = _raw_request(
        port,
        b"POST /api/v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n",
        (b"10000\r\n" + part + b"\r\n" for part in hundred_megabytes()),
    )
    assert chunked.startswith(b"HTTP/1.1 413"), chunked[:200]
    assert sent < 20 * 1024 * 1024  # the 8 MiB bound, not the 100 MB
    with httpx.Client(base_url=base, timeout=30) as http:  # and the API is still there
        assert http.get("/api/v1/health").status_code == 200


@pytest.mark.parametrize(
    "password", ["12345678", "password", "1234567890", "Password123", "qwertyuiop", "short pw"]
)
def test_short_and_common_passwords_are_refused(
    client: TestClient, headers: dict[str, dict[str, str]], password: str
) -> None:
    body = {"username": "weak.pw", "password": password, "role": "officer"}
    refused = client.post("/api/v1/users", json=body, headers=headers["admin"])
    assert refused.status_code == 422, refused.text
    assert "password" in refused.json()["detail"]


def test_a_password_change_revokes_every_earlier_token(api_db: str) -> None:
    add_user(api_db, "changer", "registrar")
    admin_id = add_user(api_db, "pw.admin", "admin")
    del admin_id
    with TestClient(create_app(config(api_db))) as client:
        first, second = login(client, "changer"), login(client, "changer")
        wrong = client.post(
            "/api/v1/users/me/password",
            json={"current_password": "not it", "new_password": "a much better secret"},
            headers=first,
        )
        assert wrong.status_code == 400, wrong.text
        common = client.post(
            "/api/v1/users/me/password",
            json={"current_password": PASSWORD, "new_password": "password123"},
            headers=first,
        )
        assert common.status_code == 422, common.text
        changed = client.post(
            "/api/v1/users/me/password",
            json={"current_password": PASSWORD, "new_password": "a much better secret"},
            headers=first,
        )
        assert changed.status_code == 200, changed.text
        fresh = {"Authorization": f"Bearer {changed.json()['access_token']}"}
        for old in (first, second):
            gone = client.get("/api/v1/users/me", headers=old)
            assert gone.status_code == 401
            assert "password changed" in gone.json()["detail"]
        assert client.get("/api/v1/users/me", headers=fresh).status_code == 200
        assert (
            client.post(TOKEN, data={"username": "changer", "password": PASSWORD}).status_code
            == 401
        )
        # An admin's reset revokes the tokens of the new password too.
        me = client.get("/api/v1/users/me", headers=fresh).json()
        reset = client.put(
            f"/api/v1/users/{me['user_id']}/password",
            json={"new_password": "set by the admin desk"},
            headers=login(client, "pw.admin"),
        )
        assert reset.status_code == 204, reset.text
        assert client.get("/api/v1/users/me", headers=fresh).status_code == 401
        login(client, "changer", "set by the admin desk")
    assert len(_audit(api_db, "user.password_change", "changer")) == 1
    assert len(_audit(api_db, "user.password_reset", "pw.admin")) == 1
    wrong_current = _audit(api_db, "auth.login_failed", "changer")
    assert [(a, d["reason"]) for a, _, d in wrong_current] == [
        ("changer", "wrong-password"),
        ("changer", "wrong-password"),
    ]


def test_failed_logins_are_audited_with_their_reason(api_db: str) -> None:
    add_user(api_db, "audited", "resident")
    user_id = add_user(api_db, "switched.off", "resident")
    with psycopg.connect(api_db) as conn:
        conn.execute("UPDATE users SET disabled = true WHERE user_id = %s", (user_id,))
    with TestClient(create_app(config(api_db))) as client:
        for username, password in (
            ("audited", "wrong one"),
            ("no.such.user", "anything"),
            ("switched.off", PASSWORD),
        ):
            assert (
                client.post(TOKEN, data={"username": username, "password": password}).status_code
                == 401
            )
    tried = ("audited", "no.such.user", "switched.off")
    failed = [f for f in _audit(api_db, "auth.login_failed", "%") if f[0] in tried]
    assert [(a, d["reason"]) for a, _, d in failed] == [
        ("audited", "wrong-password"),
        ("no.such.user", "unknown-user"),
        ("switched.off", "disabled"),
    ]
    assert all(addr == "testclient" for _, addr, _ in failed)
    with psycopg.connect(api_db) as conn:
        text = str(conn.execute("SELECT * FROM audit_log").fetchall())
    assert "wrong one" not in text
    assert PASSWORD not in text


def test_a_login_holds_no_pooled_connection_while_argon2_runs(
    api_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import api.users.service as users_service

    add_user(api_db, "pool.watcher", "officer")
    in_use: list[int] = []
    app = create_app(config(api_db))
    real_verify = users_service.verify_password

    def watched_verify(password_hash: str | None, password: str) -> bool:
        stats = app.state.pool.get_stats()  # the pool of the views on threads
        in_use.append(stats["pool_size"] - stats.get("pool_available", 0))
        return real_verify(password_hash, password)  # the real argon2, unchanged

    monkeypatch.setattr(users_service, "verify_password", watched_verify)
    with TestClient(app) as client:
        login(client, "pool.watcher")
        assert client.post(TOKEN, data={"username": "nobody", "password": "x"}).status_code == 401
    assert in_use == [0, 0]
