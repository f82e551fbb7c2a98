"""Look-alike characters in frame numbers and plates: a zero-width space or Cyrillic М/Х must
not slip a stolen bike past the stolen-frame check, nor let a plate be registered twice.

Through the API on the machine's PostgreSQL (registration, theft report, search), and
migration 0065 on a database holding keys made before it (re-keyed, collisions audited).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient
from scenarios import registration
from theft_scenes import report_theft

from track_engine.db.migrate import migrate
from track_engine.identifiers import frame_number_key, normalize_plate

H = dict[str, dict[str, str]]
ZWSP = "\u200b"
CYRILLIC_M, CYRILLIC_KHA = "\u041c", "\u0425"  # М, Х


def _stolen(client: TestClient, headers: H, n: int, frame_number: str) -> dict:
    """A registered bike with ``frame_number``, reported stolen by an officer."""
    made = client.post(
        "/api/v1/bikes",
        json=registration(n, frame_number=frame_number),
        headers=headers["registrar"],
    )
    assert made.status_code == 201, made.text
    bike = made.json()
    report_theft(client, headers, bike["bike_id"], datetime.now(UTC) - timedelta(hours=1))
    return bike


def test_cyrillic_look_alike_frame_number_is_caught_by_the_stolen_check(
    client: TestClient, headers: H
) -> None:
    stolen = _stolen(client, headers, 8101, "M123X8101")
    cyrillic = f"{CYRILLIC_M}123{CYRILLIC_KHA}8101"
    assert cyrillic != "M123X8101"
    again = client.post(
        "/api/v1/bikes",
        json=registration(8102, frame_number=cyrillic),
        headers=headers["registrar"],
    )
    assert again.status_code == 409, again.text
    assert again.json()["type"].endswith("/stolen-match")
    found = client.get(
        "/api/v1/bikes", params={"frame_number": cyrillic}, headers=headers["officer"]
    )
    assert found.status_code == 200, found.text
    assert found.json()["bike_id"] == stolen["bike_id"]


def test_zero_width_space_in_frame_number_is_caught_by_the_stolen_check(
    client: TestClient, headers: H
) -> None:
    _stolen(client, headers, 8111, "LYDZW8111")
    hidden = f"LYD{ZWSP}ZW8{ZWSP}111\u2060"
    again = client.post(
        "/api/v1/bikes", json=registration(8112, frame_number=hidden), headers=headers["registrar"]
    )
    assert again.status_code == 409, again.text
    assert again.json()["type"].endswith("/stolen-match")


def test_look_alike_plate_finds_the_bike_and_cannot_be_registered_twice(
    client: TestClient, headers: H
) -> None:
    made = client.post(
        "/api/v1/bikes", json=registration(8121, plate="浙B·MX8121"), headers=headers["registrar"]
    )
    assert made.status_code == 201, made.text
    look_alike = f"浙B{ZWSP}{CYRILLIC_M}{CYRILLIC_KHA}8121"
    found = client.get("/api/v1/bikes", params={"plate": look_alike}, headers=headers["officer"])
    assert found.status_code == 200, found.text
    assert found.json()["bike_id"] == made.json()["bike_id"]
    twin = client.post(
        "/api/v1/bikes", json=registration(8122, plate=look_alike), headers=headers["registrar"]
    )
    assert twin.status_code == 409, twin.text
    assert twin.json()["type"].endswith("/plate-taken")


def test_hidden_characters_are_not_stored_in_the_registered_numbers(
    client: TestClient, headers: H
) -> None:
    made = client.post(
        "/api/v1/bikes",
        json=registration(8131, frame_number=f"LYD{ZWSP}8131", plate=f"浙B·{ZWSP}8131"),
        headers=headers["registrar"],
    )
    assert made.status_code == 201, made.text
    assert made.json()["frame_number"] == "LYD8131"
    assert made.json()["plate"] == "浙B·8131"


def _old_key(text: str) -> str:
    """The key as made before migration 0065: NFKC, no separators, upper case, nothing else."""
    return re.sub(r"[\s·・.\-_/\\|,，。]+", "", unicodedata.normalize("NFKC", text)).upper()


def test_migration_0065_rekeys_look_alikes_and_disarms_a_previous_owners_watch(
    empty_db: str,
) -> None:
    migrate(empty_db, until=64)
    cyrillic_frame = f"{CYRILLIC_M}777{CYRILLIC_KHA}"
    hidden_plate = f"浙B·{ZWSP}77{CYRILLIC_KHA}"
    with psycopg.connect(empty_db) as conn:
        owner = conn.execute(
            "INSERT INTO owners (name, phone, id_number_hash, id_number_tail) "
            "VALUES ('A', '1', 'x', '0000') RETURNING owner_id"
        ).fetchone()
        assert owner is not None

        def bike(frame: str) -> int:
            row = conn.execute(
                "INSERT INTO bikes (owner_id, frame_number, frame_number_key) "
                "VALUES (%s, %s, %s) RETURNING bike_id",
                (owner[0], frame, _old_key(frame).translate(str.maketrans("OQDILZSB", "00011258"))),
            ).fetchone()
            assert row is not None
            return int(row[0])

        looks_latin = bike(cyrillic_frame)  # stored before: its key kept the Cyrillic letters
        latin_twin, cyrillic_twin = bike("K555X"), bike(f"K555{CYRILLIC_KHA}")
        conn.execute(
            "INSERT INTO plates (plate, plate_key, bike_id) VALUES (%s, %s, %s)",
            (hidden_plate, _old_key(hidden_plate), looks_latin),
        )
        assert _old_key(hidden_plate) != normalize_plate(hidden_plate)
        # Handed to another owner before 0065: the previous owner's watch was left armed.
        handed_at = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
        conn.execute(
            "INSERT INTO audit_log (at, actor, action, subject, bike_id) "
            "VALUES (%s, 'registrar', 'bike.owner_change', %s, %s)",
            (handed_at, f"bike:{latin_twin}", latin_twin),
        )
        previous = conn.execute(
            "INSERT INTO users (username, password_hash, role) "
            "VALUES ('previous-owner', 'x', 'resident') RETURNING user_id"
        ).fetchone()
        assert previous is not None
        left_armed = conn.execute(
            "INSERT INTO watches (bike_id, kind, created_by, starts_at, ends_at) "
            "VALUES (%s, 'armed', %s, %s, %s) RETURNING watch_id",
            (
                latin_twin,
                previous[0],
                handed_at - timedelta(days=1),
                handed_at + timedelta(days=60),
            ),
        ).fetchone()
        assert left_armed is not None
    applied = migrate(empty_db)
    assert applied[0].version == 65
    with psycopg.connect(empty_db) as conn:
        since = conn.execute("SELECT owner_since FROM bikes WHERE bike_id = %s", (latin_twin,))
        assert since.fetchone() == (handed_at,)
        closed = conn.execute("SELECT closed_at FROM watches WHERE watch_id = %s", left_armed)
        assert closed.fetchone() != (None,)
        disarmed = conn.execute(
            "SELECT actor, subject FROM audit_log WHERE action = 'watch.disarm'"
        ).fetchall()
        assert disarmed == [("system:migration-0065", f"watch:{left_armed[0]}")]
    with psycopg.connect(empty_db) as conn:
        keys = dict(conn.execute("SELECT bike_id, frame_number_key FROM bikes").fetchall())
        plate_key = conn.execute("SELECT plate_key FROM plates").fetchone()
        collisions = conn.execute(
            "SELECT actor, bike_id, detail FROM audit_log WHERE action = 'registry.key_collision'"
        ).fetchall()
    assert keys[looks_latin] == frame_number_key("M777X") == "M777X"
    assert plate_key == ("浙B77X",)
    # The Cyrillic twin of an active Latin frame number is not forced onto its key: it keeps
    # the old one and a registrar is told, through the audit log.
    assert keys[latin_twin] == "K555X"
    assert keys[cyrillic_twin] == f"K555{CYRILLIC_KHA}"
    assert collisions == [
        (
            "system:migration-0065",
            cyrillic_twin,
            {
                "field": "frame_number",
                "value": f"K555{CYRILLIC_KHA}",
                "key": "K555X",
                "held_by_bike": latin_twin,
            },
        )
    ]
