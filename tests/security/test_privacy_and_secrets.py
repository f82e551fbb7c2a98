"""National ID numbers never appear unmasked, and secrets never appear, in logs or responses.

The API runs as a real ``tagtrail -v api`` process (INFO logging, uvicorn's access log) with
its keys from the environment. A registration flow goes through it — event, booking, a
registration, a duplicate (409), an invalid ID (422), search, the bike, the slip, an owner
change, audit listing — plus a failed and a good login. Then its whole log, every response
body and every row of every table are searched for the ID numbers in clear, the full phone
numbers in lists, the JWT secret, the ID keys and the passwords.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from api_helpers import PASSWORD, add_user
from api_subprocess import start_api, stop_api
from scenarios import registration
from testsupport import free_port

SECRETS = {
    "TAGTRAIL_JWT_SECRET": "jwt-" + "9f3c2a71" * 6,
    "TAGTRAIL_ID_HASH_KEY": "hash-" + "5be0d1c4" * 6,
    "TAGTRAIL_ID_ENC_KEY": "enc-" + "a17e44f0" * 6,
}
WRONG_PASSWORD = "Wr0ng-but-still-a-secret"


@pytest.fixture
def api_process(api_db: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``tagtrail -v api`` on a free port; yields (base URL, log file)."""
    port = free_port()
    log = tmp_path / "api.log"
    env = {
        **os.environ,
        **SECRETS,
        "TAGTRAIL_DATABASE_URL": api_db,
        "TAGTRAIL_DATA_DIR": str(tmp_path / "data"),
        "PYTHONUNBUFFERED": "1",
    }
    proc = start_api(port, env, log, verbose=True)
    try:
        yield f"http://127.0.0.1:{port}", log
    finally:
        stop_api(proc)


def _table_text(url: str) -> str:
    """Every row of every table as text (what a database dump would show)."""
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r'"
        ).fetchall()
        chunks = []
        for (table,) in tables:
            rows = conn.execute(f'SELECT t::text FROM "{table}" t').fetchall()
            chunks.extend(r[0] for r in rows)
        return "\n".join(chunks)


def test_registration_flow_never_shows_id_numbers_or_secrets(
    api_db: str, api_process: tuple[str, Path]
) -> None:
    base, log = api_process
    add_user(api_db, "priv-registrar", "registrar")
    add_user(api_db, "priv-officer", "officer")
    add_user(api_db, "priv-auditor", "auditor")
    add_user(api_db, "priv-admin", "admin")
    bodies: list[str] = []
    with httpx.Client(base_url=base, timeout=30) as http:

        def call(method: str, url: str, **kwargs: object) -> httpx.Response:
            response = http.request(method, url, **kwargs)  # type: ignore[arg-type]
            bodies.append(response.text)
            assert response.status_code < 500, response.text
            return response

        def token(user: str) -> dict[str, str]:
            got = call("POST", "/api/v1/auth/token", data={"username": user, "password": PASSWORD})
            return {"Authorization": f"Bearer {got.json()['access_token']}"}

        bad = call(
            "POST", "/api/v1/auth/token",
            data={"username": "priv-registrar", "password": WRONG_PASSWORD},
        )  # fmt: skip
        assert bad.status_code == 401
        registrar, officer = token("priv-registrar"), token("priv-officer")
        auditor, admin = token("priv-auditor"), token("priv-admin")

        body = registration(8101)
        id_number, phone = body["owner"]["id_number"], body["owner"]["phone"]
        made = call("POST", "/api/v1/bikes", json=body, headers=registrar)
        assert made.status_code == 201, made.text
        bike_id = made.json()["bike_id"]
        again = call("POST", "/api/v1/bikes", json=body, headers=registrar)
        assert again.status_code == 409
        wrong_id = id_number[:-1] + ("0" if id_number[-1] != "0" else "1")
        invalid = registration(8102)
        invalid["owner"]["id_number"] = wrong_id
        assert call("POST", "/api/v1/bikes", json=invalid, headers=registrar).status_code == 422
        new_owner = registration(8103)["owner"]
        call("GET", "/api/v1/bikes", params={"plate": body["plate"]}, headers=officer)
        call("GET", f"/api/v1/bikes/{bike_id}", headers=registrar)
        call("GET", f"/api/v1/bikes/{bike_id}/slip", headers=registrar)
        changed = call(
            "POST", f"/api/v1/bikes/{bike_id}/owner", json={"owner": new_owner},
            headers=registrar,
        )  # fmt: skip
        assert changed.status_code < 400, changed.text
        call("GET", "/api/v1/audit", headers=auditor)
        call("GET", "/api/v1/users", headers=admin)
    logged = log.read_text(errors="replace")
    assert "POST /api/v1/bikes" in logged  # the access log is on: there was something to search
    everything = {"log": logged, "responses": "\n".join(bodies), "database": _table_text(api_db)}
    numbers = [id_number, wrong_id, new_owner["id_number"]]
    for where, text in everything.items():
        for number in numbers:
            assert number not in text, f"an ID number in clear in the {where}"
            assert number[:14] not in text, f"most of an ID number in the {where}"
        for name, secret in SECRETS.items():
            assert secret not in text, f"{name} in the {where}"
        assert PASSWORD not in text, f"a password in the {where}"
        assert WRONG_PASSWORD not in text, f"a mistyped password in the {where}"
    assert id_number[-4:] in "\n".join(bodies)  # the masked form is what is shown
    searched = [b for b in bodies if '"owner_phone"' in b]
    assert searched
    assert all(phone not in b for b in searched), "a full phone number in a list"
