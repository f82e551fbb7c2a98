"""One bike at a time: registration at a tagging event, re-tagging, owner change,
deregistration, and the reads the API needs around them (by id, by owner, conflicts).

The bulk loaders are in :mod:`api.registry.loaders`. The caller owns the transaction;
``NOTIFY tagtrail_watches`` is sent whenever the set of watched tags may change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import orjson
import psycopg
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb

from track_engine.live_channel import LIVE_CHANNEL


@dataclass(frozen=True, slots=True)
class TagBinding:
    """A tag bound to a bike over ``[valid_from, valid_to)`` (open when ``valid_to`` is None)."""

    tag_id: str
    valid_from: datetime
    valid_to: datetime | None


@dataclass(frozen=True, slots=True)
class OpenTheft:
    """The bike's theft still open (reported or confirmed)."""

    theft_id: int
    status: str
    stolen_at: datetime
    case_number: str | None


@dataclass(slots=True)
class BikeDetail:
    """Everything about one bike the API may show (after masking)."""

    bike_id: int
    owner_id: int
    owner_name: str
    owner_phone: str
    owner_address: str
    id_number_tail: str
    id_number_enc: bytes | None
    brand: str
    model: str
    colour: str
    frame_number: str
    motor_number: str
    photo_url: str
    plate: str | None
    registered_at: datetime
    deregistered_at: datetime | None
    owner_since: datetime  # when the current owner became the owner (registration or change)
    tags: list[TagBinding] = field(default_factory=list)
    theft: OpenTheft | None = None


_DETAIL = """SELECT b.bike_id, b.owner_id, o.name AS owner_name, o.phone AS owner_phone,
                    o.address AS owner_address, o.id_number_tail, o.id_number_enc,
                    b.brand, b.model, b.colour, b.frame_number, b.motor_number, b.photo_url,
                    (SELECT p.plate FROM plates p WHERE p.bike_id = b.bike_id
                     ORDER BY upper_inf(p.valid) DESC, lower(p.valid) DESC LIMIT 1) AS plate,
                    b.registered_at, b.deregistered_at,
                    coalesce(b.owner_since, b.registered_at) AS owner_since
             FROM bikes b JOIN owners o USING (owner_id)"""


def bike_detail(conn: psycopg.Connection, bike_id: int) -> BikeDetail | None:
    """One bike with its owner, plate, tag bindings and open theft."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(f"{_DETAIL} WHERE b.bike_id = %s", (bike_id,)).fetchone()
        if row is None:
            return None
        detail = BikeDetail(**row)
        detail.tags = [
            TagBinding(r["tag_id"], r["valid_from"], r["valid_to"])
            for r in cur.execute(
                """SELECT tag_id, lower(valid) AS valid_from, upper(valid) AS valid_to
                   FROM tag_bindings WHERE bike_id = %s ORDER BY lower(valid)""",
                (bike_id,),
            )
        ]
    with conn.cursor(row_factory=class_row(OpenTheft)) as tcur:
        detail.theft = tcur.execute(
            """SELECT theft_id, status, stolen_at, case_number FROM thefts
               WHERE bike_id = %s AND status IN ('reported', 'confirmed')
               ORDER BY stolen_at DESC LIMIT 1""",
            (bike_id,),
        ).fetchone()
    return detail


def owned_bike_ids(conn: psycopg.Connection, owner_id: int) -> list[int]:
    """Ids of the owner's registered bikes, newest first."""
    rows = conn.execute(
        "SELECT bike_id FROM bikes WHERE owner_id = %s AND deregistered_at IS NULL "
        "ORDER BY registered_at DESC, bike_id DESC",
        (owner_id,),
    ).fetchall()
    return [int(r[0]) for r in rows]


@dataclass(frozen=True, slots=True)
class Conflicts:
    """What already uses the identifiers of a new registration (bike ids, with the plate)."""

    tag_bound_to: tuple[int, str] | None
    plate_taken_by: int | None
    frame_registered_as: int | None


def conflicts(
    conn: psycopg.Connection, *, tag_id: str | None, plate_key: str | None, frame_key: str | None
) -> Conflicts:
    """Which of the tag, plate and frame number are in use right now."""
    tag = plate = frame = None
    if tag_id is not None:
        row = conn.execute(
            """SELECT tb.bike_id, coalesce(p.plate, '') FROM tag_bindings tb
               LEFT JOIN plates p ON p.bike_id = tb.bike_id AND upper_inf(p.valid)
               WHERE tb.tag_id = %s AND upper_inf(tb.valid)""",
            (tag_id,),
        ).fetchone()
        tag = None if row is None else (int(row[0]), str(row[1]))
    if plate_key is not None:
        row = conn.execute(
            "SELECT bike_id FROM plates WHERE plate_key = %s AND upper_inf(valid)", (plate_key,)
        ).fetchone()
        plate = None if row is None else int(row[0])
    if frame_key is not None:
        row = conn.execute(
            "SELECT bike_id FROM bikes WHERE frame_number_key = %s AND deregistered_at IS NULL",
            (frame_key,),
        ).fetchone()
        frame = None if row is None else int(row[0])
    return Conflicts(tag, plate, frame)


@dataclass(frozen=True, slots=True)
class StolenMatch:
    """A bike under an open theft whose frame or motor number matches a new registration."""

    kind: str  # 'stolen_frame' | 'stolen_motor'
    bike_id: int
    theft_id: int
    case_number: str | None


def stolen_matches(
    conn: psycopg.Connection, *, frame_key: str, motor_key: str
) -> list[StolenMatch]:
    """Open thefts of bikes with the same frame key or (non-empty) motor key."""
    with conn.cursor(row_factory=class_row(StolenMatch)) as cur:
        return cur.execute(
            """SELECT CASE WHEN b.frame_number_key = %(f)s THEN 'stolen_frame'
                           ELSE 'stolen_motor' END AS kind,
                      b.bike_id, t.theft_id, t.case_number
               FROM bikes b JOIN thefts t ON t.bike_id = b.bike_id
               WHERE t.status IN ('reported', 'confirmed')
                 AND (b.frame_number_key = %(f)s
                      OR (%(m)s <> '' AND b.motor_number_key = %(m)s))
               ORDER BY t.theft_id""",
            {"f": frame_key, "m": motor_key},
        ).fetchall()


def add_flag(
    conn: psycopg.Connection,
    *,
    match: StolenMatch,
    presented_by: str,
    event_id: int | None,
    detail: dict[str, str],
) -> int:
    """Record a stolen match for the duty desk; returns the flag id."""
    row = conn.execute(
        """INSERT INTO registration_flags (kind, stolen_bike_id, theft_id, presented_by,
                                           event_id, detail)
           VALUES (%s, %s, %s, %s, %s, %s) RETURNING flag_id""",
        (match.kind, match.bike_id, match.theft_id, presented_by, event_id, Jsonb(detail)),
    ).fetchone()
    if row is None:
        raise RuntimeError("add_flag: the database returned no row")
    conn.execute("NOTIFY tagtrail_alerts")
    notify_flag_untriggered(conn, int(row[0]))  # Citus has no trigger for it (issue #19)
    return int(row[0])


def upsert_owner(
    conn: psycopg.Connection,
    *,
    name: str,
    phone: str,
    address: str,
    id_number_hash: bytes,
    id_number_tail: str,
    id_number_enc: bytes,
) -> int:
    """The owner with this ID number (hash), created or updated; returns ``owner_id``."""
    row = conn.execute(
        """INSERT INTO owners (name, phone, address, id_number_hash, id_number_tail, id_number_enc)
           VALUES (%s, %s, %s, %s, %s, %s)
           ON CONFLICT (id_number_hash) DO UPDATE SET
             name = EXCLUDED.name, phone = EXCLUDED.phone, address = EXCLUDED.address,
             id_number_enc = EXCLUDED.id_number_enc
           RETURNING owner_id""",
        (name, phone, address, id_number_hash, id_number_tail, id_number_enc),
    ).fetchone()
    if row is None:
        raise RuntimeError("upsert_owner: the database returned no row")
    return int(row[0])


@dataclass(frozen=True, slots=True)
class NewBike:
    """The bike part of a registration (identifiers already normalized into keys)."""

    brand: str
    model: str
    colour: str
    frame_number: str
    frame_number_key: str
    motor_number: str
    motor_number_key: str
    photo_url: str
    plate: str
    plate_key: str
    tag_id: str


def register_bike(conn: psycopg.Connection, *, owner_id: int, bike: NewBike) -> int:
    """Insert the bike, its plate and its tag binding from now on; returns ``bike_id``."""
    row = conn.execute(
        """INSERT INTO bikes (owner_id, brand, model, colour, frame_number, frame_number_key,
                              motor_number, motor_number_key, photo_url)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING bike_id""",
        (
            owner_id,
            bike.brand,
            bike.model,
            bike.colour,
            bike.frame_number,
            bike.frame_number_key,
            bike.motor_number,
            bike.motor_number_key,
            bike.photo_url,
        ),
    ).fetchone()
    if row is None:
        raise RuntimeError("register_bike: the database returned no row")
    bike_id = int(row[0])
    conn.execute(
        "INSERT INTO plates (plate, plate_key, bike_id, valid) "
        "VALUES (%s, %s, %s, tstzrange(now(), NULL))",
        (bike.plate, bike.plate_key, bike_id),
    )
    _bind(conn, bike_id=bike_id, tag_id=bike.tag_id)
    return bike_id


def _bind(conn: psycopg.Connection, *, bike_id: int, tag_id: str) -> None:
    conn.execute("INSERT INTO tags (tag_id) VALUES (%s) ON CONFLICT DO NOTHING", (tag_id,))
    conn.execute(
        "INSERT INTO tag_bindings (tag_id, bike_id, valid) VALUES (%s, %s, tstzrange(now(), NULL))",
        (tag_id, bike_id),
    )


def _close_binding(conn: psycopg.Connection, *, bike_id: int) -> str | None:
    row = conn.execute(
        """UPDATE tag_bindings SET valid = tstzrange(lower(valid), now())
           WHERE bike_id = %s AND upper_inf(valid) RETURNING tag_id""",
        (bike_id,),
    ).fetchone()
    return None if row is None else str(row[0])


def retag(conn: psycopg.Connection, *, bike_id: int, tag_id: str) -> str | None:
    """Close the bike's current binding now and bind the new tag; returns the old tag id."""
    old = _close_binding(conn, bike_id=bike_id)
    _bind(conn, bike_id=bike_id, tag_id=tag_id)
    conn.execute("NOTIFY tagtrail_watches")
    return old


def change_owner(conn: psycopg.Connection, *, bike_id: int, owner_id: int) -> list[int]:
    """Hand the bike to another owner from now on (``owner_since``: the new owner's residents
    see its alerts from this moment only, the previous owner's lose sight of it) and disarm the
    "alert me" watches armed until now; returns their ids (for the caller's audit entries)."""
    conn.execute(
        "UPDATE bikes SET owner_id = %s, owner_since = now() WHERE bike_id = %s",
        (owner_id, bike_id),
    )
    closed = conn.execute(
        "UPDATE watches SET closed_at = now() "
        "WHERE bike_id = %s AND kind = 'armed' AND closed_at IS NULL RETURNING watch_id",
        (bike_id,),
    ).fetchall()
    if closed:
        conn.execute("NOTIFY tagtrail_watches")
    return sorted(int(row[0]) for row in closed)


def deregister(conn: psycopg.Connection, *, bike_id: int) -> None:
    """Take the bike off the registry now: plate and tag freed, armed watches closed."""
    conn.execute("UPDATE bikes SET deregistered_at = now() WHERE bike_id = %s", (bike_id,))
    conn.execute(
        "UPDATE plates SET valid = tstzrange(lower(valid), now()) "
        "WHERE bike_id = %s AND upper_inf(valid)",
        (bike_id,),
    )
    _close_binding(conn, bike_id=bike_id)
    conn.execute(
        "UPDATE watches SET closed_at = now() "
        "WHERE bike_id = %s AND kind = 'armed' AND closed_at IS NULL",
        (bike_id,),
    )
    conn.execute("NOTIFY tagtrail_watches")


def notify_flag_untriggered(conn: psycopg.Connection, flag_id: int) -> None:
    """Send a stolen-match flag's live notification where migration 0035's trigger is gone
    (Citus: deploy/citus/distribute.sql drops it), in the caller's transaction on the
    coordinator; where the trigger exists it has sent it already, and this sends nothing.

    On the coordinator a NOTIFY is safe: Citus two-phase commits the workers' transactions,
    not the coordinator's own, which is where this one runs (a trigger fired on a worker's
    placement is what cannot be prepared)."""
    conn.execute(
        "SELECT pg_notify(%s, %s) WHERE NOT EXISTS (SELECT 1 FROM pg_trigger"
        " WHERE tgname = 'registration_flags_live_notify' AND NOT tgisinternal)",
        (LIVE_CHANNEL, orjson.dumps({"t": "flag", "id": flag_id}).decode()),
    )
