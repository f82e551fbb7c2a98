"""Stitching passages into routes on a small hand-made grid."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from track_engine.passages import PASSAGE_COLUMNS
from track_engine.roads import RoadGraph, precompute_reader_paths
from track_engine.route_geometry import POINT_COLUMNS
from track_engine.route_result import POINT_KINDS, Route
from track_engine.routes import build_route, route_length_m

T0_US = 1_764_400_000_000_000  # a whole second
US = 1_000_000
COLS, ROWS, SPACING_M = 4, 3, 100.0
# Node id = row * COLS + col at (col, row) * 100 m:
#   8 -- 9 -- 10 -- 11(C)
#   4 -- 5 -- 6  -- 7
#   0(A)-1 -- 2  -- 3(B)      D sits on node 8.
READERS = {"A": 0, "B": 3, "C": 11, "D": 8}


def grid_graph() -> RoadGraph:
    col, row = np.meshgrid(np.arange(COLS), np.arange(ROWS))
    xy = np.column_stack([col.ravel(), row.ravel()]).astype(float) * SPACING_M
    ids = np.arange(COLS * ROWS).reshape(ROWS, COLS)
    src = np.concatenate([ids[:, :-1].ravel(), ids[:-1, :].ravel()])
    dst = np.concatenate([ids[:, 1:].ravel(), ids[1:, :].ravel()])
    lonlat = np.column_stack([121.15 + xy[:, 0] / 96_250.0, 30.04 + xy[:, 1] / 111_195.0])
    return RoadGraph.from_arrays(
        node_lonlat=lonlat, node_xy_m=xy, edge_src=src, edge_dst=dst, both_directions=True
    )


def passages(*visits: tuple[str, float], tag_id: str = "E200") -> pd.DataFrame:
    """Passages at (reader, seconds after T0), each in range for ±1 s around closest."""
    closest = np.array([T0_US + round(s * US) for _, s in visits], dtype=np.int64)
    frame = pd.DataFrame(
        {
            "tag_id": tag_id,
            "reader_id": [r for r, _ in visits],
            "first_at_us": closest - US,
            "last_at_us": closest + US,
            "closest_at_us": closest,
            "peak_rssi_dbm": -55.0,
            "read_count": 12,
            "direction": "",
        }
    )
    return frame[PASSAGE_COLUMNS]


def xy_at(route: Route, t_us: int) -> list[float]:
    row = route.points[route.points["t_us"] == t_us]
    assert len(row) == 1
    xy: list[float] = row[["x_m", "y_m"]].to_numpy(dtype=float)[0].tolist()
    return xy


@pytest.fixture(scope="module")
def graph() -> RoadGraph:
    return grid_graph()


def test_route_follows_the_road_at_constant_speed(graph: RoadGraph) -> None:
    # Given out of order: the route sorts by closest approach.
    route = build_route(passages(("C", 50), ("A", 0), ("B", 30)), graph, READERS)
    assert [s.nodes for s in route.segments] == [(0, 1, 2, 3), (3, 7, 11)]
    assert [s.kind for s in route.segments] == ["inferred", "inferred"]
    assert [s.distance_m for s in route.segments] == [300.0, 200.0]
    assert [s.speed_mps for s in route.segments] == [10.0, 10.0]
    assert route_length_m(route) == 500.0

    assert list(route.points.columns) == POINT_COLUMNS
    assert xy_at(route, T0_US + 15 * US) == pytest.approx([150.0, 0.0])
    assert xy_at(route, T0_US + 40 * US) == pytest.approx([300.0, 100.0])
    assert xy_at(route, T0_US + 50 * US) == pytest.approx([300.0, 200.0])
    # Geometry keeps every road vertex, so the corner at B is on the line.
    corner = route.geometry[(route.geometry["x_m"] == 300.0) & (route.geometry["y_m"] == 0.0)]
    assert corner["t_us"].tolist() == [T0_US + 30 * US]


def test_one_point_per_second_with_increasing_time(graph: RoadGraph) -> None:
    start = 0.4  # not on a whole second: points still sit on whole UTC seconds
    route = build_route(passages(("A", start), ("B", 30.4), ("C", 50.4)), graph, READERS)
    t = route.points["t_us"].to_numpy()
    assert (t % US == 0).all()
    assert (np.diff(t) == US).all()
    assert t[0] == T0_US + US
    assert t[-1] == T0_US + 50 * US
    assert set(route.points["kind"]) <= set(POINT_KINDS)
    assert (np.diff(route.geometry["t_us"].to_numpy()) >= 0).all()


def test_points_near_a_passage_are_observed(graph: RoadGraph) -> None:
    route = build_route(passages(("A", 0), ("B", 30)), graph, READERS)
    kinds = route.points.set_index("t_us")["kind"]
    assert kinds[T0_US] == "observed"
    assert kinds[T0_US + US] == "observed"  # still in A's read window
    assert kinds[T0_US + 2 * US] == "inferred"
    assert kinds[T0_US + 30 * US] == "observed"


def test_impossible_speed_is_flagged_and_not_drawn(graph: RoadGraph) -> None:
    # C (node 11) to D (node 8) is 300 m in 5 s: 60 m/s, a clone or a misread.
    route = build_route(
        passages(("A", 0), ("B", 30), ("C", 50), ("D", 55), ("D", 70)), graph, READERS
    )
    kinds = [s.kind for s in route.segments]
    assert kinds == ["inferred", "inferred", "impossible", "stop"]
    impossible = route.segments[2]
    assert impossible.speed_mps == pytest.approx(60.0)
    assert not impossible.drawn
    assert impossible.nodes == ()
    t = route.points["t_us"].to_numpy()
    hole = (t > T0_US + 50 * US) & (t < T0_US + 55 * US)
    assert not hole.any()
    assert T0_US + 55 * US in t
    assert route_length_m(route) == 500.0
    feature = route.to_geojson()
    (brk,) = feature["properties"]["breaks"]
    assert feature["geometry"]["coordinates"][brk] == pytest.approx(
        graph.node_lonlat[READERS["D"]].tolist()
    )


def test_long_gap_is_drawn_as_gap(graph: RoadGraph) -> None:
    route = build_route(passages(("A", 0), ("B", 1000)), graph, READERS)
    (segment,) = route.segments
    assert segment.kind == "gap"
    assert segment.drawn
    assert segment.speed_mps == pytest.approx(0.3)
    kinds = route.points["kind"].value_counts()
    assert kinds["gap"] == 1001 - 4  # all but the two read windows (2 points each)
    assert kinds["observed"] == 4


def test_same_reader_twice_is_a_stop(graph: RoadGraph) -> None:
    route = build_route(passages(("B", 0), ("B", 600)), graph, READERS)
    (segment,) = route.segments
    assert segment.kind == "stop"
    assert segment.distance_m == 0.0
    xy = route.points[["x_m", "y_m"]].to_numpy()
    assert (xy == [300.0, 0.0]).all()
    assert route.points["kind"].iloc[300] == "stop"
    assert route_length_m(route) == 0.0


def test_single_passage_route(graph: RoadGraph) -> None:
    route = build_route(passages(("C", 3)), graph, READERS)
    assert route.segments == []
    assert route.points["t_us"].tolist() == [T0_US + 3 * US]
    coords = route.to_geojson()["geometry"]["coordinates"]
    assert len(coords) == 2
    assert coords[0] == coords[1]


def test_geojson_feature_shape(graph: RoadGraph) -> None:
    route = build_route(passages(("A", 0), ("B", 30), ("C", 50)), graph, READERS)
    feature = route.to_geojson()
    json.dumps(feature)  # plain Python types only
    assert feature["type"] == "Feature"
    assert feature["geometry"]["type"] == "LineString"
    coords = feature["geometry"]["coordinates"]
    props = feature["properties"]
    assert props["tag_id"] == "E200"
    assert len(coords) == len(props["times"]) == len(props["kinds"]) == 6
    assert coords[0] == pytest.approx(graph.node_lonlat[0].tolist())
    parsed = [datetime.fromisoformat(s) for s in props["times"]]
    assert all(p.tzinfo == UTC for p in parsed)
    assert parsed == sorted(parsed)
    assert parsed[0] == datetime.fromtimestamp(T0_US / US, tz=UTC)
    assert props["breaks"] == []
    assert [p["reader_id"] for p in props["passages"]] == ["A", "B", "C"]
    assert props["passages"][0]["closest_at"].endswith("Z")


def test_feature_collection_has_segments_and_passages(graph: RoadGraph) -> None:
    route = build_route(passages(("A", 0), ("B", 30), ("C", 50), ("D", 55)), graph, READERS)
    fc = route.to_feature_collection()
    json.dumps(fc)
    lines = [f for f in fc["features"] if f["geometry"]["type"] == "LineString"]
    points = [f for f in fc["features"] if f["geometry"]["type"] == "Point"]
    assert [f["properties"]["kind"] for f in lines] == ["inferred", "inferred"]
    assert [len(f["geometry"]["coordinates"]) for f in lines] == [4, 3]
    assert len(points) == 4


def test_precomputed_reader_paths_give_the_same_route(graph: RoadGraph) -> None:
    ps = passages(("A", 0), ("B", 30), ("C", 50))
    shared = precompute_reader_paths(graph, READERS)
    a, b = build_route(ps, graph, READERS), build_route(ps, graph, READERS, shared)
    pd.testing.assert_frame_equal(a.points, b.points)
    assert a.segments == b.segments


def test_path_chooser_is_replaceable(graph: RoadGraph) -> None:
    calls: list[tuple[str, str, int, int]] = []

    def via_middle_row(from_reader: str, to_reader: str, **kw: Any) -> list[int]:
        calls.append((from_reader, to_reader, kw["start_us"], kw["end_us"]))
        return [0, 4, 5, 6, 7, 3]

    route = build_route(passages(("A", 0), ("B", 50)), graph, READERS, path_chooser=via_middle_row)
    assert calls == [("A", "B", T0_US, T0_US + 50 * US)]
    assert route.segments[0].distance_m == 500.0
    assert route.segments[0].speed_mps == 10.0


def test_bad_input_is_refused(graph: RoadGraph) -> None:
    with pytest.raises(ValueError, match="at least one"):
        build_route(passages(("A", 0)).iloc[:0], graph, READERS)
    two_tags = pd.concat([passages(("A", 0)), passages(("B", 9), tag_id="E201")])
    with pytest.raises(ValueError, match="2 tags"):
        build_route(two_tags, graph, READERS)
    with pytest.raises(ValueError, match="without a road node"):
        build_route(passages(("Z", 0)), graph, READERS)


def test_route_is_frozen(graph: RoadGraph) -> None:
    route = build_route(passages(("A", 0), ("B", 30)), graph, READERS)
    assert isinstance(route, Route)
    with pytest.raises(AttributeError):
        route.tag_id = "other"  # type: ignore[misc]


def test_input_order_and_ties_do_not_change_the_route(graph: RoadGraph) -> None:
    # A and D at the same second: time order, then reader id, whatever order they come in.
    ps = passages(("B", 30), ("D", 0), ("A", 0), ("C", 50))
    a = build_route(ps, graph, READERS)
    b = build_route(ps.iloc[::-1].reset_index(drop=True), graph, READERS)
    assert a.passages["reader_id"].tolist() == ["A", "D", "B", "C"]
    assert a.to_geojson() == b.to_geojson()
    pd.testing.assert_frame_equal(a.passages, b.passages)
    pd.testing.assert_frame_equal(a.geometry, b.geometry)
    pd.testing.assert_frame_equal(a.points, b.points)


def test_routes_built_again_on_shared_paths_are_identical(graph: RoadGraph) -> None:
    # The second build takes each path's shape from the reader paths' cache.
    shared = precompute_reader_paths(graph, READERS)
    ps = passages(("A", 0), ("B", 30), ("B", 40), ("C", 50), ("D", 400))
    first, second = build_route(ps, graph, READERS, shared), build_route(ps, graph, READERS, shared)
    assert first.to_geojson() == second.to_geojson()
    assert first.to_feature_collection() == second.to_feature_collection()
    for table in ("points", "geometry", "passages", "dropped"):
        pd.testing.assert_frame_equal(getattr(first, table), getattr(second, table))
    assert first.segments == second.segments


def test_route_tables_are_built_on_demand(graph: RoadGraph) -> None:
    route = build_route(passages(("A", 0), ("B", 30), ("D", 40), ("C", 50)), graph, READERS)
    assert list(route.passages.columns) == [*PASSAGE_COLUMNS, "node", "x_m", "y_m", "lon", "lat"]
    assert route.passages.index.tolist() == list(range(len(route.passages)))
    assert route.passages["node"].tolist() == [READERS[r] for r in route.passages["reader_id"]]
    assert list(route.geometry.columns) == [*POINT_COLUMNS, "segment", "run"]
    props = route.to_geojson()["properties"]
    assert [p["reader_id"] for p in props["passages"]] == route.passages["reader_id"].tolist()
    assert props["kinds"] == route.geometry["kind"].tolist()


def test_times_are_iso_utc_with_microseconds() -> None:
    from track_engine.route_geometry import iso_utc

    t = np.array([0, 1, T0_US, T0_US + 123_456, -1_500_000, 253_402_300_799_999_999])
    expected = pd.to_datetime(t, unit="us", utc=True).strftime("%Y-%m-%dT%H:%M:%S.%fZ").tolist()
    assert iso_utc(t) == expected
    assert iso_utc(np.array([], dtype=np.int64)) == []


def test_geojson_is_made_once_and_each_caller_gets_its_own_top_level(graph: RoadGraph) -> None:
    route = build_route(passages(("A", 0), ("B", 30), ("C", 50)), graph, READERS)
    first = route.to_geojson()
    first["properties"]["plate"] = "ZH-1"  # what the API adds per request
    second = route.to_geojson()
    assert "plate" not in second["properties"]
    assert (
        second == build_route(passages(("A", 0), ("B", 30), ("C", 50)), graph, READERS).to_geojson()
    )
    # The heavy values are made once and shared, not rebuilt per call.
    assert second["geometry"] is first["geometry"]
    assert second["properties"]["times"] is first["properties"]["times"]
