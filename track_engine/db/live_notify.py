"""The engine's own live notifications, where migration 0035's NOTIFY triggers cannot be.

On Citus the triggers are dropped (deploy/citus/distribute.sql); the engine then notifies on
the coordinator after its commits (:class:`AfterCommit`). Elsewhere this does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import orjson
import psycopg

from track_engine.live_channel import LIVE_CHANNEL as CHANNEL

log = logging.getLogger(__name__)


class AfterCommit:
    """The engine's own live notifications where migration 0035's triggers are gone.

    On Citus, deploy/citus/distribute.sql drops the NOTIFY triggers (a NOTIFY in a transaction
    that writes to several workers cannot be two-phase committed, and a trigger on a
    distributed table fires on a worker, where nobody listens). The engine then sends the same
    payloads itself, on the coordinator, in a short transaction of their own right after the
    commit that stored the rows: the transaction touches no worker, so it commits plainly.
    Where the triggers exist (plain PostgreSQL, TimescaleDB) this does nothing.
    """

    def __init__(self, conn: psycopg.Connection) -> None:
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE NOT tgisinternal"
            " AND tgname IN ('alerts_live_notify', 'passages_live_notify'))"
        ).fetchone()
        conn.commit()
        self.enabled = row is not None and not row[0]

    def alerts(self, conn: psycopg.Connection, alerts: Iterable[tuple[int, int]]) -> None:
        """Notify committed alerts, given as (alert_id, bike_id)."""
        payloads = [orjson.dumps({"t": "alert", "id": a, "bike": b}).decode() for a, b in alerts]
        if self.enabled and payloads:
            self._send(conn, payloads)

    def passages(self, conn: psycopg.Connection, stored: int) -> None:
        """Notify that ``stored`` passages were committed (one notification, as the trigger)."""
        if self.enabled and stored:
            self._send(conn, ['{"t": "passage"}'])

    @staticmethod
    def _send(conn: psycopg.Connection, payloads: list[str]) -> None:
        # A lost notification costs a live stream one poll interval, never a stored row: the
        # error is logged, and a lost connection shows again at the engine's next statement.
        try:
            with conn.transaction():
                conn.execute(
                    "SELECT pg_notify(%s, p) FROM unnest(%s::text[]) AS p", (CHANNEL, payloads)
                )
        except psycopg.Error as exc:
            log.warning("live notification not sent: %s", exc)
