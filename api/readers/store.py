"""The readers in the field as operators see them: registry rows, heartbeats, traffic.

Health needs three signals: the reader's heartbeat (``readers.last_heard_at``), the gateway's
own verdict (``readers.gateway_status``) and its traffic compared with what that road usually
carries, because a reader that answers heartbeats but hears no tags on a busy road is as
useless as one that is off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg.rows import class_row

from track_engine.db.network import address_of


@dataclass(frozen=True, slots=True)
class ReaderActivity:
    """A reader with its heartbeat, last read and usual traffic."""

    reader_id: str
    name: str
    protocol: str
    lon: float
    lat: float
    antennas: int
    installed_at: datetime
    last_heard_at: datetime | None
    last_read_at: datetime | None
    passages_7d: int
    gateway_status: str | None = None  # the gateway's retained verdict (reader_status.py)
    gateway_status_at: datetime | None = None


def reader_activity(
    conn: psycopg.Connection, *, now: datetime, reader_id: str | None = None
) -> list[ReaderActivity]:
    """Every reader (or one) with its last read and passages in the 7 days before ``now``."""
    with conn.cursor(row_factory=class_row(ReaderActivity)) as cur:
        return cur.execute(
            """SELECT r.reader_id, r.name, r.protocol, r.lon, r.lat, r.antennas::int AS antennas,
                      r.installed_at, r.last_heard_at,
                      (SELECT max(p.last_at) FROM passages p
                       WHERE p.reader_id = r.reader_id AND p.first_at > %(week)s
                         AND p.first_at <= %(now)s) AS last_read_at,
                      (SELECT count(*) FROM passages p
                       WHERE p.reader_id = r.reader_id AND p.first_at > %(week)s
                         AND p.first_at <= %(now)s)::int AS passages_7d,
                      r.gateway_status, r.gateway_status_at
               FROM readers r
               WHERE %(rid)s::text IS NULL OR r.reader_id = %(rid)s
               ORDER BY r.reader_id""",
            {"now": now, "week": now - timedelta(days=7), "rid": reader_id},
        ).fetchall()


def network_origin(conn: psycopg.Connection) -> tuple[int, float, float] | None:
    """(network_id, origin_lon, origin_lat) of the active network, for projecting readers."""
    row = conn.execute(
        "SELECT network_id, origin_lon, origin_lat FROM road_networks WHERE active"
    ).fetchone()
    return None if row is None else (int(row[0]), float(row[1]), float(row[2]))


def reader_ids(conn: psycopg.Connection) -> set[str]:
    """Ids of every registered reader."""
    return {str(r[0]) for r in conn.execute("SELECT reader_id FROM readers")}


def reader_addresses(conn: psycopg.Connection, *, reader_id: str | None = None) -> dict[str, str]:
    """Each reader's address (or one's): the named streets meeting at its road node
    (:func:`track_engine.db.network.address_of`); readers with none are left out."""
    rows = conn.execute(
        """SELECT reader_id, name, count(*)::int FROM (
               SELECT r.reader_id, e.name FROM readers r JOIN road_edges e
                 ON e.network_id = r.network_id AND e.src = r.node_id
               WHERE %(rid)s::text IS NULL OR r.reader_id = %(rid)s
               UNION ALL
               SELECT r.reader_id, e.name FROM readers r JOIN road_edges e
                 ON e.network_id = r.network_id AND e.dst = r.node_id
               WHERE %(rid)s::text IS NULL OR r.reader_id = %(rid)s
           ) at_node WHERE name IS NOT NULL GROUP BY reader_id, name""",
        {"rid": reader_id},
    ).fetchall()
    per_reader: dict[str, dict[str, int]] = {}
    for rid, name, count in rows:
        per_reader.setdefault(str(rid), {})[str(name)] = int(count)
    return {rid: address_of(counts) for rid, counts in per_reader.items()}
