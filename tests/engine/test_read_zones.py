"""A reader whose surveyed read zone reaches a second road: reads from it pass the reader by."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from track_engine.passages import PASSAGE_COLUMNS
from track_engine.roads import RoadGraph, precompute_reader_paths
from track_engine.route_zones import ReadZone
from track_engine.routes import build_route, route_length_m

T0_US = 1_764_400_000_000_000
US = 1_000_000

# A street A -> B and, 10 m north of it, a parallel service road through X's junction,
# joined to the street only at its ends (a kerb and a hedge between them):
#
#   3 (0,10) ---------- 4 X (100,10) ---------- 5 (200,10)     service road
#   |                                                  |
#   0 A (0,0) --------- 2 M (100,0) ----------- 1 B (200,0)    street
#
# Through X's node A -> B is 220 m, along the street 200 m.
READERS = {"A": 0, "B": 1, "X": 4}


@pytest.fixture(scope="module")
def graph() -> RoadGraph:
    xy = np.array([[0, 0], [200, 0], [100, 0], [0, 10], [100, 10], [200, 10]], dtype=float)
    lonlat = np.column_stack([24.94 + xy[:, 0] / 55_000.0, 60.17 + xy[:, 1] / 111_195.0])
    two_way = [(0, 2), (2, 1), (0, 3), (3, 4), (4, 5), (5, 1)]
    edges = two_way + [(b, a) for a, b in two_way]
    return RoadGraph.from_arrays(
        node_lonlat=lonlat,
        node_xy_m=xy,
        edge_src=[a for a, _ in edges],
        edge_dst=[b for _, b in edges],
    )


def _street_ride() -> pd.DataFrame:
    # The bike rides the street at 5 m/s; X's reader hears it as it passes at t = 20 s, weakly.
    rows = [
        ("A", -1.0, 0.0, 1.0, -45.0),
        ("X", 19.0, 20.0, 21.0, -54.0),
        ("B", 39.0, 40.0, 41.0, -45.0),
    ]
    frame = pd.DataFrame(
        {
            "tag_id": "E200",
            "reader_id": [r[0] for r in rows],
            "first_at_us": [T0_US + round(r[1] * US) for r in rows],
            "closest_at_us": [T0_US + round(r[2] * US) for r in rows],
            "last_at_us": [T0_US + round(r[3] * US) for r in rows],
            "peak_rssi_dbm": [r[4] for r in rows],
            "read_count": 20,
            "direction": "",
        }
    )
    return frame[PASSAGE_COLUMNS]


def test_without_a_survey_the_read_routes_the_bike_through_the_readers_node(
    graph: RoadGraph,
) -> None:
    # The street is 10 m from X's node, further than any reader's pole stands: with nothing
    # else known the read favours the node (track_engine.route_outliers.passed_by).
    route = build_route(_street_ride(), graph, READERS)
    assert route.passages["reader_id"].tolist() == ["A", "X", "B"]
    assert route_length_m(route) == pytest.approx(220.0)


def test_a_read_from_the_street_inside_the_surveyed_zone_passes_the_reader_by(
    graph: RoadGraph,
) -> None:
    # X's pole stands 2.5 m south of its node, on the hedge, and reads 8 m round it: its zone
    # covers the street (7.5 m away). Both ways bring the tag into the zone; the street is the
    # shorter, so the route keeps to it and X's read is merged into the route.
    zones = {"X": ReadZone(100.0, 7.5, 8.0)}
    route = build_route(_street_ride(), graph, READERS, reader_zones=zones)
    assert route.flags == []
    assert route.passages["reader_id"].tolist() == ["A", "B"]
    assert route.merged["reader_id"].tolist() == ["X"]
    (segment,) = route.segments
    assert list(segment.nodes) == [0, 2, 1]
    assert route_length_m(route) == pytest.approx(200.0)


def test_a_zone_that_does_not_reach_the_street_still_routes_through_the_node(
    graph: RoadGraph,
) -> None:
    # The pole on the far side (12.5 m from the street): the street is outside the zone.
    zones = {"X": ReadZone(100.0, 12.5, 8.0)}
    route = build_route(_street_ride(), graph, READERS, reader_zones=zones)
    assert route.passages["reader_id"].tolist() == ["A", "X", "B"]
    assert route.merged.empty


def test_a_silent_reader_on_the_street_keeps_the_route_through_the_node(
    graph: RoadGraph,
) -> None:
    # A reliable reader Y on the street (misses 2%) heard nothing: the street is now the less
    # probable way into X's zone, so the bike crossed X's node on the service road.
    readers = READERS | {"Y": 2}
    paths = precompute_reader_paths(
        graph, readers, miss_rate={"A": 0.3, "B": 0.3, "X": 0.3, "Y": 0.02}
    )
    zones = {"X": ReadZone(100.0, 7.5, 8.0)}
    route = build_route(_street_ride(), graph, readers, paths, reader_zones=zones)
    assert route.passages["reader_id"].tolist() == ["A", "X", "B"]
    assert [list(s.nodes) for s in route.segments] == [[0, 3, 4], [4, 5, 1]]
