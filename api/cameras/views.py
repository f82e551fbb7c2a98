"""/api/v1/cameras: register cameras (admins) and list them."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from fastapi import APIRouter, status
from pydantic import Field

from api.cameras import store as cameras
from api.deps import AdminDep, ConnDep, OperatorDep
from api.pagination import Page, PageDep, page_of
from api.registry import audit
from api.request_model import RequestModel

router = APIRouter(prefix="/api/v1/cameras", tags=["cameras"])


class CameraIn(RequestModel):
    """A camera and how to ask its recorder for footage."""

    camera_id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", examples=["cam-north-gate"])
    name: str = Field(default="", max_length=200, examples=["North gate, facing east"])
    lon: float = Field(ge=-180, le=180, examples=[120.1551])
    lat: float = Field(ge=-90, le=90, examples=[30.2741])
    footage_url_template: str = Field(
        default="",
        max_length=1000,
        description="placeholders: {camera_id} {start} {end} {start_epoch} {end_epoch}",
        examples=["https://nvr.example/cam/{camera_id}/footage?from={start}&to={end}"],
    )


class CameraOut(CameraIn):
    """A registered camera."""

    installed_at: datetime


@router.post("", status_code=status.HTTP_201_CREATED)
def put_camera(conn: ConnDep, principal: AdminDep, body: CameraIn) -> CameraOut:
    """Add a camera, or update the one with the same id. Roles: admin."""
    record = cameras.upsert_camera(conn, **body.model_dump())
    audit.record(conn, principal, "camera.put", subject=f"camera:{body.camera_id}")
    return CameraOut(**asdict(record))


@router.get("")
def list_cameras(conn: ConnDep, principal: OperatorDep, page: PageDep) -> Page[CameraOut]:
    """Registered cameras. Roles: admin, officer, operator."""
    del principal
    rows, total = cameras.list_cameras(conn, limit=page.limit, offset=page.offset)
    return page_of([CameraOut(**asdict(r)) for r in rows], total, page)
