"""A bike's photos: POST /api/v1/bikes/{id}/photos (registrar, admin, the owning resident),
GET …/photos (list) and GET …/photos/{photo_id}[?size=thumbnail] (JPEG) for whoever may see
the bike (officers on a case, its owner, the registry)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile, status
from fastapi.responses import Response

from api.deps import BikeViewerDep, ConnDep, IdPath, require
from api.deps import Principal as _Principal
from api.photos import service
from api.photos.schemas import PhotoOut

router = APIRouter(prefix="/api/v1/bikes", tags=["bikes"])

PhotoUploaderDep = Annotated[_Principal, require("admin", "registrar", "resident")]


@router.post(
    "/{bike_id}/photos",
    status_code=status.HTTP_201_CREATED,
    responses={400: {"description": "not a readable image, too large, or too many photos"},
               404: {"description": "no such bike, or not yours"},
               413: {"description": "the upload is over the API's body size limit"}},
)  # fmt: skip
def add_photo(
    conn: ConnDep,
    principal: PhotoUploaderDep,
    bike_id: IdPath,
    photo: Annotated[UploadFile, File(description="JPEG, PNG or WebP")],
    caption: Annotated[str, Form(max_length=200)] = "",
) -> PhotoOut:
    """Add a photo of the bike (re-encoded as JPEG without EXIF). Roles: admin, registrar,
    resident (own bike). A sync view: decoding runs on a worker thread, not the event loop."""
    data = photo.file.read()
    return service.add_photo(conn, bike_id=bike_id, by=principal, data=data, caption=caption)


@router.get("/{bike_id}/photos")
def list_photos(conn: ConnDep, principal: BikeViewerDep, bike_id: IdPath) -> list[PhotoOut]:
    """The bike's photos, oldest first. Roles: admin, officer, registrar, resident (own)."""
    return service.list_photos(conn, bike_id=bike_id, by=principal)


@router.get(
    "/{bike_id}/photos/{photo_id}",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "no such photo"}},
)
def get_photo(
    conn: ConnDep,
    principal: BikeViewerDep,
    bike_id: IdPath,
    photo_id: IdPath,
    size: Annotated[Literal["full", "thumbnail"], Query()] = "full",
) -> Response:
    """One photo as JPEG (``size=thumbnail``: 320 px). Roles: admin, officer, registrar,
    resident (own)."""
    data = service.photo_jpeg(
        conn, bike_id=bike_id, photo_id=photo_id, by=principal, thumbnail=size == "thumbnail"
    )
    return Response(
        data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"}
    )
