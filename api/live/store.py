"""The SQL side of the API's live push: the channel migration 0035 notifies on.

Migration 0035 sends ``NOTIFY tagtrail_live`` (ids only, never personal data) when an alert, a
stolen-match flag or passages are stored; the API listens on one connection per process
(``api/live/listener.py``) and keeps it honest with :func:`ping`. Where those triggers cannot
be (Citus), the engine notifies after its commits instead
(:class:`track_engine.db.live_notify.AfterCommit`).
"""

from __future__ import annotations

import logging

import psycopg

from track_engine.live_channel import LIVE_CHANNEL

log = logging.getLogger(__name__)

CHANNEL = LIVE_CHANNEL


async def listen(conn: psycopg.AsyncConnection) -> None:
    """Subscribe ``conn`` (autocommit) to the live channel."""
    await conn.execute(f"LISTEN {CHANNEL}")


async def ping(conn: psycopg.AsyncConnection) -> None:
    """A trivial round trip: raises when the connection is gone."""
    await conn.execute("SELECT 1")
