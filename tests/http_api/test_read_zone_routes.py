"""A reader's surveyed read range reaches the route API: a bike heard from a street inside the
reader's zone is drawn along the street, not through the reader's node (track_engine/
route_zones.py; migration 0170's ``readers.range_m``, from the deployment file)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
from fastapi.testclient import TestClient
from scenarios import registration

from api.registry import loaders as registry
from track_engine.db.network import load_network
from track_engine.db.writer import PartitionKeeper, store_passages
from track_engine.passages import PASSAGE_COLUMNS

US = 1_000_000
LAT0, LON0 = 60.17, 24.94
# A street A -> B and, 10 m north of it, a service road through X's junction, joined to the
# street only at its ends (tests/engine/test_read_zones.py draws it). X's pole stands 2.5 m
# south of its node, on the hedge, and reads 8 m round it: its zone covers the street.
XY = np.array([[0, 0], [200, 0], [100, 0], [0, 10], [100, 10], [200, 10]], dtype=float)


def _city(url: str) -> None:
    lonlat = np.column_stack([LON0 + XY[:, 0] / 55_000.0, LAT0 + XY[:, 1] / 111_195.0])
    nodes = pd.DataFrame(
        {"node_id": range(6), "lon": lonlat[:, 0], "lat": lonlat[:, 1], "x_m": XY[:, 0],
         "y_m": XY[:, 1], "kind": "junction"}
    )  # fmt: skip
    two_way = [(0, 2), (2, 1), (0, 3), (3, 4), (4, 5), (5, 1)]
    pairs = two_way + [(b, a) for a, b in two_way]
    edges = pd.DataFrame(
        {
            "edge_id": range(len(pairs)), "src": [a for a, _ in pairs],
            "dst": [b for _, b in pairs],
            "length_m": [float(np.hypot(*(XY[a] - XY[b]))) for a, b in pairs],
            "road_class": "residential", "oneway": False, "name": "",
        }
    )  # fmt: skip
    poles = {"A": (0, (0.0, 0.0), None), "B": (1, (200.0, 0.0), None), "X": (4, (100.0, 7.5), 8.0)}
    readers = pd.DataFrame(
        {
            "reader_id": list(poles), "protocol": "impinj-iot",
            "lon": [LON0 + p[1][0] / 55_000.0 for p in poles.values()],
            "lat": [LAT0 + p[1][1] / 111_195.0 for p in poles.values()],
            "x_m": [p[1][0] for p in poles.values()], "y_m": [p[1][1] for p in poles.values()],
            "node_id": [p[0] for p in poles.values()], "antennas": 1,
            "antenna_headings": [[90.0]] * 3, "clock_offset_ms": 0.0, "miss_rate": 0.1,
            "range_m": [p[2] for p in poles.values()],
        }
    )  # fmt: skip
    with psycopg.connect(url) as conn:
        network_id = registry.store_road_network(
            conn, name="hedge", source="test:hedge", origin_lat=LAT0, origin_lon=LON0,
            nodes=nodes, edges=edges,
        )  # fmt: skip
        registry.upsert_readers(conn, readers, network_id=network_id)


def _ride(url: str, tag_id: str, t0: datetime) -> None:
    """Along the street at 5 m/s: A, then X hears it weakly as it passes, then B."""
    t0_us = int(t0.timestamp() * US)
    visits = [("A", 0.0, -45.0), ("X", 20.0, -54.0), ("B", 40.0, -45.0)]
    closest = np.array([t0_us + round(s * US) for _, s, _ in visits], dtype=np.int64)
    frame = pd.DataFrame(
        {
            "tag_id": tag_id, "reader_id": [r for r, _, _ in visits],
            "first_at_us": closest - US, "last_at_us": closest + US, "closest_at_us": closest,
            "peak_rssi_dbm": [p for _, _, p in visits], "read_count": 20, "direction": "",
        }
    )[PASSAGE_COLUMNS]  # fmt: skip
    with psycopg.connect(url) as conn:
        store_passages(conn, frame, partitions=PartitionKeeper())


def test_the_surveyed_range_is_stored_and_loaded_as_the_readers_zone(api_db: str) -> None:
    _city(api_db)
    with psycopg.connect(api_db) as conn:
        network = load_network(conn)
    assert network is not None
    zones = network.reader_zones()
    assert set(zones) == {"X"}  # A and B have no surveyed range: no zone
    assert (zones["X"].x_m, zones["X"].y_m, zones["X"].range_m) == (100.0, 7.5, 8.0)


def test_a_bike_heard_from_the_street_inside_the_zone_is_drawn_along_the_street(
    api_db: str, client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    body = registration(8501)
    made = client.post("/api/v1/bikes", json=body, headers=headers["registrar"])
    assert made.status_code == 201, made.text
    with psycopg.connect(api_db) as conn:  # tagged an hour ago
        conn.execute(
            "UPDATE tag_bindings SET valid = tstzrange(now() - interval '1 hour', NULL)"
            " WHERE tag_id = %s",
            (body["tag_id"],),
        )
    _ride(api_db, body["tag_id"], datetime.now(UTC) - timedelta(minutes=5))
    route = client.get(
        f"/api/v1/routes/{body['plate']}", params={"reason": "checking a tip"},
        headers=headers["officer"],
    )  # fmt: skip
    assert route.status_code == 200, route.text
    feature = route.json()
    lats = {round(lat, 7) for _, lat in feature["geometry"]["coordinates"]}
    assert lats == {LAT0}  # along the street (y = 0), never up to the service road (y = 10)
    passages = [p["reader_id"] for p in feature["properties"]["passages"]]
    assert passages == ["A", "B"]  # X's read was heard from the street: merged, not a visit
    assert [m["reader_id"] for m in feature["properties"]["merged_passages"]] == ["X"]


def test_an_imported_reader_keeps_its_surveyed_range(
    api_db: str, client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    reader = {"reader_id": "Y", "protocol": "impinj-iot", "lon": LON0, "lat": LAT0}
    refused = client.post(
        "/api/v1/readers/import", json=[reader | {"range_m": 0}], headers=headers["admin"]
    )
    assert refused.status_code == 422, refused.text
    got = client.post(
        "/api/v1/readers/import", json=[reader | {"range_m": 6.5}], headers=headers["admin"]
    )
    assert got.status_code == 200, got.text
    with psycopg.connect(api_db) as conn:
        row = conn.execute("SELECT range_m FROM readers WHERE reader_id = 'Y'").fetchone()
    assert row == (6.5,)
