"""The audit log cannot be changed or deleted: not through the API, not by the table's owner
through SQL, and not by a least-privilege application role even with every DML grant.

What *is* possible, and why the deployment guide says to run the API and engine as a role
that does not own the schema: a table owner (or superuser) may disable or drop the triggers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

TAMPERING = [
    "UPDATE audit_log SET actor = 'someone else'",
    "UPDATE audit_log SET reason = NULL WHERE true",
    "DELETE FROM audit_log",
    "DELETE FROM audit_log WHERE audit_id IN (SELECT audit_id FROM audit_log LIMIT 1)",
    "WITH gone AS (DELETE FROM audit_log RETURNING 1) SELECT count(*) FROM gone",
    "MERGE INTO audit_log a USING (SELECT 1) s ON true WHEN MATCHED THEN DELETE",
    "TRUNCATE audit_log",
    "TRUNCATE audit_log CASCADE",
]
OWNER_ONLY = [
    "ALTER TABLE audit_log DISABLE TRIGGER ALL",
    "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete",
    "DROP TRIGGER audit_log_no_update_delete ON audit_log",
    "ALTER TABLE audit_log RENAME TO audit_log_old",
    "DROP TABLE audit_log",
    "CREATE OR REPLACE FUNCTION audit_log_is_append_only() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$",
]


def _rows(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT * FROM audit_log ORDER BY 1").fetchall()


def _refused(url: str, statement: str) -> bool:
    with psycopg.connect(url) as conn:
        try:
            conn.execute(statement)
        except psycopg.Error:
            return True
        conn.rollback()  # never keep what got through
        return False


@pytest.fixture
def app_role_url(api_db: str) -> Iterator[str]:
    """A login role with the grants an application would have, owning nothing."""
    role = f"tagtrail_app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(api_db, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        for grant in (
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}",
            "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}",
            "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {}",
        ):
            conn.execute(sql.SQL(grant).format(sql.Identifier(role)))
    info = psycopg.conninfo.conninfo_to_dict(api_db)
    info["user"] = role
    try:
        yield psycopg.conninfo.make_conninfo(**info)
    finally:
        with psycopg.connect(api_db, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _some_audit(client: TestClient, headers: dict[str, dict[str, str]]) -> None:
    for who in ("officer", "auditor"):
        client.get("/api/v1/thefts", headers=headers[who])
    listed = client.get("/api/v1/audit", headers=headers["auditor"])
    assert listed.status_code == 200, listed.text
    assert listed.json()["total"] > 0


def test_owner_cannot_change_or_delete_audit_rows(
    api_db: str, client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    _some_audit(client, headers)
    before = _rows(api_db)
    for statement in TAMPERING:
        assert _refused(api_db, statement), statement
    assert _rows(api_db) == before


def test_application_role_cannot_change_delete_or_unprotect_it(
    api_db: str, app_role_url: str, client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    _some_audit(client, headers)
    before = _rows(api_db)
    for statement in TAMPERING + OWNER_ONLY:
        assert _refused(app_role_url, statement), statement
    with psycopg.connect(app_role_url) as conn:  # appending is what it is for
        conn.execute("INSERT INTO audit_log (actor, action) VALUES ('app', 'test.append')")
    after = _rows(api_db)
    assert after[: len(before)] == before
    assert len(after) == len(before) + 1


def test_the_api_has_no_way_to_change_the_audit_log(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    audit_ops = {(p, m) for p, ops in paths.items() if "audit" in p for m in ops}
    assert audit_ops == {("/api/v1/audit", "get")}
