"""Scoring routes against ground truth: which drawn edges count, and for which trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_routes import READERS, T0_US, US, grid_graph, passages

from track_engine.paths import shortest_path
from track_engine.roads import RoadGraph
from track_engine.routes import build_route
from track_engine.scoring import Scores, score_routes

TAG = "E200"


@pytest.fixture(scope="module")
def graph() -> RoadGraph:
    return grid_graph()


def truth_of(
    graph: RoadGraph, nodes: list[int], *, start_s: float, end_s: float, trip: bool
) -> dict[str, pd.DataFrame]:
    """One true trip along ``nodes``, observable from ``start_s`` to ``end_s``."""
    spans = pd.DataFrame(
        {"trip_id": [1], "tag_id": [TAG], "start_us": [T0_US + round(start_s * US)],
         "end_us": [T0_US + round(end_s * US)]}
    )  # fmt: skip
    if trip:  # the whole trip: it started 30 s before T0 and ended when the rider arrived
        spans = spans.assign(trip_start_us=T0_US - 30 * US, trip_end_us=T0_US + round(end_s * US))
    edges = pd.DataFrame({"trip_id": 1, "src": nodes[:-1], "dst": nodes[1:]})
    empty = pd.DataFrame(
        {"trip_id": pd.Series([], dtype=np.int64), "tag_id": pd.Series([], dtype=str),
         "t_us": pd.Series([], dtype=np.int64), "x_m": pd.Series([], dtype=float),
         "y_m": pd.Series([], dtype=float)}
    )  # fmt: skip
    return {"spans": spans, "true_edges": edges, "true_positions": empty}


def score(graph: RoadGraph, ps: pd.DataFrame, truth: dict[str, pd.DataFrame]) -> Scores:
    route = build_route(ps, graph, READERS, path_chooser=shortest_path, drop_outliers=False)
    est = ps[["tag_id", "reader_id", "closest_at_us"]]
    return score_routes(
        {TAG: route}, graph=graph, estimated_passages=est, truth_passages=est, **truth
    )


def test_a_stop_at_the_first_reader_does_not_throw_the_segment_out_of_its_trip(
    graph: RoadGraph,
) -> None:
    # Regression: the rider waited 20 s at a red light beside A. The truth's closest approach
    # is one instant of the flat RSSI curve (T0 + 12 s), the estimate another (T0 + 2 s).
    # Judged against the span ± 5 s, the exactly right segment belonged to no trip: recall 0.
    ps = passages(("A", 2), ("B", 60))
    right = truth_of(graph, [0, 1, 2, 3], start_s=12, end_s=60, trip=True)
    got = score(graph, ps, right)
    assert (got.recall, got.precision) == (1.0, 1.0)
    # Without the trip interval the span decides, and the old loss is still there.
    legacy = truth_of(graph, [0, 1, 2, 3], start_s=12, end_s=60, trip=False)
    assert score(graph, ps, legacy).recall == 0.0


def test_an_edge_drawn_more_often_than_ridden_counts_as_false(graph: RoadGraph) -> None:
    # Truth: A to B once. Drawn: A -> B -> A -> B (a misread pair of sightings); the two
    # extra traversals are 600 m of wrong drawing, not free repeats of right edges.
    ps = passages(("A", 0), ("B", 30), ("A", 60), ("B", 90))
    truth = truth_of(graph, [0, 1, 2, 3], start_s=0, end_s=90, trip=True)
    got = score(graph, ps, truth)
    assert got.recall == 1.0
    assert got.precision == pytest.approx(300.0 / 900.0)
