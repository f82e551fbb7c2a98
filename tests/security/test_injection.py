"""SQL injection attempts and oversized or odd input on every text parameter of the API.

Every operation in the OpenAPI document is called, as a role it admits, with each payload in
each of its text parameters (path, query, header) and, for the registration body, in each
text field. The answer is always a clear 4xx or a success that treats the payload as plain
text: never a 5xx, never a row changed by a refused request, never another bike revealed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from fastapi.testclient import TestClient
from scenarios import line_city, registration

SQL = [
    "' OR '1'='1",
    "'; DROP TABLE audit_log; --",
    "1 UNION SELECT password_hash FROM users --",
    "%' OR plate_key LIKE '%",
    "$$; DELETE FROM reads; $$",
    "\\'; TRUNCATE bikes; --",
]
# 20,000 characters: past every limit the API sets, below httpx's own URL limit (65,536).
ODD = ["\x00", "A" * 20_000, "../../etc/passwd", "<script>alert(1)</script>", "{{7*7}}", "浙B·𝟘"]
PAYLOADS = SQL + ODD
FILLERS: dict[str, Any] = {
    "reason": "security test",
    "format": "csv",
    "max_seconds": 0.2,
    "max_events": 1,
}
H = dict[str, dict[str, str]]


@pytest.fixture(scope="module", autouse=True)
def road_network(api_db: str) -> None:
    """A road network: without one, routing answers 503 (not ready), which is not the point."""
    line_city(api_db)


def _counts(url: str) -> dict[str, int]:
    """Row count of every table except the audit log (lookups append to it by design)."""
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
            "AND c.relname <> 'audit_log'"
        ).fetchall()
        return {
            t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])  # type: ignore[index]
            for (t,) in tables
        }


def _text_params(op: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for param in op.get("parameters", []):
        schema = param.get("schema", {})
        types = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
        if "string" in types and schema.get("format") != "date-time":
            out.append(param)
        elif "integer" in types and param["in"] == "path":
            out.append(param)  # a number's place gets text too: must be a 422
    return out


def _calls(client: TestClient) -> list[tuple[str, str, str, dict[str, Any], list[str]]]:
    """(method, path template, parameter, its location, roles) for every text parameter."""
    doc = client.get("/openapi.json").json()
    calls = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            roles = op.get("x-roles") or ["admin"]
            for param in _text_params(op):
                calls.append((method.upper(), path, param["name"], param, roles))
    return calls


def _request(
    client: TestClient, method: str, path: str, name: str, where: str, value: str, hdrs: H
) -> int:
    query: dict[str, Any] = {}
    headers: dict[str, str] = {}
    url = path
    for placeholder in [p for p in path.split("/") if p.startswith("{")]:
        key = placeholder.strip("{}")
        url = url.replace(placeholder, quote(value, safe="") if key == name else "1")
    if where == "query":
        query[name] = value
    elif where == "header":
        if "\x00" in value or len(value) > 8000 or not value.isascii():
            return 400  # not sendable as a header at all
        headers[name] = value
    if path.startswith("/api/v1/routes/") or "/live/" in path or "last-seen" in path:
        query.update({k: v for k, v in FILLERS.items() if k not in query})
    elif path.endswith("/next-readers") or path.endswith("/companions"):
        query.setdefault("reason", FILLERS["reason"])
    response = client.request(method, url, params=query, headers={**hdrs, **headers})
    return response.status_code


@pytest.mark.timeout(240)
def test_no_text_parameter_gives_a_5xx_or_changes_data(
    api_db: str, client: TestClient, headers: H
) -> None:
    bike = client.post("/api/v1/bikes", json=registration(7001), headers=headers["registrar"])
    assert bike.status_code == 201, bike.text
    before = _counts(api_db)
    failures = []
    calls = [c for c in _calls(client) if c[0] == "GET"]
    assert len(calls) >= 20
    for method, path, name, param, roles in calls:
        role = next(
            r for r in ("officer", "admin", "auditor", "registrar", "resident") if r in roles
        )
        for value in PAYLOADS:
            status = _request(client, method, path, name, param["in"], value, {**headers[role]})
            if status >= 500:
                failures.append(f"{method} {path} {name}={value[:30]!r} -> {status}")
    assert failures == [], "\n".join(failures)
    assert _counts(api_db) == before


def test_search_with_injection_reveals_no_bike(client: TestClient, headers: H) -> None:
    made = client.post("/api/v1/bikes", json=registration(7002), headers=headers["registrar"])
    assert made.status_code == 201, made.text
    for field in ("plate", "frame_number"):
        for value in SQL:
            found = client.get("/api/v1/bikes", params={field: value}, headers=headers["officer"])
            assert found.status_code < 500, found.text
            if found.status_code == 200:
                body = found.json()
                items = body["items"] if isinstance(body, dict) else body
                assert items == [], f"{field}={value!r} found {items}"


REGISTRATION_TEXT = [
    ("owner", "name"), ("owner", "phone"), ("owner", "id_number"), ("owner", "address"),
    ("brand",), ("model",), ("colour",), ("frame_number",), ("motor_number",), ("plate",),
    ("tag_id",),
]  # fmt: skip


@pytest.mark.timeout(240)
def test_registration_text_fields_refuse_or_store_verbatim(
    api_db: str, client: TestClient, headers: H
) -> None:
    failures = []
    n = 7100
    for field in REGISTRATION_TEXT:
        for value in PAYLOADS:
            n += 1
            body = registration(n)
            target = body
            for key in field[:-1]:
                target = target[key]
            target[field[-1]] = value * 5 if value.startswith("AAAA") else value
            before = _counts(api_db)
            response = client.post("/api/v1/bikes", json=body, headers=headers["registrar"])
            if response.status_code >= 500:
                failures.append(f"{'.'.join(field)}={value[:30]!r} -> {response.status_code}")
            elif response.status_code >= 400:
                if _counts(api_db) != before:
                    failures.append(f"{'.'.join(field)}={value[:30]!r}: refused, data changed")
            elif field == ("brand",):
                bike = client.get(
                    f"/api/v1/bikes/{response.json()['bike_id']}", headers=headers["registrar"]
                )
                assert bike.json()["brand"] == value  # stored as text, not run as SQL
    assert failures == [], "\n".join(failures)
    with psycopg.connect(api_db) as conn:  # and every table the payloads named is still there
        for table in ("audit_log", "reads", "bikes", "users"):
            conn.execute(f"SELECT 1 FROM {table} LIMIT 1")


def test_oversized_login_and_json_bodies_are_4xx(client: TestClient, headers: H) -> None:
    huge = "x" * 1_000_000
    login = client.post("/api/v1/auth/token", data={"username": huge, "password": huge})
    assert 400 <= login.status_code < 500
    # A nesting bomb must not crash the JSON parser or the server.
    deep = b'{"bike_id": 1, "deep": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = client.post(
        "/api/v1/thefts",
        content=deep,
        headers={**headers["officer"], "Content-Type": "application/json"},
    )
    assert 400 <= response.status_code < 500
