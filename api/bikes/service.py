"""Bike lookups: search by plate or frame number, and by id with the residents' rule (a
resident sees their own bikes only; anything else is "not found", so ids reveal nothing)."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from api.bikes.schemas import BikeDetailOut, BikeOut, OwnerOut, TagBindingOut, TheftSummary
from api.deps import Principal
from api.errors import BadRequestError
from api.registry import bike_search, bikes
from api.registry.bikes import TagBinding
from api.security import mask_id_number
from track_engine.errors import NotFoundError


def lookup_bike(
    conn: psycopg.Connection, *, plate: str | None, frame_number: str | None
) -> bike_search.BikeRecord:
    """Find a bike by plate or frame number; NotFoundError if none."""
    if not (plate or frame_number):
        raise BadRequestError("give a plate or a frame_number")
    bike = bike_search.find_bike(conn, plate=plate or None, frame_number=frame_number or None)
    if bike is None:
        what = f"plate {plate}" if plate else f"frame number {frame_number}"
        raise NotFoundError(f"no registered bike with {what}")
    return bike


def _tags_out(tags: Iterable[TagBinding]) -> list[TagBindingOut]:
    """Response models of a bike's tag bindings."""
    return [
        TagBindingOut(tag_id=t.tag_id, valid_from=t.valid_from, valid_to=t.valid_to) for t in tags
    ]


def to_out(bike: bike_search.BikeRecord) -> BikeOut:
    """Response model of a bike record."""
    return BikeOut(
        bike_id=bike.bike_id,
        plate=bike.plate,
        frame_number=bike.frame_number,
        brand=bike.brand,
        colour=bike.colour,
        owner_name=bike.owner_name,
        owner_phone=bike.owner_phone_masked,
        tags=_tags_out(bike.tags),
        stolen_at=bike.stolen_at,
        case_number=bike.case_number,
    )


def visible_bike(conn: psycopg.Connection, *, bike_id: int, by: Principal) -> bikes.BikeDetail:
    """The bike if the caller may see it; NotFoundError otherwise (same message either way)."""
    detail = bikes.bike_detail(conn, bike_id)
    if detail is None or (by.role == "resident" and detail.owner_id != by.owner_id):
        raise NotFoundError(f"no bike {bike_id}")
    return detail


def detail_out(detail: bikes.BikeDetail) -> BikeDetailOut:
    """Response model of a bike by id (owner masked)."""
    theft = detail.theft
    return BikeDetailOut(
        bike_id=detail.bike_id,
        plate=detail.plate,
        frame_number=detail.frame_number,
        motor_number=detail.motor_number,
        brand=detail.brand,
        model=detail.model,
        colour=detail.colour,
        photo_url=detail.photo_url,
        owner=OwnerOut(
            owner_id=detail.owner_id,
            name=detail.owner_name,
            phone=bike_search.mask_phone(detail.owner_phone),
            id_number=mask_id_number(detail.id_number_tail),
            address=detail.owner_address,
        ),
        tags=_tags_out(detail.tags),
        registered_at=detail.registered_at,
        deregistered_at=detail.deregistered_at,
        theft=None
        if theft is None
        else TheftSummary(
            theft_id=theft.theft_id,
            status=theft.status,
            stolen_at=theft.stolen_at,
            case_number=theft.case_number,
        ),
    )


def my_bikes(conn: psycopg.Connection, *, by: Principal) -> list[BikeDetailOut]:
    """The calling resident's registered bikes."""
    if by.owner_id is None:
        return []
    out = []
    for bike_id in bikes.owned_bike_ids(conn, by.owner_id):
        detail = bikes.bike_detail(conn, bike_id)
        if detail is not None:
            out.append(detail_out(detail))
    return out
