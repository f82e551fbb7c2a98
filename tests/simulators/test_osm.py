from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import osmium
import pytest
from sim_helpers import START

from citymap.network import is_strongly_connected
from citymap.network_files import load_city, load_roads, save_city
from citymap.osm import OsmImportError, bike_class, oneway_direction, read_osm
from simulators.scenario import SimOptions, run

OSM = Path(__file__).parent / "data" / "small_town.osm"


def _same(a: object, b: object) -> bool:
    fields = ("node_xy_m", "node_lonlat", "edge_src", "edge_dst", "edge_length_m",
              "edge_class", "edge_oneway", "node_kind")  # fmt: skip
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in fields)


def test_osm_import_keeps_bike_roads_only() -> None:
    city = read_osm(OSM)
    assert is_strongly_connected(city)
    assert set(city.edge_class) == {"arterial", "street", "lane", "bridge"}
    assert set(city.node_kind) == {"junction", "shape"}
    # the motorway, steps, private drive, bicycle=no track, construction, the island and the
    # one-way dead end are gone: every kept node lies inside the 7 x 7 grid (+ roundabout).
    x, y = city.node_xy_m.T
    assert x.max() - x.min() < 7 * 150
    assert y.max() - y.min() < 7 * 150
    rev = city.edge_index(city.edge_dst, city.edge_src)
    assert np.array_equal(rev < 0, city.edge_oneway)
    assert 20 <= int(city.edge_oneway.sum()) <= 40
    d = city.node_xy_m[city.edge_dst] - city.node_xy_m[city.edge_src]
    assert np.allclose(np.hypot(d[:, 0], d[:, 1]), city.edge_length_m)
    assert 50 < city.edge_length_m.mean() < 100  # half blocks of 150 m and short links


@pytest.mark.parametrize(
    ("tags", "cls"),
    [
        ({"highway": "primary"}, "arterial"),
        ({"highway": "residential", "bridge": "yes"}, "bridge"),
        ({"highway": "footway"}, None),
        ({"highway": "footway", "bicycle": "yes"}, "lane"),
        ({"highway": "motorway"}, None),
        ({"highway": "service", "access": "private"}, None),
        ({"highway": "secondary", "bicycle": "use_sidepath"}, None),
    ],
)
def test_bike_class(tags: dict[str, str], cls: str | None) -> None:
    assert bike_class(tags) == cls


def test_oneway_rules() -> None:
    assert oneway_direction({"oneway": "yes"}) == 1
    assert oneway_direction({"oneway": "-1"}) == -1
    assert oneway_direction({"junction": "roundabout"}) == 1
    assert oneway_direction({"oneway": "yes", "oneway:bicycle": "no"}) == 0
    assert oneway_direction({"oneway": "yes", "cycleway": "opposite_lane"}) == 0


def test_pbf_gives_the_same_network(tmp_path: Path) -> None:
    pbf = tmp_path / "small_town.osm.pbf"
    writer = osmium.SimpleWriter(str(pbf))
    try:
        for obj in osmium.FileProcessor(str(OSM)):
            writer.add(obj)
    finally:
        writer.close()
    assert pbf.read_bytes()[:4] != b"<?xm"
    assert _same(read_osm(pbf), read_osm(OSM))


def test_network_file_round_trip_is_byte_stable(tmp_path: Path) -> None:
    city = read_osm(OSM)
    save_city(city, tmp_path / "a.npz")
    save_city(load_city(tmp_path / "a.npz"), tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert _same(load_roads(tmp_path / "a.npz"), city)


def test_not_osm_is_a_typed_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.osm"
    bad.write_text("<osm version='0.6'></osm>")
    with pytest.raises(OsmImportError):
        read_osm(bad)


def test_simulation_on_imported_roads() -> None:
    options = SimOptions(seed=3, bikes=80, hours=1.0, roads=str(OSM), coverage=0.5, start=START)
    result = run(options)
    assert len(result.readers) == round(0.5 * (result.city.node_kind == "junction").sum())
    assert set(result.city.node_kind[[r.node for r in result.readers]]) == {"junction"}
    assert len(result.reads) > 100
    assert result.passages["heard"].sum() > 10
    kinds = Counter(result.population.trips["kind"])
    assert kinds["theft"] == 2
