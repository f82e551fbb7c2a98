"""Make the stored search keys of plates and frame/motor numbers again with today's
:mod:`track_engine.identifiers` (the Python step of migration 0065).

Only values that can have a new key are read: the keys changed for invisible characters and
look-alike letters of other scripts, so a value of printable ASCII, Chinese characters and
``·`` keeps its key (checked against the confusables table before relying on it). A new key
that another bike already holds (a frame number registered once in Latin and once with
Cyrillic letters: exactly what the new keys catch) is not forced: that row keeps its old key
and the audit log gets a ``registry.key_collision`` entry for a registrar to sort out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from track_engine.identifiers import confusable_characters, frame_number_key, normalize_plate

ACTOR = "system:migration-0065"
# Printable ASCII, the CJK unified ideographs and the middle dot: no key of such a value changed.
_UNCHANGED_CLASS = "[^ -~\u4e00-\u9fff\u00b7]"


@dataclass(slots=True)
class RekeyReport:
    """What a run changed: rows re-keyed, and collisions left for a person."""

    bikes: int = 0
    plates: int = 0
    collisions: list[dict[str, Any]] = field(default_factory=list)


def _may_change(columns: tuple[str, ...]) -> str:
    """A WHERE condition: a value has a character whose key may have changed (every row when
    the confusables data maps one of the characters skipped otherwise)."""
    if any(
        0x20 <= c <= 0x7E or 0x4E00 <= c <= 0x9FFF or c == 0xB7 for c in confusable_characters()
    ):
        return "true"
    return " OR ".join(f"{column} ~ '{_UNCHANGED_CLASS}'" for column in columns)


def rekey_identifiers(conn: psycopg.Connection) -> RekeyReport:
    """Re-key bikes' frame and motor numbers and plates, in the caller's transaction."""
    report = RekeyReport()
    if conn.execute("SELECT NOT EXISTS (SELECT 1 FROM bikes)").fetchone() == (True,):
        return report  # a new database: nothing stored yet
    bikes = conn.execute(
        f"""SELECT bike_id, frame_number, frame_number_key, motor_number, motor_number_key
            FROM bikes WHERE {_may_change(("frame_number", "motor_number"))} ORDER BY bike_id"""
    ).fetchall()
    for bike_id, frame, frame_key, motor, motor_key in bikes:
        new_frame, new_motor = frame_number_key(frame), frame_number_key(motor)
        if (new_frame, new_motor) == (frame_key, motor_key):
            continue
        try:
            with conn.transaction():
                conn.execute(
                    "UPDATE bikes SET frame_number_key = %s, motor_number_key = %s "
                    "WHERE bike_id = %s",
                    (new_frame, new_motor, bike_id),
                )
            report.bikes += 1
        except psycopg.errors.IntegrityError:
            held = conn.execute(
                "SELECT min(bike_id) FROM bikes WHERE frame_number_key = %s "
                "AND deregistered_at IS NULL",
                (new_frame,),
            ).fetchone()
            _collision(conn, report, bike_id, "frame_number", frame, new_frame, held)
    # Rows are named by their values (plates has no key; no ctid, which Citus cannot route).
    plates = conn.execute(
        f"""SELECT plate, plate_key, bike_id, valid FROM plates
            WHERE {_may_change(("plate",))} ORDER BY bike_id, lower(valid)"""
    ).fetchall()
    for plate, plate_key, bike_id, valid in plates:
        new_key = normalize_plate(plate)
        if new_key == plate_key:
            continue
        try:
            with conn.transaction():
                conn.execute(
                    "UPDATE plates SET plate_key = %s "
                    "WHERE bike_id = %s AND plate = %s AND plate_key = %s AND valid = %s",
                    (new_key, bike_id, plate, plate_key, valid),
                )
            report.plates += 1
        except psycopg.errors.IntegrityError:
            held = conn.execute(
                "SELECT min(bike_id) FROM plates WHERE plate_key = %s AND bike_id <> %s",
                (new_key, bike_id),
            ).fetchone()
            _collision(conn, report, bike_id, "plate", plate, new_key, held)
    return report


def _collision(
    conn: psycopg.Connection,
    report: RekeyReport,
    bike_id: int,
    what: str,
    value: str,
    key: str,
    held: tuple[Any, ...] | None,
) -> None:
    detail = {
        "field": what,
        "value": value,
        "key": key,
        "held_by_bike": None if held is None else held[0],
    }
    report.collisions.append({"bike_id": bike_id, **detail})
    conn.execute(
        "INSERT INTO audit_log (actor, role, action, subject, bike_id, detail) "
        "VALUES (%s, 'system', 'registry.key_collision', %s, %s, %s)",
        (ACTOR, f"bike:{bike_id}", bike_id, Jsonb(detail)),
    )
