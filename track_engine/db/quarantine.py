"""Messages the engine could not use, kept with the reason (nothing is dropped silently)."""

from __future__ import annotations

import psycopg


def keep(conn: psycopg.Connection, *, source: str, reason: str, payload: bytes) -> None:
    """Keep a message the engine could not use, with the reason."""
    conn.execute(
        "INSERT INTO quarantine (source, reason, payload) VALUES (%s, %s, %s)",
        (source, reason, payload),
    )
