"""Small worlds that several test suites build: a straight road with readers, and valid
registration bodies. An ordinary module (not a conftest) so that every suite imports the same
one, whatever order pytest collects the directories in."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import psycopg

from api.registry import loaders as registry

SPACING_M = 300.0
LAT0, LON0 = 30.0, 120.0


def valid_id_number(prefix17: str) -> str:
    """A national ID number with a correct GB 11643 check character."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(prefix17, weights, strict=True))
    return prefix17 + "10X98765432"[total % 11]


def registration(n: int, **overrides: Any) -> dict[str, Any]:
    """A valid registration body, unique by ``n``."""
    body: dict[str, Any] = {
        "owner": {
            "name": f"Owner {n}",
            "phone": f"1380013{n:04d}",
            "id_number": valid_id_number(f"1101011990030{n:04d}"),
            "address": "Riverside estate",
        },
        "brand": "Yadea",
        "model": "DE3",
        "colour": "red",
        "frame_number": f"LYD2024A{n:07d}",
        "motor_number": f"M48V-{n:06d}",
        "plate": f"浙B·{n:05d}",
        "tag_id": f"E28011A1{n:016X}",
    }
    body.update(overrides)
    return body


def line_city(
    url: str, n: int = 6, spacing_m: float = SPACING_M, *, street: str | None = None
) -> None:
    """A straight two-way road with a reader at every node (R0 ... R5), ``spacing_m`` apart;
    ``street`` names the road (every reader's address), None leaves it unnamed."""
    x = np.arange(n) * spacing_m
    lon = LON0 + x / (111_320.0 * np.cos(np.radians(LAT0)))
    nodes = pd.DataFrame(
        {"node_id": range(n), "lon": lon, "lat": LAT0, "x_m": x, "y_m": 0.0, "kind": "junction"}
    )
    src = [*range(n - 1), *range(1, n)]
    dst = [*range(1, n), *range(n - 1)]
    edges = pd.DataFrame(
        {
            "edge_id": range(len(src)),
            "src": src,
            "dst": dst,
            "length_m": spacing_m,
            "road_class": "primary",
            "oneway": False,
            "name": street or "",
        }
    )
    readers = pd.DataFrame(
        {
            "reader_id": [f"R{i}" for i in range(n)],
            "protocol": "r2000",
            "lon": lon,
            "lat": LAT0,
            "x_m": x,
            "y_m": 0.0,
            "node_id": range(n),
            "antennas": 1,
            "antenna_headings": [[90.0]] * n,
            "clock_offset_ms": 0.0,
            "miss_rate": 0.1,
        }
    )
    with psycopg.connect(url) as conn:
        network_id = registry.store_road_network(
            conn,
            name="line",
            source="test:line",
            origin_lat=LAT0,
            origin_lon=LON0,
            nodes=nodes,
            edges=edges,
        )
        registry.upsert_readers(conn, readers, network_id=network_id)


def square_city(url: str, side_m: float = 200.0) -> None:
    """A square block of two-way roads with readers S0 and S3 at opposite corners: between
    them two equal ways (0-1-3 and 0-2-3), ``2 * side_m`` long, no reader on either.

        2 ---- 3 (S3)
        |      |
        0 ---- 1
      (S0)
    """
    x = np.array([0.0, side_m, 0.0, side_m])
    y = np.array([0.0, 0.0, side_m, side_m])
    lon = LON0 + x / (111_320.0 * np.cos(np.radians(LAT0)))
    lat = LAT0 + y / 110_540.0
    nodes = pd.DataFrame(
        {"node_id": range(4), "lon": lon, "lat": lat, "x_m": x, "y_m": y, "kind": "junction"}
    )
    pairs = [(0, 1), (1, 3), (0, 2), (2, 3)]
    src = [a for a, b in pairs] + [b for a, b in pairs]
    dst = [b for a, b in pairs] + [a for a, b in pairs]
    edges = pd.DataFrame(
        {
            "edge_id": range(len(src)),
            "src": src,
            "dst": dst,
            "length_m": side_m,
            "road_class": "primary",
            "oneway": False,
        }
    )
    corners = [0, 3]
    readers = pd.DataFrame(
        {
            "reader_id": [f"S{i}" for i in corners],
            "protocol": "r2000",
            "lon": lon[corners],
            "lat": lat[corners],
            "x_m": x[corners],
            "y_m": y[corners],
            "node_id": corners,
            "antennas": 1,
            "antenna_headings": [[90.0]] * len(corners),
            "clock_offset_ms": 0.0,
            "miss_rate": 0.1,
        }
    )
    with psycopg.connect(url) as conn:
        network_id = registry.store_road_network(
            conn,
            name="square",
            source="test:square",
            origin_lat=LAT0,
            origin_lon=LON0,
            nodes=nodes,
            edges=edges,
        )
        registry.upsert_readers(conn, readers, network_id=network_id)
