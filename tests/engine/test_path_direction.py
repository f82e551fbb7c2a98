"""Direction of travel at two-antenna readers as evidence for the path on either side."""

from __future__ import annotations

import pytest
from test_routes import READERS, grid_graph, passages

from track_engine.path_direction import parse_heading, travel_heading
from track_engine.roads import precompute_reader_paths
from track_engine.routes import build_route

#   8 -- 9 -- 10 -- 11
#   4 -- 5 -- 6  -- 7
#   0 -- 1 -- 2  -- 3      A=0, E=5: two equal 200 m paths, 0-1-5 and 0-4-5.
DIAGONAL = {"A": 0, "E": 5}


def test_headings_parse_as_compass_points_or_degrees() -> None:
    assert parse_heading("N") == 0.0
    assert parse_heading(" sw ") == 225.0
    assert parse_heading("12.5") == 12.5
    assert parse_heading("-90") == 270.0
    assert parse_heading("up") is None
    assert parse_heading("nan") is None
    assert travel_heading("S->N") == 0.0
    assert travel_heading("181.1->1.1") == pytest.approx(1.1)
    assert travel_heading("") is None


@pytest.mark.parametrize(
    ("direction", "expected"),
    [("W->E", (0, 4, 5)), ("S->N", (0, 1, 5)), ("", None)],
)
def test_direction_at_the_reader_picks_the_side_the_bike_came_from(
    direction: str, expected: tuple[int, ...] | None
) -> None:
    # Moving east at E means it came from the west (node 4); moving north, from the south (1).
    graph = grid_graph()
    ps = passages(("A", 0), ("E", 40))
    ps.loc[ps["reader_id"] == "E", "direction"] = direction
    route = build_route(ps, graph, DIAGONAL, precompute_reader_paths(graph, DIAGONAL))
    assert route.segments[0].distance_m == 200.0
    if expected is not None:
        assert route.segments[0].nodes == expected


def test_a_contradicting_direction_does_not_make_the_route_impossible() -> None:
    # The only way A -> B arrives from the west; an antenna order saying "moving west" is a
    # stray read, not a reason to drop the route.
    graph = grid_graph()
    ps = passages(("A", 0), ("B", 60))
    ps.loc[ps["reader_id"] == "B", "direction"] = "E->W"
    route = build_route(ps, graph, READERS)
    assert route.segments[0].nodes == (0, 1, 2, 3)
    assert route.flags == []
