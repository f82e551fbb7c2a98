"""Setting a TagTrail database up on Citus exactly as docs/deploy.md says: migrate against the
coordinator, then run deploy/citus/distribute.sql as written."""

from __future__ import annotations

from pathlib import Path

import psycopg

from track_engine.db.migrate import migrate

DISTRIBUTE_SQL = Path(__file__).resolve().parents[2] / "deploy" / "citus" / "distribute.sql"


def migrate_and_distribute(url: str) -> None:
    """``tagtrail db migrate``, then ``psql -v ON_ERROR_STOP=1 -f deploy/citus/distribute.sql``."""
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(DISTRIBUTE_SQL.read_text().encode())


def distribution(url: str) -> dict[str, tuple[str, str | None, int]]:
    """Per Citus table: (kind, distribution column, colocation id)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name::text, citus_table_type, distribution_column, colocation_id "
            "FROM citus_tables"
        ).fetchall()
    return {
        str(t): (str(kind), None if col == "<none>" else str(col), int(colo))
        for t, kind, col, colo in rows
    }
