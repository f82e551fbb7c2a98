"""Registration at a tagging event, re-tagging, change of owner and deregistration.

A registration first looks for open thefts with the same frame or motor number: a match is
not registered but flagged for the duty desk (the registrar gets a 409 telling them so, and the
flag commits). Then the tag, plate and frame number must be free.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from api.bikes.schemas import OwnerIn, RegistrationIn
from api.deps import Keys, Principal
from api.errors import BadRequestError, ConflictError
from api.events import service as events
from api.registry import audit, bikes
from api.registry.loaders import hash_id_number
from api.users import service as users
from track_engine.errors import NotFoundError
from track_engine.identifiers import frame_number_key, normalize_plate


@dataclass(frozen=True, slots=True)
class RegistrationResult:
    """Either the new bike's id or the flags raised instead."""

    bike_id: int | None
    flag_ids: list[int] = field(default_factory=list)


def _owner_id(conn: psycopg.Connection, *, owner: OwnerIn, keys: Keys) -> int:
    return bikes.upsert_owner(
        conn,
        name=owner.name.strip(),
        phone=owner.phone.replace(" ", "").replace("-", ""),
        address=owner.address.strip(),
        id_number_hash=hash_id_number(owner.id_number, key=keys.id_hash_key),
        id_number_tail=owner.id_number[-4:],
        id_number_enc=keys.id_cipher.encrypt(owner.id_number),
    )


def _link_booking(conn: psycopg.Connection, *, booking_id: int | None, owner_id: int) -> None:
    if booking_id is None:
        return
    user_id = events.booking_user_id(conn, booking_id)
    if user_id is None:
        raise BadRequestError(f"no booking {booking_id}")
    users.link_resident(conn, user_id=user_id, owner_id=owner_id)
    events.mark_arrived(conn, booking_id)


def _raise_conflicts(
    conn: psycopg.Connection, *, tag_id: str | None, plate_key: str | None, frame_key: str | None
) -> None:
    found = bikes.conflicts(conn, tag_id=tag_id, plate_key=plate_key, frame_key=frame_key)
    problems: list[tuple[str, str]] = []
    if found.tag_bound_to is not None:
        bike_id, plate = found.tag_bound_to
        problems.append(("tag-bound", f"tag {tag_id} is already bound to bike {bike_id} ({plate})"))
    if found.plate_taken_by is not None:
        problems.append(("plate-taken", f"the plate is taken by bike {found.plate_taken_by}"))
    if found.frame_registered_as is not None:
        problems.append(
            (
                "frame-registered",
                f"the frame number is registered as bike {found.frame_registered_as}",
            )
        )
    if problems:
        raise ConflictError("; ".join(p[1] for p in problems), code=problems[0][0])


def register(
    conn: psycopg.Connection, *, body: RegistrationIn, keys: Keys, by: Principal
) -> RegistrationResult:
    """Register owner, bike, plate and tag; or flag a stolen match (nothing registered)."""
    frame_key = frame_number_key(body.frame_number)
    motor_key = frame_number_key(body.motor_number)
    if body.event_id is not None and not events.event_exists(conn, body.event_id):
        raise BadRequestError(f"no tagging event {body.event_id}")
    matches = bikes.stolen_matches(conn, frame_key=frame_key, motor_key=motor_key)
    if matches:
        flag_ids = [
            bikes.add_flag(
                conn,
                match=m,
                presented_by=by.username,
                event_id=body.event_id,
                detail={
                    "frame_number": body.frame_number,
                    "motor_number": body.motor_number,
                    "plate": body.plate,
                },
            )
            for m in matches
        ]
        for m in matches:
            audit.record(
                conn,
                by,
                "bike.stolen_match",
                subject=f"bike:{m.bike_id}",
                bike_id=m.bike_id,
                case_number=m.case_number,
                detail={"kind": m.kind},
            )
        return RegistrationResult(bike_id=None, flag_ids=flag_ids)
    plate_key = normalize_plate(body.plate)
    _raise_conflicts(conn, tag_id=body.tag_id, plate_key=plate_key, frame_key=frame_key)
    owner_id = _owner_id(conn, owner=body.owner, keys=keys)
    bike_id = bikes.register_bike(
        conn,
        owner_id=owner_id,
        bike=bikes.NewBike(
            brand=body.brand.strip(),
            model=body.model.strip(),
            colour=body.colour.strip(),
            frame_number=body.frame_number,
            frame_number_key=frame_key,
            motor_number=body.motor_number.strip(),
            motor_number_key=motor_key,
            photo_url=body.photo_url,
            plate=body.plate,
            plate_key=plate_key,
            tag_id=body.tag_id,
        ),
    )
    _link_booking(conn, booking_id=body.booking_id, owner_id=owner_id)
    audit.record(
        conn,
        by,
        "bike.register",
        subject=f"bike:{bike_id}",
        bike_id=bike_id,
        detail={"plate": body.plate, "tag_id": body.tag_id, "event_id": body.event_id},
    )
    return RegistrationResult(bike_id=bike_id)


def _active(conn: psycopg.Connection, bike_id: int) -> bikes.BikeDetail:
    detail = bikes.bike_detail(conn, bike_id)
    if detail is None:
        raise NotFoundError(f"no bike {bike_id}")
    if detail.deregistered_at is not None:
        raise ConflictError(f"bike {bike_id} is deregistered", code="deregistered")
    return detail


def retag(conn: psycopg.Connection, *, bike_id: int, tag_id: str, by: Principal) -> None:
    """Bind a new tag; the old binding is closed at this moment (its passages stay the bike's)."""
    _active(conn, bike_id)
    _raise_conflicts(conn, tag_id=tag_id, plate_key=None, frame_key=None)
    old = bikes.retag(conn, bike_id=bike_id, tag_id=tag_id)
    audit.record(
        conn,
        by,
        "bike.retag",
        subject=f"bike:{bike_id}",
        bike_id=bike_id,
        detail={"old": old, "new": tag_id},
    )


def change_owner(
    conn: psycopg.Connection,
    *,
    bike_id: int,
    owner: OwnerIn,
    booking_id: int | None,
    keys: Keys,
    by: Principal,
) -> None:
    """Hand the bike to a new owner (created or found by ID number). The previous owner's
    "alert me" watches are disarmed, each with its own audit entry; the new owner sees the
    bike's alerts from now on only."""
    before = _active(conn, bike_id)
    owner_id = _owner_id(conn, owner=owner, keys=keys)
    disarmed = (
        bikes.change_owner(conn, bike_id=bike_id, owner_id=owner_id)
        if owner_id != before.owner_id
        else []  # the same person (same ID number): their details updated, nothing handed over
    )
    _link_booking(conn, booking_id=booking_id, owner_id=owner_id)
    for watch_id in disarmed:
        audit.record(
            conn,
            by,
            "watch.disarm",
            subject=f"watch:{watch_id}",
            bike_id=bike_id,
            detail={"why": "owner_change", "from_owner": before.owner_id, "to_owner": owner_id},
        )
    audit.record(
        conn,
        by,
        "bike.owner_change",
        subject=f"bike:{bike_id}",
        bike_id=bike_id,
        detail={"from_owner": before.owner_id, "to_owner": owner_id},
    )


def deregister(conn: psycopg.Connection, *, bike_id: int, by: Principal) -> None:
    """Take the bike off the registry (plate and tag become free)."""
    _active(conn, bike_id)
    bikes.deregister(conn, bike_id=bike_id)
    audit.record(conn, by, "bike.deregister", subject=f"bike:{bike_id}", bike_id=bike_id)
