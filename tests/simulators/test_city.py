from __future__ import annotations

import numpy as np
import pytest

from citymap.network import City, is_strongly_connected
from simulators.city import generate_city


def _same(a: City, b: City) -> bool:
    return all(
        np.array_equal(getattr(a, f), getattr(b, f))
        for f in ("node_xy_m", "node_lonlat", "edge_src", "edge_dst", "edge_length_m",
                  "edge_class", "edge_oneway", "node_kind")
    )  # fmt: skip


def test_same_seed_same_city() -> None:
    assert _same(generate_city(seed=5), generate_city(seed=5))
    assert not _same(generate_city(seed=5), generate_city(seed=6))


@pytest.mark.parametrize(("seed", "size_m"), [(0, 2000.0), (1, 2000.0), (2, 3000.0), (3, 5000.0)])
def test_strongly_connected_with_every_feature(seed: int, size_m: float) -> None:
    city = generate_city(seed=seed, size_m=size_m)
    assert is_strongly_connected(city)
    kinds = set(city.node_kind)
    assert {"junction", "estate_gate", "estate", "campus_gate", "campus"} <= kinds
    assert {"arterial", "street", "lane", "bridge"} <= set(city.edge_class)
    assert city.edge_oneway.any()
    # A one-way edge has no reverse; every two-way edge has one.
    rev = city.edge_index(city.edge_dst, city.edge_src)
    assert np.array_equal(rev < 0, city.edge_oneway)


def test_river_is_crossed_only_by_bridges(city: City) -> None:
    assert city.river_y_m is not None
    y = city.node_xy_m[:, 1]
    crosses = (y[city.edge_src] < city.river_y_m) != (y[city.edge_dst] < city.river_y_m)
    assert crosses.any()
    assert set(city.edge_class[crosses]) == {"bridge"}


def test_geometry(city: City) -> None:
    d = city.node_xy_m[city.edge_dst] - city.node_xy_m[city.edge_src]
    assert np.allclose(np.hypot(d[:, 0], d[:, 1]), city.edge_length_m)
    assert (city.edge_length_m > 5.0).all()
    lon, lat = city.node_lonlat.T
    assert abs(lat.min() - 30.05) < 0.01
    assert abs(lon.min() - 121.15) < 0.01
    # 1 degree of latitude is ~111.2 km
    span_lat_m = (lat.max() - lat.min()) * 111_195
    span_y_m = city.node_xy_m[:, 1].max() - city.node_xy_m[:, 1].min()
    assert span_lat_m == pytest.approx(span_y_m, rel=1e-3)


def test_edge_index_round_trip(city: City) -> None:
    idx = city.edge_index(city.edge_src, city.edge_dst)
    assert np.array_equal(idx, np.arange(city.n_edges))
    assert city.edge_index(np.array([0]), np.array([0]))[0] == -1
