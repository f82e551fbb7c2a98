"""Adding and reading a bike's photos, for whoever may see the bike (api.bikes.service)."""

from __future__ import annotations

import psycopg

from api.bikes.service import visible_bike
from api.deps import Principal
from api.errors import BadRequestError
from api.photos import store
from api.photos.images import prepare_image
from api.photos.schemas import PhotoOut
from api.registry import audit
from track_engine.errors import NotFoundError

MAX_PHOTOS_PER_BIKE = 8


def _out(meta: store.PhotoMeta) -> PhotoOut:
    url = f"/api/v1/bikes/{meta.bike_id}/photos/{meta.photo_id}"
    return PhotoOut(
        photo_id=meta.photo_id, uploaded_at=meta.uploaded_at, uploaded_by=meta.uploaded_by,
        caption=meta.caption, width=meta.width, height=meta.height, url=url,
        thumbnail_url=f"{url}?size=thumbnail",
    )  # fmt: skip


def add_photo(
    conn: psycopg.Connection, *, bike_id: int, by: Principal, data: bytes, caption: str
) -> PhotoOut:
    """Re-encode ``data`` and store it as a photo of the bike; audited as ``bike.photo.add``."""
    visible_bike(conn, bike_id=bike_id, by=by)
    if store.count_photos(conn, bike_id) >= MAX_PHOTOS_PER_BIKE:
        raise BadRequestError(f"bike {bike_id} has {MAX_PHOTOS_PER_BIKE} photos already")
    prepared = prepare_image(data)
    meta = store.add_photo(
        conn, bike_id=bike_id, by=by.username, caption=caption, prepared=prepared
    )
    audit.append(
        conn, actor=by.username, role=by.role, action="bike.photo.add",
        subject=f"photo:{meta.photo_id}", bike_id=bike_id, remote_addr=by.remote_addr,
        detail={"bytes_in": len(data), "width": meta.width, "height": meta.height},
    )  # fmt: skip
    return _out(meta)


def list_photos(conn: psycopg.Connection, *, bike_id: int, by: Principal) -> list[PhotoOut]:
    """The bike's photos, if the caller may see the bike."""
    visible_bike(conn, bike_id=bike_id, by=by)
    return [_out(m) for m in store.list_photos(conn, bike_id)]


def photo_jpeg(
    conn: psycopg.Connection, *, bike_id: int, photo_id: int, by: Principal, thumbnail: bool
) -> bytes:
    """One photo's JPEG (or its thumbnail), if the caller may see the bike."""
    visible_bike(conn, bike_id=bike_id, by=by)
    data = store.photo_bytes(conn, bike_id=bike_id, photo_id=photo_id, thumbnail=thumbnail)
    if data is None:
        raise NotFoundError(f"bike {bike_id} has no photo {photo_id}")
    return data
