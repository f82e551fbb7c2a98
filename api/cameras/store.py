"""The cameras registry: positions and how to ask each camera's recorder for footage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True, slots=True)
class CameraRecord:
    """A camera with its position and footage URL template."""

    camera_id: str
    name: str
    lon: float
    lat: float
    footage_url_template: str
    installed_at: datetime


_COLUMNS = "camera_id, name, lon, lat, footage_url_template, installed_at"


def upsert_camera(
    conn: psycopg.Connection,
    *,
    camera_id: str,
    name: str,
    lon: float,
    lat: float,
    footage_url_template: str,
) -> CameraRecord:
    """Add a camera or update one with the same id."""
    with conn.cursor(row_factory=class_row(CameraRecord)) as cur:
        row = cur.execute(
            f"""INSERT INTO cameras (camera_id, name, lon, lat, footage_url_template)
                VALUES (%s, %s, %s, %s, %s)
                ON CONFLICT (camera_id) DO UPDATE SET name = EXCLUDED.name, lon = EXCLUDED.lon,
                  lat = EXCLUDED.lat, footage_url_template = EXCLUDED.footage_url_template
                RETURNING {_COLUMNS}""",
            (camera_id, name, lon, lat, footage_url_template),
        ).fetchone()
    if row is None:
        raise RuntimeError("upsert_camera: the database returned no row")
    return row


def list_cameras(
    conn: psycopg.Connection, *, limit: int, offset: int
) -> tuple[list[CameraRecord], int]:
    """A page of cameras by id, and the total count."""
    with conn.cursor(row_factory=class_row(CameraRecord)) as cur:
        rows = cur.execute(
            f"SELECT {_COLUMNS} FROM cameras ORDER BY camera_id LIMIT %s OFFSET %s",
            (limit, offset),
        ).fetchall()
    total = conn.execute("SELECT count(*) FROM cameras").fetchone()
    return rows, int(total[0]) if total else 0


def all_cameras(conn: psycopg.Connection) -> list[CameraRecord]:
    """Every camera (the registry is small: hundreds, not millions)."""
    with conn.cursor(row_factory=class_row(CameraRecord)) as cur:
        return cur.execute(f"SELECT {_COLUMNS} FROM cameras ORDER BY camera_id").fetchall()
