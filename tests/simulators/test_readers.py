from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from citymap.network import City
from simulators.readers import candidate_nodes, place_readers


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 1.0])
def test_fraction_respected(city: City, fraction: float) -> None:
    readers = place_readers(city, seed=1, fraction=fraction)
    assert len(readers) == round(fraction * len(candidate_nodes(city)))
    nodes = [r.node for r in readers]
    assert len(set(nodes)) == len(nodes)
    assert set(city.node_kind[nodes]) <= {"junction", "estate_gate", "campus_gate"}
    assert [r.reader_id for r in readers] == [f"R{k:04d}" for k in range(1, len(readers) + 1)]


def test_same_seed_same_readers(city: City) -> None:
    a = place_readers(city, seed=3, protocol_mix={"impinj-iot": 1, "r2000": 1})
    b = place_readers(city, seed=3, protocol_mix={"impinj-iot": 1, "r2000": 1})
    assert [dataclasses.astuple(r) for r in a] == [dataclasses.astuple(r) for r in b]
    assert {r.protocol for r in a} == {"impinj-iot", "r2000"}


def test_bridges_and_arterials_first(city: City) -> None:
    readers = place_readers(city, seed=2, fraction=0.2)
    ends = np.concatenate([city.edge_src, city.edge_dst])
    cls = np.concatenate([city.edge_class, city.edge_class])
    bridge_heads = set(ends[cls == "bridge"].tolist())
    assert bridge_heads <= {r.node for r in readers}
    arterial = set(ends[cls == "arterial"].tolist())
    assert sum(r.node in arterial for r in readers) >= 0.9 * (len(readers) - len(bridge_heads))


def test_reader_fields(city: City) -> None:
    for r in place_readers(city, seed=4):
        off = np.hypot(r.x_m - city.node_xy_m[r.node, 0], r.y_m - city.node_xy_m[r.node, 1])
        assert 1.0 <= off <= 5.0
        assert r.antennas == len(r.antenna_heading_deg) in (1, 2)
        assert 4.0 <= r.range_m <= 8.0
        assert 0.0 <= r.miss_rate < 0.2
        lonlat = city.to_lonlat(np.array([r.x_m, r.y_m]))
        assert (r.lon, r.lat) == pytest.approx(tuple(lonlat))


def test_unknown_protocol_rejected(city: City) -> None:
    with pytest.raises(ValueError, match="unknown protocols"):
        place_readers(city, seed=1, protocol_mix={"no-such-protocol": 1.0})
