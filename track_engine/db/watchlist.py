"""The engine's one registry lookup: which tags are under an open watch (a stolen bike's,
an officer's), so that a read of one raises an alert. Reloaded on ``NOTIFY tagtrail_watches``."""

from __future__ import annotations

import pandas as pd
import psycopg


def watched_tags(conn: psycopg.Connection) -> pd.DataFrame:
    """Tags under an open watch right now: tag_id, watch_id, bike_id, kind."""
    rows = conn.execute(
        """SELECT tb.tag_id, w.watch_id, w.bike_id, w.kind
           FROM watches w
           JOIN tag_bindings tb ON tb.bike_id = w.bike_id AND upper_inf(tb.valid)
           WHERE w.closed_at IS NULL AND (w.ends_at IS NULL OR w.ends_at > now())"""
    ).fetchall()
    return pd.DataFrame(rows, columns=["tag_id", "watch_id", "bike_id", "kind"])
