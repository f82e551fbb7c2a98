"""/api/v1/bikes: search, registration at the desk, re-tagging, owner change, deregistration,
the slip, and residents' own bikes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from fastapi.responses import HTMLResponse, JSONResponse

from api.bikes import registration
from api.bikes.schemas import BikeDetailOut, BikeOut, OwnerChangeIn, RegistrationIn, RetagIn
from api.bikes.service import detail_out, lookup_bike, my_bikes, to_out, visible_bike
from api.bikes.slip import render_slip
from api.deps import (
    BikeViewerDep,
    ConnDep,
    IdPath,
    KeysDep,
    RegistryDep,
    ResidentDep,
    SearchDep,
    require,
)
from api.deps import Principal as _Principal
from api.errors import problem

router = APIRouter(prefix="/api/v1/bikes", tags=["bikes"])
SlipDep = Annotated[_Principal, require("admin", "registrar", "resident")]
_STOLEN: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "tag bound, plate taken, frame registered, or a stolen frame/motor match",
    }
}


@router.get("")
def find_bike(
    conn: ConnDep,
    principal: SearchDep,
    plate: Annotated[str | None, Query(max_length=32, examples=["浙B·12345"])] = None,
    frame_number: Annotated[str | None, Query(max_length=64, examples=["LYD2O24AOOO1234"])] = None,
) -> BikeOut:
    """Look a bike up by plate (any width, case or separators) or frame number (O/0 and I/1
    look-alikes tolerated). Roles: admin, officer, registrar."""
    del principal
    return to_out(lookup_bike(conn, plate=plate, frame_number=frame_number))


@router.post("", status_code=status.HTTP_201_CREATED, responses=_STOLEN, response_model=None)
def register_bike(
    conn: ConnDep, principal: RegistryDep, keys: KeysDep, body: RegistrationIn
) -> BikeDetailOut | JSONResponse:
    """Register owner, bike, plate and scanned tag. A frame or motor number matching a stolen
    bike is not registered: officers are alerted and the answer is 409 ``stolen-match``.
    Roles: admin, registrar."""
    result = registration.register(conn, body=body, keys=keys, by=principal)
    if result.bike_id is None:
        # Returned, not raised: the flag and its audit entry must commit.
        return problem(
            409,
            "this frame or motor number belongs to a bike reported stolen; it was not "
            "registered and officers have been alerted",
            code="stolen-match",
            flag_ids=result.flag_ids,
        )
    return detail_out(visible_bike(conn, bike_id=result.bike_id, by=principal))


@router.get("/mine")
def list_my_bikes(conn: ConnDep, principal: ResidentDep) -> list[BikeDetailOut]:
    """Your own registered bikes. Roles: resident."""
    return my_bikes(conn, by=principal)


@router.get("/{bike_id}")
def get_bike(conn: ConnDep, principal: BikeViewerDep, bike_id: IdPath) -> BikeDetailOut:
    """A bike by id (residents: their own only). Roles: admin, officer, registrar, resident."""
    return detail_out(visible_bike(conn, bike_id=bike_id, by=principal))


@router.get("/{bike_id}/slip", response_class=HTMLResponse)
def get_slip(conn: ConnDep, principal: SlipDep, bike_id: IdPath) -> str:
    """The printable registration slip (HTML). Roles: admin, registrar, resident (own)."""
    return render_slip(detail_out(visible_bike(conn, bike_id=bike_id, by=principal)))


@router.post("/{bike_id}/retag", responses=_STOLEN)
def retag(conn: ConnDep, principal: RegistryDep, bike_id: IdPath, body: RetagIn) -> BikeDetailOut:
    """Bind a newly scanned tag; the old binding closes now. Roles: admin, registrar."""
    registration.retag(conn, bike_id=bike_id, tag_id=body.tag_id, by=principal)
    return detail_out(visible_bike(conn, bike_id=bike_id, by=principal))


@router.post("/{bike_id}/owner", responses=_STOLEN)
def change_owner(
    conn: ConnDep, principal: RegistryDep, keys: KeysDep, bike_id: IdPath, body: OwnerChangeIn
) -> BikeDetailOut:
    """Hand the bike to a new owner. Roles: admin, registrar."""
    registration.change_owner(
        conn,
        bike_id=bike_id,
        owner=body.owner,
        booking_id=body.booking_id,
        keys=keys,
        by=principal,
    )
    return detail_out(visible_bike(conn, bike_id=bike_id, by=principal))


@router.post("/{bike_id}/deregister", responses=_STOLEN)
def deregister(conn: ConnDep, principal: RegistryDep, bike_id: IdPath) -> dict[str, Any]:
    """Take the bike off the registry: plate and tag become free. Roles: admin, registrar."""
    registration.deregister(conn, bike_id=bike_id, by=principal)
    return {"bike_id": bike_id, "deregistered": True}
