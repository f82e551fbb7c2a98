"""Calibration of stated stretch probabilities against a known ridden way."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from test_routes import T0_US, US, grid_graph, passages

from track_engine.calibration_scoring import score_calibration
from track_engine.roads import RoadGraph
from track_engine.routes import build_route

DIAGONAL = {"A": 0, "E": 5}  # two equal ways on the grid: 0-1-5 and 0-4-5


@pytest.fixture(scope="module")
def graph() -> RoadGraph:
    return grid_graph()


def _truth(nodes: tuple[int, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    spans = pd.DataFrame(
        {"trip_id": [1], "tag_id": ["E200"], "start_us": [T0_US], "end_us": [T0_US + 40 * US]}
    )
    edges = pd.DataFrame(
        {"trip_id": 1, "src": list(nodes[:-1]), "dst": list(nodes[1:])}, dtype="int64"
    )
    return spans, edges


@pytest.mark.parametrize("drawn_is_true", [True, False])
def test_a_coin_toss_is_scored_by_whether_the_drawn_way_was_ridden(
    graph: RoadGraph, drawn_is_true: bool
) -> None:
    route = build_route(passages(("A", 0), ("E", 40)), graph, DIAGONAL)
    drawn = route.segments[0].nodes
    other = (0, 4, 5) if drawn == (0, 1, 5) else (0, 1, 5)
    spans, edges = _truth(drawn if drawn_is_true else other)
    cal = score_calibration({"E200": route}, graph=graph, spans=spans, true_edges=edges)
    assert cal.stretches == 1
    (full,) = [b for b in cal.bins if b.stretches]
    assert full.lo <= full.stated < full.hi
    assert full.right == (1.0 if drawn_is_true else 0.0)
    assert cal.ece == pytest.approx(abs(full.stated - full.right))
    # Either way the true one is shown: drawn, or as the alternative.
    assert cal.alternatives_coverage == pytest.approx(1.0)


def test_a_route_outside_every_trip_scores_nothing(graph: RoadGraph) -> None:
    route = build_route(passages(("A", 1000), ("E", 1040)), graph, DIAGONAL)
    spans, edges = _truth((0, 1, 5))
    cal = score_calibration({"E200": route}, graph=graph, spans=spans, true_edges=edges)
    assert cal.stretches == 0
    assert math.isnan(cal.ece)
    assert cal.alternatives_coverage == 0.0
