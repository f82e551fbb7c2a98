"""Neighbouring readers that hear one pass are one place; a tag in two far places is a clone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from track_engine.db.network import NetworkArrays
from track_engine.passages import PASSAGE_COLUMNS
from track_engine.places import PROTOCOL_RANGE_M, PlaceModel
from track_engine.roads import RoadGraph, precompute_reader_paths
from track_engine.route_geometry import iso_utc
from track_engine.routes import build_route, route_length_m

T0_US = 1_764_400_000_000_000
US = 1_000_000

# A one-way main street through a complex junction (J1, J2: 25 m apart), east-bound only,
# and a two-way street 100 m north to come back by:
#
#   5 (0,100) ---------------------------------- 4 (225,100)     two-way
#   |                                            |
#   0 P (0,0) --> 1 J1 (100,0) --> 2 J2 (125,0) --> 3 Q (225,0)  one-way east
#
# Going from J2 back to J1 means the whole loop (~550 m).
JUNCTION = {"P": 0, "J1": 1, "J2": 2, "Q": 3}


@pytest.fixture(scope="module")
def junction_graph() -> RoadGraph:
    xy = np.array([[0, 0], [100, 0], [125, 0], [225, 0], [225, 100], [0, 100]], dtype=float)
    lonlat = np.column_stack([121.15 + xy[:, 0] / 96_250.0, 30.04 + xy[:, 1] / 111_195.0])
    one_way = [(0, 1), (1, 2), (2, 3)]
    two_way = [(3, 4), (4, 5), (5, 0)]
    edges = one_way + two_way + [(b, a) for a, b in two_way]
    return RoadGraph.from_arrays(
        node_lonlat=lonlat,
        node_xy_m=xy,
        edge_src=[a for a, _ in edges],
        edge_dst=[b for _, b in edges],
    )


def visits(*rows: tuple[str, float, float, float, float]) -> pd.DataFrame:
    """Passages (reader, first s, closest s, last s, peak RSSI dBm) of tag E200."""
    frame = pd.DataFrame(
        {
            "tag_id": "E200",
            "reader_id": [r[0] for r in rows],
            "first_at_us": [T0_US + round(r[1] * US) for r in rows],
            "closest_at_us": [T0_US + round(r[2] * US) for r in rows],
            "last_at_us": [T0_US + round(r[3] * US) for r in rows],
            "peak_rssi_dbm": [r[4] for r in rows],
            "read_count": 10,
            "direction": "",
        }
    )
    return frame[PASSAGE_COLUMNS]


def test_two_readers_25_m_apart_hearing_one_pass_give_one_route_with_no_clone_flag(
    junction_graph: RoadGraph,
) -> None:
    # The bike rides P -> J1 -> J2 -> Q at ~5 m/s. J1 and J2 both hear it while it crosses the
    # junction, and J2's closest approach comes out 1 s *before* J1's (a flat RSSI curve):
    # taken as a move J2 -> J1, that is the ~550 m loop in one second.
    passages = visits(
        ("P", -1.0, 0.0, 1.0, -50.0),
        ("J1", 18.0, 21.0, 24.0, -58.0),
        ("J2", 17.5, 20.0, 25.0, -49.0),
        ("Q", 44.0, 45.0, 46.0, -50.0),
    )
    reader_paths = precompute_reader_paths(junction_graph, JUNCTION)
    route = build_route(passages, junction_graph, JUNCTION, reader_paths)
    assert route.flags == []
    assert not route.clone_suspected
    # One sighting for the junction, represented by the loudest reader; J1 is merged into it.
    assert route.passages["reader_id"].tolist() == ["P", "J2", "Q"]
    assert route.merged["reader_id"].tolist() == ["J1"]
    assert [s.kind for s in route.segments] == ["inferred", "inferred"]
    # No zigzag: the drawn route is the street itself, P to Q, once.
    assert route_length_m(route) == pytest.approx(225.0)
    # The sighting's read window spans both readers' (the bike was in the junction).
    observed = route.points[route.points["kind"] == "observed"]["t_us"]
    assert {T0_US + 18 * US, T0_US + 24 * US} <= set(observed.tolist())


def test_a_passage_merged_into_a_sighting_is_still_shown_in_the_geojson(
    junction_graph: RoadGraph,
) -> None:
    # J1's passage draws nothing (J2 stands for the junction), but it is evidence: the
    # officer's answer lists it, with its times and reads, beside the route's passages.
    passages = visits(
        ("P", -1.0, 0.0, 1.0, -50.0),
        ("J1", 18.0, 21.0, 24.0, -58.0),
        ("J2", 17.5, 20.0, 25.0, -49.0),
    )
    props = build_route(passages, junction_graph, JUNCTION).to_geojson()["properties"]
    assert [p["reader_id"] for p in props["passages"]] == ["P", "J2"]
    (merged,) = props["merged_passages"]
    assert merged["reader_id"] == "J1"
    assert merged["closest_at"] == iso_utc(np.array([T0_US + 21 * US]))[0]
    assert merged["read_count"] == int(
        passages.loc[passages["reader_id"] == "J1", "read_count"].iloc[0]
    )


def test_the_reader_of_a_place_that_heard_the_bike_is_not_silent_on_the_way(
    junction_graph: RoadGraph,
) -> None:
    # Folded into J2's sighting, J1 (on the way from P) heard the bike: no missed-reader
    # evidence against the street through it, so the one-way street stays the path.
    passages = visits(
        ("P", -1.0, 0.0, 1.0, -50.0),
        ("J1", 18.0, 21.0, 24.0, -58.0),
        ("J2", 17.5, 20.0, 25.0, -49.0),
    )
    route = build_route(passages, junction_graph, JUNCTION)
    (segment,) = route.segments
    assert list(segment.nodes) == [0, 1, 2]


def test_a_chain_of_neighbours_along_a_street_is_not_one_place(
    junction_graph: RoadGraph,
) -> None:
    # 30 m apart each, three readers in a row are each one place with the next, but the
    # first and the last are 60 m apart: a place is every pair within the tolerance.
    model = PlaceModel(tolerance_m=30.0)
    xy = np.array([[0, 0], [30, 0], [60, 0], [90, 0]], dtype=float)
    lonlat = np.column_stack([121.15 + xy[:, 0] / 96_250.0, 30.04 + xy[:, 1] / 111_195.0])
    graph = RoadGraph.from_arrays(
        node_lonlat=lonlat, node_xy_m=xy, edge_src=[0, 1, 2], edge_dst=[1, 2, 3],
        both_directions=True,
    )  # fmt: skip
    readers = {"A": 0, "B": 1, "C": 2, "D": 3}
    passages = visits(
        ("A", 0.0, 1.0, 2.0, -50.0),
        ("B", 5.0, 6.0, 7.0, -50.0),
        ("C", 11.0, 12.0, 13.0, -50.0),
        ("D", 17.0, 18.0, 19.0, -50.0),
    )
    route = build_route(passages, graph, readers, places=model)
    assert route.passages["reader_id"].tolist() == ["A", "C"]
    assert route.merged["reader_id"].tolist() == ["B", "D"]


# Two districts 3 km apart joined by a road: A, B in the west, C, D in the east.
FAR = {"A": 0, "B": 1, "C": 2, "D": 3}


@pytest.fixture(scope="module")
def far_graph() -> RoadGraph:
    xy = np.array([[0, 0], [300, 0], [3000, 0], [3300, 0]], dtype=float)
    lonlat = np.column_stack([121.15 + xy[:, 0] / 96_250.0, 30.04 + xy[:, 1] / 111_195.0])
    return RoadGraph.from_arrays(
        node_lonlat=lonlat, node_xy_m=xy, edge_src=[0, 1, 2], edge_dst=[1, 2, 3],
        both_directions=True,
    )  # fmt: skip


def test_a_clone_that_rides_at_the_same_time_is_flagged(far_graph: RoadGraph) -> None:
    # The original rides A -> B in the west while the copy rides D -> C in the east, at the
    # same time: the tag's sightings jump 2.7 km and back within a minute.
    passages = visits(
        ("A", 0.0, 1.0, 2.0, -50.0),
        ("D", 20.0, 21.0, 22.0, -50.0),
        ("B", 60.0, 61.0, 62.0, -50.0),
        ("C", 80.0, 81.0, 82.0, -50.0),
    )
    route = build_route(passages, far_graph, FAR)
    assert route.clone_suspected
    clones = [(f.from_reader, f.reader_id) for f in route.flags if f.kind == "clone"]
    assert ("A", "D") in clones
    assert all(f.speed_mps > 17.0 for f in route.flags if f.kind == "clone")


def test_a_ride_across_town_in_plausible_time_is_no_clone(far_graph: RoadGraph) -> None:
    # 3 km in 6 minutes (8 m/s: a fast rider or a thief): possible, so no flag.
    passages = visits(("A", 0.0, 1.0, 2.0, -50.0), ("D", 360.0, 361.0, 362.0, -50.0))
    route = build_route(passages, far_graph, FAR)
    assert route.flags == []
    assert not route.clone_suspected


def test_a_clock_error_within_the_tolerance_is_no_clone(far_graph: RoadGraph) -> None:
    # A and B are 300 m apart; heard 13 s apart (the clock of one reader a few seconds off):
    # 23 m/s on the clock, but within the clock allowance of an e-bike's 17 m/s.
    passages = visits(("A", 0.0, 1.0, 2.0, -50.0), ("B", 15.0, 15.5, 16.0, -50.0))
    route = build_route(passages, far_graph, FAR)
    assert not route.clone_suspected


# A 6 x 6 grid of two-way streets, 100 m apart, a reader on every node.
GRID_N = 6


@pytest.fixture(scope="module")
def reader_grid() -> tuple[RoadGraph, dict[str, int]]:
    col, row = np.meshgrid(np.arange(GRID_N), np.arange(GRID_N))
    xy = np.column_stack([col.ravel(), row.ravel()]).astype(float) * 100.0
    ids = np.arange(GRID_N * GRID_N).reshape(GRID_N, GRID_N)
    src = np.concatenate([ids[:, :-1].ravel(), ids[:-1, :].ravel()])
    dst = np.concatenate([ids[:, 1:].ravel(), ids[1:, :].ravel()])
    lonlat = np.column_stack([121.15 + xy[:, 0] / 96_250.0, 30.04 + xy[:, 1] / 111_195.0])
    graph = RoadGraph.from_arrays(
        node_lonlat=lonlat, node_xy_m=xy, edge_src=src, edge_dst=dst, both_directions=True
    )
    return graph, {f"R{n}": n for n in range(GRID_N * GRID_N)}


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(st.sampled_from([(1, 0), (-1, 0), (0, 1), (0, -1)]), min_size=2, max_size=25),
    speed_mps=st.floats(2.0, 16.0),
    heard=st.lists(st.booleans(), min_size=26, max_size=26),
    clock_s=st.lists(st.floats(-2.5, 2.5), min_size=36, max_size=36),
)
def test_an_honest_ride_at_any_e_bike_speed_is_never_a_clone(
    reader_grid: tuple[RoadGraph, dict[str, int]],
    steps: list[tuple[int, int]],
    speed_mps: float,
    heard: list[bool],
    clock_s: list[float],
) -> None:
    # Any walk along the streets at up to 16 m/s (a van), readers missing passes at random,
    # every reader's clock up to 2.5 s off (two readers: 5 s, the allowance): never a clone.
    graph, readers = reader_grid
    x, y, t = 0, 0, 0.0
    rows = [("R0", -1.0, 0.0, 1.0, -50.0)]
    for k, (dx, dy) in enumerate(steps):
        nx, ny = min(max(x + dx, 0), GRID_N - 1), min(max(y + dy, 0), GRID_N - 1)
        if (nx, ny) == (x, y):
            continue
        x, y, t = nx, ny, t + 100.0 / speed_mps
        if heard[k]:
            c = t + clock_s[y * GRID_N + x]
            rows.append((f"R{y * GRID_N + x}", c - 1.0, c, c + 1.0, -50.0))
    route = build_route(visits(*rows), graph, readers)
    assert not route.clone_suspected


def test_long_range_readers_hearing_one_pass_are_no_clone_when_their_range_is_known() -> None:
    # Active (2.4 GHz) readers hear a tag up to 100 m away: two of them 150 m apart hear one
    # pass at the same time. Taken as UHF readers (a few meters) that is a 110 m jump at
    # once; with their ranges it is one place.
    xy = np.array([[0, 0], [150, 0], [400, 0]], dtype=float)
    lonlat = np.column_stack([121.15 + xy[:, 0] / 96_250.0, 30.04 + xy[:, 1] / 111_195.0])
    graph = RoadGraph.from_arrays(
        node_lonlat=lonlat, node_xy_m=xy, edge_src=[0, 1], edge_dst=[1, 2], both_directions=True
    )
    readers = {"A": 0, "B": 1, "C": 2}
    passages = visits(
        ("A", 0.0, 10.0, 20.0, -80.0),
        ("B", 12.0, 22.0, 32.0, -78.0),
        ("C", 50.0, 60.0, 70.0, -79.0),
    )
    assert build_route(passages, graph, readers).clone_suspected
    ranges = dict.fromkeys(readers, PROTOCOL_RANGE_M["tagtrail-active"])
    route = build_route(passages, graph, readers, reader_range_m=ranges)
    assert not route.clone_suspected
    assert route.flags == []


def test_the_loaded_network_knows_the_range_of_its_active_readers() -> None:
    # What the API passes to build_route: the registry's protocol says which readers reach far.
    readers = pd.DataFrame({
        "reader_id": ["R1", "R2"], "node_id": [0, 1], "lon": [0.0, 0.0], "lat": [0.0, 0.0],
        "x_m": [0.0, 0.0], "y_m": [0.0, 0.0], "antennas": [1, 2], "miss_rate": [0.3, 0.3],
        "protocol": ["tagtrail-active", "impinj-iot"],
    })  # fmt: skip
    empty = np.empty(0)
    arrays = NetworkArrays(1, empty, empty, empty, empty, empty, readers)
    assert arrays.reader_ranges_m() == {"R1": PROTOCOL_RANGE_M["tagtrail-active"]}


# A street A -- B (200 m, two-way) and, 3 m beside its middle, the node X of a cycleway that
# joins the street only at its ends by way of a path 60 m north (a bridge's ramp, a cycleway
# behind a row of trees): from A to X by road is 214 m, and on to B another 214 m.
#
#   3 (0,60) -------- 4 (100,60) -------- 5 (200,60)
#   |                 |                   |
#   |                 2 X (100,3)          |
#   0 A (0,0) ----------------------------- 1 B (200,0)
PASSED = {"A": 0, "B": 1, "X": 2}


def _passed_graph(x_offset_m: float) -> RoadGraph:
    xy = np.array([[0, 0], [200, 0], [100, x_offset_m], [0, 60], [100, 60], [200, 60]], dtype=float)
    lonlat = np.column_stack([121.15 + xy[:, 0] / 96_250.0, 30.04 + xy[:, 1] / 111_195.0])
    two_way = [(0, 1), (0, 3), (3, 4), (4, 2), (4, 5), (5, 1)]
    edges = two_way + [(b, a) for a, b in two_way]
    return RoadGraph.from_arrays(
        node_lonlat=lonlat,
        node_xy_m=xy,
        edge_src=[a for a, _ in edges],
        edge_dst=[b for _, b in edges],
    )


def test_a_read_from_the_road_beside_a_reader_is_passed_by_not_routed_through() -> None:
    # The bike rides the street A -> B at 5 m/s; X's reader, 3 m from the street (closer
    # than its own pole stands to X), hears it at the middle. Routed through X's node that is
    # a 434 m ride (a 234 m detour at twice the speed); the street explains the read as well.
    graph = _passed_graph(3.0)
    passages = visits(
        ("A", -1.0, 0.0, 1.0, -50.0),
        ("X", 19.0, 20.0, 21.0, -62.0),
        ("B", 39.0, 40.0, 41.0, -50.0),
    )
    route = build_route(passages, graph, PASSED)
    assert route.flags == []
    assert route.passages["reader_id"].tolist() == ["A", "B"]
    assert route.merged["reader_id"].tolist() == ["X"]
    (segment,) = route.segments
    assert list(segment.nodes) == [0, 1]
    assert route_length_m(route) == pytest.approx(200.0)


def test_a_reader_12_m_from_the_road_is_still_routed_through() -> None:
    # X 12 m from the street: a reader may reach that far, but not surely, so the read
    # favours X's node and the bike is routed through it, detour and all.
    graph = _passed_graph(12.0)
    passages = visits(
        ("A", -1.0, 0.0, 1.0, -50.0),
        ("X", 19.0, 20.0, 21.0, -62.0),
        ("B", 39.0, 40.0, 41.0, -50.0),
    )
    route = build_route(passages, graph, PASSED)
    assert route.passages["reader_id"].tolist() == ["A", "X", "B"]
    assert route.merged.empty


def test_a_long_range_reader_20_m_from_the_road_is_still_routed_through() -> None:
    # An active reader may hear 100 m away, but its known range is the most it reaches, not
    # the least: a road 20 m off is not surely heard, so the read still favours X's node.
    graph = _passed_graph(20.0)
    passages = visits(
        ("A", -1.0, 0.0, 1.0, -50.0),
        ("X", 19.0, 20.0, 21.0, -62.0),
        ("B", 39.0, 40.0, 41.0, -50.0),
    )
    route = build_route(passages, graph, PASSED, reader_range_m={"X": 100.0})
    assert route.passages["reader_id"].tolist() == ["A", "X", "B"]
    assert route.merged.empty
