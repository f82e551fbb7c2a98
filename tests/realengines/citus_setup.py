"""Setting a TagTrail database up on Citus exactly as docs/deployment.md says: migrate against the
coordinator, then run deploy/citus/distribute.sql as written."""

from __future__ import annotations

import psycopg

from tagtrail.bench.engines import migrate_and_distribute

__all__ = ["distribution", "migrate_and_distribute"]


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
