"""Apply the numbered SQL migrations in ``migrations/``, once each, in order.

Safe to run twice (applied versions are recorded with a checksum and skipped) and concurrently
(a session advisory lock serialises migrators; the second one finds everything applied).
Each file runs in its own transaction together with its bookkeeping row.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import psycopg

from track_engine.db.rekey import rekey_identifiers
from track_engine.errors import MigrationError

_MIGRATION_LOCK_KEY = 0x7A67_7261_696C  # arbitrary constant: "tagtrail" migrations
_FILE_PATTERN = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Work SQL cannot do, run right after a migration's file in its transaction: 0065's keys are
# made by the one normalizer of plates and frame numbers (track_engine/identifiers.py).
_PYTHON_STEPS: dict[int, Callable[[psycopg.Connection], object]] = {65: rekey_identifiers}


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered SQL file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file, to notice a migration edited after it was applied."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """All migration files shipped with the package, sorted by version."""
    found: list[Migration] = []
    for entry in resources.files("track_engine.db").joinpath("migrations").iterdir():
        match = _FILE_PATTERN.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version number: {versions}")
    return found


def migrate(conninfo: str, *, until: int | None = None) -> list[Migration]:
    """Apply every pending migration (up to version ``until``, if given: a test that builds
    the schema as it was); return the ones this call applied."""
    applied_now: list[Migration] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK_KEY,))
        try:
            # Only when missing: CREATE ... IF NOT EXISTS still needs CREATE on the schema,
            # which the services' least-privilege roles (migration 0040) do not have, and they
            # run this at start-up to find everything applied.
            if conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,):
                conn.execute(
                    """CREATE TABLE IF NOT EXISTS schema_migrations (
                           version    integer PRIMARY KEY,
                           name       text NOT NULL,
                           checksum   text NOT NULL,
                           applied_at timestamptz NOT NULL DEFAULT now())"""
                )
            done = {
                int(v): str(c)
                for v, c in conn.execute("SELECT version, checksum FROM schema_migrations")
            }
            for migration in load_migrations():
                if until is not None and migration.version > until:
                    break
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.version:04d}_{migration.name} was changed after "
                            "it was applied; add a new migration instead of editing an old one"
                        )
                    continue
                try:
                    with conn.transaction():
                        conn.execute(migration.sql.encode())
                        step = _PYTHON_STEPS.get(migration.version)
                        if step is not None:
                            step(conn)
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name, checksum) "
                            "VALUES (%s, %s, %s)",
                            (migration.version, migration.name, migration.checksum),
                        )
                except psycopg.Error as exc:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} failed: {exc}"
                    ) from exc
                applied_now.append(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK_KEY,))
    return applied_now


def applied_versions(conninfo: str) -> list[tuple[int, str]]:
    """Versions and names recorded in ``schema_migrations`` (empty before the first migrate)."""
    with psycopg.connect(conninfo) as conn:
        if conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,):
            return []
        rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version")
        return [(int(v), str(n)) for v, n in rows]
