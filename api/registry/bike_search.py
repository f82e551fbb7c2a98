"""Finding a bike by plate or frame number, as an officer sees it (owner phone masked)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg.rows import dict_row

from api.registry.bikes import TagBinding
from track_engine.identifiers import frame_number_key, normalize_plate


@dataclass(frozen=True, slots=True)
class BikeRecord:
    """A registered bike as an officer sees it (owner phone masked)."""

    bike_id: int
    plate: str
    frame_number: str
    brand: str
    colour: str
    owner_name: str
    owner_phone_masked: str
    tags: list[TagBinding] = field(default_factory=list)
    stolen_at: datetime | None = None
    case_number: str | None = None


def mask_phone(phone: str) -> str:
    """Show the first 3 and last 2 digits of a phone number only."""
    return (
        phone[:3] + "*" * max(len(phone) - 5, 0) + phone[-2:]
        if len(phone) > 5
        else "*" * len(phone)
    )


def find_bike(
    conn: psycopg.Connection, *, plate: str | None = None, frame_number: str | None = None
) -> BikeRecord | None:
    """Find a bike by plate (normalized) or frame number (look-alike tolerant)."""
    if plate is not None:
        where, arg = "p.plate_key = %s", normalize_plate(plate)
    elif frame_number is not None:
        where, arg = "b.frame_number_key = %s", frame_number_key(frame_number)
    else:
        raise ValueError("give a plate or a frame number")
    # One round trip: the bike, its tag bindings (as arrays, in binding order) and its open
    # theft, if any.
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"""SELECT b.bike_id, p.plate, b.frame_number, b.brand, b.colour,
                       o.name AS owner_name, o.phone AS owner_phone,
                       t.tag_ids, t.valid_froms, t.valid_tos, th.stolen_at, th.case_number
                FROM bikes b
                JOIN owners o USING (owner_id)
                JOIN plates p ON p.bike_id = b.bike_id AND upper_inf(p.valid)
                CROSS JOIN LATERAL (
                    SELECT array_agg(tb.tag_id ORDER BY lower(tb.valid)) AS tag_ids,
                           array_agg(lower(tb.valid) ORDER BY lower(tb.valid)) AS valid_froms,
                           array_agg(upper(tb.valid) ORDER BY lower(tb.valid)) AS valid_tos
                    FROM tag_bindings tb WHERE tb.bike_id = b.bike_id) t
                LEFT JOIN LATERAL (
                    SELECT stolen_at, case_number FROM thefts
                    WHERE bike_id = b.bike_id AND status IN ('reported', 'confirmed')
                    ORDER BY stolen_at DESC LIMIT 1) th ON true
                WHERE {where}
                ORDER BY b.deregistered_at NULLS FIRST, b.registered_at DESC
                LIMIT 1""",
            (arg,),
        ).fetchone()
    if row is None:
        return None
    tags = [
        TagBinding(tag, valid_from, valid_to)
        for tag, valid_from, valid_to in zip(
            row["tag_ids"] or [], row["valid_froms"] or [], row["valid_tos"] or [], strict=True
        )
    ]
    return BikeRecord(
        bike_id=row["bike_id"],
        plate=row["plate"],
        frame_number=row["frame_number"],
        brand=row["brand"],
        colour=row["colour"],
        owner_name=row["owner_name"],
        owner_phone_masked=mask_phone(row["owner_phone"]),
        tags=tags,
        stolen_at=row["stolen_at"],
        case_number=row["case_number"],
    )
