"""The cameras registry as other domains see it (a route's footage looks up nearby cameras)."""

from __future__ import annotations

import psycopg

from api.cameras import store
from api.cameras.store import CameraRecord


def all_cameras(conn: psycopg.Connection) -> list[CameraRecord]:
    """Every camera with its position and footage URL template."""
    return store.all_cameras(conn)
