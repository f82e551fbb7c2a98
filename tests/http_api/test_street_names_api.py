"""Street names served: /network's streets layer, readers' addresses in /network and /readers,
from a generated city stored in the real database with its names."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest
from api_fixtures import api_db, client, headers
from fastapi.testclient import TestClient

from api.registry import loaders as registry
from simulators.city import generate_city

__all__ = ["api_db", "client", "headers"]

CITY = generate_city(seed=11, size_m=1200.0)


def _junctions_with_two_names() -> list[int]:
    names = CITY.edge_names()
    return [
        n for n in range(CITY.n_nodes)
        if len({str(x) for x in names[CITY.edge_src == n] if x}) == 2
    ][:3]  # fmt: skip


@pytest.fixture(scope="module")
def stored(api_db: str) -> list[int]:
    """The generated city with readers R0..R2 at junctions of two named streets."""
    nodes = _junctions_with_two_names()
    city = CITY
    with psycopg.connect(api_db) as conn:
        network_id = registry.store_road_network(
            conn, name="named", source="test:named",
            origin_lat=city.origin_lat, origin_lon=city.origin_lon,
            nodes=pd.DataFrame({
                "node_id": np.arange(city.n_nodes), "lon": city.node_lonlat[:, 0],
                "lat": city.node_lonlat[:, 1], "x_m": city.node_xy_m[:, 0],
                "y_m": city.node_xy_m[:, 1], "kind": city.node_kind,
            }),
            edges=pd.DataFrame({
                "edge_id": np.arange(city.n_edges), "src": city.edge_src, "dst": city.edge_dst,
                "length_m": city.edge_length_m, "road_class": city.edge_class,
                "oneway": city.edge_oneway, "name": city.edge_names(),
            }),
        )  # fmt: skip
        readers = pd.DataFrame(
            {
                "reader_id": [f"R{i}" for i in range(len(nodes))],
                "protocol": "r2000",
                "lon": city.node_lonlat[nodes, 0],
                "lat": city.node_lonlat[nodes, 1],
                "x_m": city.node_xy_m[nodes, 0],
                "y_m": city.node_xy_m[nodes, 1],
                "node_id": nodes,
                "antennas": 1,
                "antenna_headings": [[90.0]] * len(nodes),
                "clock_offset_ms": 0.0,
                "miss_rate": 0.1,
            }
        )
        registry.upsert_readers(conn, readers, network_id=network_id)
    return nodes


def _expected_address(node: int) -> set[str]:
    names = CITY.edge_names()
    return {str(x) for x in names[CITY.edge_src == node] if x}


def test_database_keeps_the_names(api_db: str, stored: list[int]) -> None:
    with psycopg.connect(api_db) as conn:
        rows = conn.execute("SELECT name FROM road_edges ORDER BY edge_id").fetchall()
    got = np.array([r[0] or "" for r in rows], dtype=object)
    assert np.array_equal(got, CITY.edge_names())


def test_network_serves_streets_merged(
    client: TestClient, headers: dict[str, dict[str, str]], stored: list[int]
) -> None:
    body = client.get("/api/v1/network", headers=headers["officer"]).json()
    layers = {f["properties"]["layer"] for f in body["features"]}
    assert layers == {"roads", "streets", "readers"}
    streets: dict[str, Any] = {
        f["properties"]["name"]: f
        for f in body["features"]
        if f["properties"]["layer"] == "streets"
    }
    named = {str(n) for n in CITY.edge_names() if n}
    assert set(streets) == named
    # Consecutive edges are merged: far fewer lines than the street's segments.
    first = streets["1st Street"]["geometry"]["coordinates"]
    segments = sum(len(line) - 1 for line in first)
    assert len(first) < segments
    # Every undirected named segment drawn exactly once across the streets layer.
    names = CITY.edge_names()
    pairs = {
        (min(s, d), max(s, d))
        for s, d, n in zip(CITY.edge_src.tolist(), CITY.edge_dst.tolist(), names, strict=True)
        if n
    }
    drawn = sum(len(line) - 1 for f in streets.values() for line in f["geometry"]["coordinates"])
    assert drawn == len(pairs)
    readers = {
        f["properties"]["reader_id"]: f["properties"]["address"]
        for f in body["features"]
        if f["properties"]["layer"] == "readers"
    }
    for i, node in enumerate(stored):
        assert set(readers[f"R{i}"].split(" × ")) == _expected_address(node)


def test_readers_api_gives_addresses(
    client: TestClient, headers: dict[str, dict[str, str]], stored: list[int]
) -> None:
    items = client.get("/api/v1/readers", headers=headers["operator"]).json()["items"]
    by_id = {r["reader_id"]: r for r in items}
    for i, node in enumerate(stored):
        assert set(by_id[f"R{i}"]["address"].split(" × ")) == _expected_address(node)
    one = client.get("/api/v1/readers/R0", headers=headers["operator"]).json()
    assert one["address"] == by_id["R0"]["address"]
