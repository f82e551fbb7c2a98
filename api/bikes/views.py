"""GET /api/v1/bikes?plate=...|frame_number=..."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.bikes.schemas import BikeOut
from api.bikes.service import lookup_bike, to_out
from api.deps import ConnDep

router = APIRouter(prefix="/api/v1/bikes", tags=["bikes"])


@router.get("")
def find_bike(
    conn: ConnDep,
    plate: Annotated[str | None, Query(max_length=32)] = None,
    frame_number: Annotated[str | None, Query(max_length=64)] = None,
) -> BikeOut:
    """Look a bike up by plate (any width, case or separators) or frame number."""
    return to_out(lookup_bike(conn, plate=plate, frame_number=frame_number))
