"""The public stolen check: a buyer of a used e-bike asks whether its plate or frame number is
reported stolen. The answer is yes (with the day it was reported) or no; it never says where
the bike is or was, nor whether a plate is registered at all. Every check is audited, with a
hit on an open case findable by the case's officers."""

from __future__ import annotations

import psycopg

from api.errors import BadRequestError
from api.public import store
from api.public.schemas import StolenCheckOut
from api.registry import audit
from track_engine.identifiers import frame_number_key, normalize_plate

ADVICE_STOLEN = (
    "Do not buy this e-bike. It is reported stolen: call the police (110) and give them the "
    "plate or frame number; do not confront the seller."
)
ADVICE_CLEAR = (
    "Not reported stolen in TagTrail. That is not proof of ownership: ask the seller for the "
    "registration slip and check that its frame number matches the bike."
)


def check_stolen(
    conn: psycopg.Connection, *, plate: str | None, frame_number: str | None, remote_addr: str
) -> StolenCheckOut:
    """Whether the bike carrying ``plate`` (or ``frame_number``; exactly one) is reported
    stolen; the check is audited as ``public.stolen_check``."""
    if (plate is None) == (frame_number is None):
        raise BadRequestError("give exactly one of plate or frame_number")
    by = "plate" if plate is not None else "frame_number"
    value = (plate if plate is not None else frame_number) or ""
    key = normalize_plate(value) if by == "plate" else frame_number_key(value)
    if not key:
        raise BadRequestError(f"the {by.replace('_', ' ')} is empty once spaces are removed")
    theft = store.open_theft(conn, by=by, key=key)
    audit.append(
        conn,
        actor="public",
        role="public",
        action="public.stolen_check",
        subject=f"{by}:{value}",
        bike_id=theft.bike_id if theft else None,
        remote_addr=remote_addr,
        detail={"hit": theft is not None},
    )
    return StolenCheckOut(
        checked_by=by,
        value=value,
        reported_stolen=theft is not None,
        reported_on=theft.reported_at.date() if theft else None,
        advice=ADVICE_STOLEN if theft else ADVICE_CLEAR,
    )
