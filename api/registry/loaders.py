"""Bulk writes to the registry tables: road networks, readers, bikes with owners, plates, tags.

Bulk loaders used by imports, the simulator bridge and the demo. Single registrations at a
tagging event go through the API's registration service, which calls these same functions.
The caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import psycopg

from track_engine.identifiers import frame_number_key, normalize_plate


def store_road_network(
    conn: psycopg.Connection,
    *,
    name: str,
    source: str,
    origin_lat: float,
    origin_lon: float,
    nodes: pd.DataFrame,
    edges: pd.DataFrame,
) -> int:
    """Store a road network and make it the active one; returns its ``network_id``.

    ``nodes``: node_id, lon, lat, x_m, y_m, kind. ``edges``: edge_id, src, dst, length_m,
    road_class, oneway and, optionally, name (the street name; ``""`` or missing: none).
    """
    if "name" not in edges.columns:
        edges = edges.assign(name="")
    # An unnamed road is stored as NULL, not as an empty name (nor pandas' "nan").
    edges = edges.assign(
        name=pd.Series(
            [str(n) if isinstance(n, str) and n else None for n in edges["name"].tolist()],
            index=edges.index,
            dtype=object,
        )
    )
    conn.execute("UPDATE road_networks SET active = false WHERE active")
    row = conn.execute(
        "INSERT INTO road_networks (name, source, origin_lat, origin_lon, active) "
        "VALUES (%s, %s, %s, %s, true) RETURNING network_id",
        (name, source, origin_lat, origin_lon),
    ).fetchone()
    if row is None:
        raise RuntimeError("store_road_network: the database returned no row")
    network_id = int(row[0])
    with conn.cursor() as cur:
        with cur.copy(
            "COPY road_nodes (network_id, node_id, lon, lat, x_m, y_m, kind) FROM STDIN"
        ) as copy:
            for rec in nodes[["node_id", "lon", "lat", "x_m", "y_m", "kind"]].itertuples(
                index=False
            ):
                copy.write_row((network_id, *rec))
        with cur.copy(
            "COPY road_edges (network_id, edge_id, src, dst, length_m, road_class, oneway, "
            "name) FROM STDIN"
        ) as copy:
            for rec in edges[
                ["edge_id", "src", "dst", "length_m", "road_class", "oneway", "name"]
            ].itertuples(index=False):
                copy.write_row((network_id, *rec))
    return network_id


def upsert_readers(conn: psycopg.Connection, readers: pd.DataFrame, *, network_id: int) -> None:
    """Insert or update readers: reader_id, protocol, lon, lat, x_m, y_m, node_id, antennas,
    antenna_headings (list of degrees), clock_offset_ms, miss_rate, and optionally range_m (the
    surveyed read range round the pole, meters; NULL where absent)."""
    columns = ["reader_id", "protocol", "lon", "lat", "x_m", "y_m", "node_id", "antennas"]
    columns += ["antenna_headings", "clock_offset_ms", "miss_rate"]
    ranges = readers["range_m"].tolist() if "range_m" in readers.columns else [None] * len(readers)
    rows = [
        (
            rid,
            proto,
            float(lon),
            float(lat),
            float(x),
            float(y),
            network_id,
            int(node),
            int(ants),
            [float(h) for h in headings],
            float(offset),
            float(miss),
            None if reach is None or pd.isna(reach) else float(reach),
        )
        for rid, proto, lon, lat, x, y, node, ants, headings, offset, miss, reach in zip(
            *(readers[c].tolist() for c in columns), ranges, strict=True
        )
    ]
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO readers (reader_id, protocol, lon, lat, x_m, y_m, network_id, node_id,
                                    antennas, antenna_headings, clock_offset_ms, miss_rate,
                                    range_m)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (reader_id) DO UPDATE SET
                 protocol = EXCLUDED.protocol, lon = EXCLUDED.lon, lat = EXCLUDED.lat,
                 x_m = EXCLUDED.x_m, y_m = EXCLUDED.y_m, network_id = EXCLUDED.network_id,
                 node_id = EXCLUDED.node_id, antennas = EXCLUDED.antennas,
                 antenna_headings = EXCLUDED.antenna_headings,
                 clock_offset_ms = EXCLUDED.clock_offset_ms, miss_rate = EXCLUDED.miss_rate,
                 range_m = EXCLUDED.range_m""",
            rows,
        )


def hash_id_number(id_number: str, *, key: bytes) -> bytes:
    """Keyed hash of a national ID number: duplicates are found, the number is never stored."""
    return hmac.new(key, id_number.strip().upper().encode(), hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class Registration:
    """One bike registered with its owner, plate and tag."""

    owner_name: str
    owner_phone: str
    owner_id_number: str
    brand: str
    colour: str
    frame_number: str
    plate: str
    tag_id: str


def register_bikes(
    conn: psycopg.Connection,
    registrations: list[Registration],
    *,
    registered_at: datetime,
    id_hash_key: bytes,
) -> dict[str, int]:
    """Register bikes in bulk; returns ``{plate: bike_id}``."""
    bike_ids: dict[str, int] = {}
    with conn.cursor() as cur:
        for reg in registrations:
            id_hash = hash_id_number(reg.owner_id_number, key=id_hash_key)
            cur.execute(
                """INSERT INTO owners (name, phone, id_number_hash, id_number_tail)
                   VALUES (%s, %s, %s, %s)
                   ON CONFLICT (id_number_hash) DO UPDATE SET name = EXCLUDED.name
                   RETURNING owner_id""",
                (reg.owner_name, reg.owner_phone, id_hash, reg.owner_id_number[-4:]),
            )
            owner = cur.fetchone()
            if owner is None:
                raise RuntimeError("register_bikes: the database returned no row")
            cur.execute(
                """INSERT INTO bikes (owner_id, brand, colour, frame_number, frame_number_key,
                                      registered_at)
                   VALUES (%s, %s, %s, %s, %s, %s) RETURNING bike_id""",
                (
                    owner[0],
                    reg.brand,
                    reg.colour,
                    reg.frame_number,
                    frame_number_key(reg.frame_number),
                    registered_at,
                ),
            )
            bike = cur.fetchone()
            if bike is None:
                raise RuntimeError("register_bikes: the database returned no row")
            bike_id = int(bike[0])
            cur.execute(
                "INSERT INTO plates (plate, plate_key, bike_id, valid) "
                "VALUES (%s, %s, %s, tstzrange(%s, NULL))",
                (reg.plate, normalize_plate(reg.plate), bike_id, registered_at),
            )
            cur.execute(
                "INSERT INTO tags (tag_id) VALUES (%s) ON CONFLICT DO NOTHING", (reg.tag_id,)
            )
            cur.execute(
                "INSERT INTO tag_bindings (tag_id, bike_id, valid) "
                "VALUES (%s, %s, tstzrange(%s, NULL))",
                (reg.tag_id, bike_id, registered_at),
            )
            bike_ids[reg.plate] = bike_id
    return bike_ids


def open_theft(
    conn: psycopg.Connection,
    *,
    bike_id: int,
    stolen_at: datetime,
    reported_at: datetime,
    place: str,
    description: str,
    case_number: str | None,
    reported_by: int | None = None,
) -> tuple[int, int]:
    """Record a theft and open its watch at once; returns ``(theft_id, watch_id)``."""
    status = "confirmed" if case_number else "reported"
    theft = conn.execute(
        """INSERT INTO thefts (bike_id, reported_at, stolen_at, place, description, status,
                               case_number, reported_by)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING theft_id""",
        (bike_id, reported_at, stolen_at, place, description, status, case_number, reported_by),
    ).fetchone()
    if theft is None:
        raise RuntimeError("open_theft: the database returned no row")
    watch = conn.execute(
        "INSERT INTO watches (bike_id, kind, theft_id, starts_at, created_by) "
        "VALUES (%s, 'theft', %s, %s, %s) RETURNING watch_id",
        (bike_id, theft[0], stolen_at, reported_by),
    ).fetchone()
    if watch is None:
        raise RuntimeError("open_theft: the database returned no row")
    conn.execute("NOTIFY tagtrail_watches")
    return int(theft[0]), int(watch[0])


def registered_frame_keys(conn: psycopg.Connection, frame_numbers: list[str]) -> set[str]:
    """Which of these frame numbers (by look-alike key) are already registered and active."""
    keys = [frame_number_key(f) for f in frame_numbers]
    rows = conn.execute(
        "SELECT frame_number_key FROM bikes WHERE frame_number_key = ANY(%s) "
        "AND deregistered_at IS NULL",
        (keys,),
    ).fetchall()
    return {str(r[0]) for r in rows}


def close_open_thefts(conn: psycopg.Connection, *, bike_id: int, at: datetime) -> int:
    """Mark the bike's open thefts recovered and close their watches; returns how many."""
    closed = conn.execute(
        "UPDATE thefts SET status = 'recovered', recovered_at = %s "
        "WHERE bike_id = %s AND status IN ('reported', 'confirmed')",
        (at, bike_id),
    ).rowcount
    conn.execute(
        "UPDATE watches SET closed_at = %s WHERE bike_id = %s AND closed_at IS NULL", (at, bike_id)
    )
    conn.execute("NOTIFY tagtrail_watches")
    return closed


def active_network_id(conn: psycopg.Connection, *, source: str) -> int | None:
    """The active network's id if it came from ``source`` (so a re-run can reuse it)."""
    row = conn.execute(
        "SELECT network_id FROM road_networks WHERE active AND source = %s", (source,)
    ).fetchone()
    return None if row is None else int(row[0])
