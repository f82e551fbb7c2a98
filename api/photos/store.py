"""bike_photos: add one, list a bike's, read one's bytes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row

from api.photos.images import PreparedImage


@dataclass(frozen=True, slots=True)
class PhotoMeta:
    """A stored photo without its bytes."""

    photo_id: int
    bike_id: int
    uploaded_at: datetime
    uploaded_by: str
    caption: str
    width: int
    height: int


_COLUMNS = "photo_id, bike_id, uploaded_at, uploaded_by, caption, width, height"


def add_photo(
    conn: psycopg.Connection, *, bike_id: int, by: str, caption: str, prepared: PreparedImage
) -> PhotoMeta:
    """Store ``prepared`` as a photo of ``bike_id``."""
    with conn.cursor(row_factory=class_row(PhotoMeta)) as cur:
        row = cur.execute(
            f"INSERT INTO bike_photos (bike_id, uploaded_by, caption, width, height, image,"
            f" thumbnail) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
            (bike_id, by, caption, prepared.width, prepared.height, prepared.image,
             prepared.thumbnail),
        ).fetchone()  # fmt: skip
    if row is None:
        raise RuntimeError("INSERT … RETURNING gave no row")
    return row


def count_photos(conn: psycopg.Connection, bike_id: int) -> int:
    """How many photos ``bike_id`` has."""
    row = conn.execute("SELECT count(*) FROM bike_photos WHERE bike_id = %s", (bike_id,)).fetchone()
    return int(row[0]) if row else 0


def list_photos(conn: psycopg.Connection, bike_id: int) -> list[PhotoMeta]:
    """The photos of ``bike_id``, oldest first."""
    with conn.cursor(row_factory=class_row(PhotoMeta)) as cur:
        return cur.execute(
            f"SELECT {_COLUMNS} FROM bike_photos WHERE bike_id = %s ORDER BY photo_id", (bike_id,)
        ).fetchall()


def photo_bytes(
    conn: psycopg.Connection, *, bike_id: int, photo_id: int, thumbnail: bool
) -> bytes | None:
    """The JPEG of one photo of ``bike_id`` (or its thumbnail); None if there is no such photo."""
    column = "thumbnail" if thumbnail else "image"
    row = conn.execute(
        f"SELECT {column} FROM bike_photos WHERE bike_id = %s AND photo_id = %s",
        (bike_id, photo_id),
    ).fetchone()
    return bytes(row[0]) if row else None
