"""Bike lookups."""

from __future__ import annotations

import psycopg

from api.bikes.schemas import BikeOut, TagBindingOut
from api.errors import BadRequestError
from track_engine.db import queries
from track_engine.errors import NotFoundError


def lookup_bike(
    conn: psycopg.Connection, *, plate: str | None, frame_number: str | None
) -> queries.BikeRecord:
    """Find a bike by plate or frame number; NotFoundError if none."""
    if not (plate or frame_number):
        raise BadRequestError("give a plate or a frame_number")
    bike = queries.find_bike(conn, plate=plate or None, frame_number=frame_number or None)
    if bike is None:
        what = f"plate {plate}" if plate else f"frame number {frame_number}"
        raise NotFoundError(f"no registered bike with {what}")
    return bike


def to_out(bike: queries.BikeRecord) -> BikeOut:
    """Response model of a bike record."""
    return BikeOut(
        bike_id=bike.bike_id,
        plate=bike.plate,
        frame_number=bike.frame_number,
        brand=bike.brand,
        colour=bike.colour,
        owner_name=bike.owner_name,
        owner_phone=bike.owner_phone_masked,
        tags=[
            TagBindingOut(tag_id=t.tag_id, valid_from=t.valid_from, valid_to=t.valid_to)
            for t in bike.tags
        ],
        stolen_at=bike.stolen_at,
        case_number=bike.case_number,
    )
