"""``python -m tagtrail.bench.engine_bound``: what bounds issue #17's targets — the oracle's
loss by cause, how far wrong metres lie from the true way, the moves a clone detector sees."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from numpy.typing import NDArray

from tagtrail.bench.engine_bound import crossfit_priors, run_bound
from tagtrail.bench.engine_oracle import _marginal, _viterbi
from tagtrail.bench.engine_scenario import AccuracyOptions
from tagtrail.bench.engine_wrong_ways import point_to_path_m, wrong_way_distances
from track_engine.passages import PASSAGE_COLUMNS
from track_engine.places import PlaceModel, clone_moves, group_sightings, move_speeds
from track_engine.roads import RoadGraph, precompute_reader_paths
from track_engine.route_choice import PathChooser
from track_engine.routes import build_route
from track_engine.way_prior import Ride

T0_US = 1_764_400_000_000_000
US = 1_000_000

# A street 0 -> 1 -> 2 along y = 0, and a cycleway beside it, 8 m to the north, 0 -> 3 -> 4 -> 2.
#
#        3 (20,8) ------------------------- 4 (180,8)
#       /                                      \
#   0 (0,0) ---------- 1 (100,0) ------------ 2 (200,0)
XY = np.array([[0, 0], [100, 0], [200, 0], [20, 8], [180, 8]], dtype=float)
EDGES = [(0, 1), (1, 2), (0, 3), (3, 4), (4, 2)]


@pytest.fixture(scope="module")
def parallel_graph() -> RoadGraph:
    lonlat = np.column_stack([24.94 + XY[:, 0] / 56_000.0, 60.17 + XY[:, 1] / 111_195.0])
    return RoadGraph.from_arrays(
        node_lonlat=lonlat,
        node_xy_m=XY,
        edge_src=[a for a, _ in EDGES],
        edge_dst=[b for _, b in EDGES],
    )


def _passages(*rows: tuple[str, float]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "tag_id": "E200",
            "reader_id": [r for r, _ in rows],
            "first_at_us": [T0_US + round((s - 1.0) * US) for _, s in rows],
            "closest_at_us": [T0_US + round(s * US) for _, s in rows],
            "last_at_us": [T0_US + round((s + 1.0) * US) for _, s in rows],
            "peak_rssi_dbm": -50.0,
            "read_count": 10,
            "direction": "",
        }
    )
    return frame[PASSAGE_COLUMNS]


def test_wrong_metres_on_a_parallel_cycleway_lie_within_its_offset(
    parallel_graph: RoadGraph,
) -> None:
    # The bike rode the street; the route is drawn along the cycleway 8 m beside it: every
    # drawn metre is wrong for precision, but none of it is further than 8 m from the way.
    readers = {"A": 0, "B": 2}
    paths = precompute_reader_paths(parallel_graph, readers)

    def fixed(nodes: list[int]) -> PathChooser:
        def chooser(from_reader: str, to_reader: str, **_: Any) -> list[int] | None:
            return nodes

        return chooser

    cycleway = fixed([0, 3, 4, 2])

    route = build_route(
        _passages(("A", 0.0), ("B", 45.0)), parallel_graph, readers, paths,
        path_chooser=cycleway,
    )  # fmt: skip
    spans = pd.DataFrame({
        "trip_id": [1], "tag_id": ["E200"], "start_us": [T0_US], "end_us": [T0_US + 45 * US],
        "trip_start_us": [T0_US - 10 * US], "trip_end_us": [T0_US + 60 * US],
    })  # fmt: skip
    true_edges = pd.DataFrame({"trip_id": [1, 1], "src": [0, 1], "dst": [1, 2]})
    out = wrong_way_distances({"E200": route}, spans, true_edges, parallel_graph)
    drawn_m = parallel_graph.path_length_m([0, 3, 4, 2])
    assert out["false"]["metres"] == pytest.approx(drawn_m, abs=1.0)
    assert out["false"]["within_10_m"] == out["false"]["metres"]
    assert out["false"]["within_5_m"] < out["false"]["metres"]  # the long middle is 8 m off
    assert 7.0 <= out["false"]["median_m"] <= 8.1
    assert out["missed"]["metres"] == pytest.approx(200.0, abs=1.0)
    assert out["missed"]["within_10_m"] == out["missed"]["metres"]
    # Drawn along the truth instead: nothing wrong, nothing missed.
    right = build_route(_passages(("A", 0.0), ("B", 45.0)), parallel_graph, readers, paths,
                        path_chooser=fixed([0, 1, 2]))  # fmt: skip
    out = wrong_way_distances({"E200": right}, spans, true_edges, parallel_graph)
    assert out["false"]["metres"] == 0
    assert out["missed"]["metres"] == 0


def test_point_to_path_distance_is_to_the_nearest_segment_and_inf_without_one() -> None:
    segs = np.array([[[0.0, 0.0], [10.0, 0.0]], [[10.0, 0.0], [10.0, 10.0]]])
    pts = np.array([[5.0, 3.0], [13.0, 5.0], [-4.0, -3.0]])
    assert point_to_path_m(pts, segs) == pytest.approx([3.0, 3.0, 5.0])
    assert np.isinf(point_to_path_m(pts, np.empty((0, 2, 2)))).all()


def test_move_speeds_are_the_speeds_the_clone_test_judges(parallel_graph: RoadGraph) -> None:
    # A -> B (200 m) in 60 s is a ride; B -> A two seconds later is not (the clone test's
    # lower bound takes off each reader's 20 m reach and adds the 5 s clock allowance).
    readers = ["A", "B", "A"]
    xy = {"A": XY[0], "B": XY[2]}
    first = np.array([0, 60, 63], np.int64) * US
    model = PlaceModel()
    s = group_sightings(readers, first, first + US, [(-50.0, 10)] * 3, xy, model)
    speeds = move_speeds(s, readers, xy, model)
    assert speeds[0] == pytest.approx(160.0 / (59.0 + 5.0))
    assert speeds[1] == pytest.approx(160.0 / (2.0 + 5.0))
    assert [round(v, 6) for _, _, v in clone_moves(s, readers, xy, model)] == [round(speeds[1], 6)]


def test_crossfit_priors_never_learn_a_tag_from_its_own_rides() -> None:
    # Only tag "a" rides A -> X -> B, only tag "b" rides A -> Y -> B; with two folds each tag's
    # prior is the other's rides.
    rides = {
        "a": [Ride(("A", "X", "B"), (0, 30, 60))] * 3,
        "b": [Ride(("A", "Y", "B"), (0, 30, 60))] * 3,
    }
    priors = crossfit_priors(rides, lambda r: 0.3, folds=2)
    assert set(priors["a"].rides[("A", "B")]) == {("Y",)}
    assert set(priors["b"].rides[("A", "B")]) == {("X",)}
    assert ("A", "X") not in priors["a"].rides


def test_the_bound_run_attributes_every_lost_metre_and_keeps_honest_moves_possible() -> None:
    options = AccuracyOptions(
        seed=1, bikes=60, hours=1.0, size_m=3000.0, coverages=(0.5,), miss_rates=(0.3,),
        clones=3, thefts=1, hmm=False, history_bikes=40, history_hours=1.0,
    )  # fmt: skip
    out = run_bound(options, coverage=0.5, miss=0.3, priors=True, folds=3, clone_figures=True)
    rows = {r["method"]: r for r in out["results"]}
    assert set(rows) == {
        "tagtrail", "shortest_path", "route_choice_oracle", "route_choice_oracle_marginal",
        "tagtrail_sameday_prior", "tagtrail_history_prior",
    }  # fmt: skip
    for r in rows.values():
        # The loss breakdown adds up to the scored recall.
        assert r["recall_attributed"] == pytest.approx(r["recall"], abs=2e-4)
        lost = r["recall_lost_route_building"] + r["recall_lost_path_choice"]
        assert lost == pytest.approx(1.0 - r["recall"], abs=2e-3)
        ways = r["wrong_ways"]["false"]
        assert ways["within_5_m"] <= ways["within_20_m"] <= ways["within_100_m"] <= ways["metres"]
    clones = out["clones"]
    assert len(clones["clone_tags"]) == 3
    # No honest tag is flagged, so no honest move is faster than the clone test allows.
    assert rows["tagtrail"]["clone_false_alarms"] == 0
    assert clones["honest_max_speed_mps"] <= PlaceModel().max_speed_mps
    for c in clones["clone_tags"]:
        if c["max_switch_speed_mps"] is not None and c["max_switch_speed_mps"] > 17.0:
            assert c["flagged"]


def test_the_marginal_oracle_picks_the_way_most_variants_agree_on() -> None:
    # One segment, three variants: variant 0's path alone is the most probable variant, but
    # variants 1 and 2 ride the same other way and hold more of the probability together.
    a: tuple[int, ...] | None = (0, 1, 2)
    b: tuple[int, ...] | None = (0, 3, 4, 2)
    segs: list[tuple[list[tuple[int, ...] | None], NDArray[np.float64]]] = [
        ([a, b, b], np.log(np.array([0.4, 0.3, 0.3])))
    ]
    assert a is not None
    assert b is not None
    assert _viterbi(segs) == [list(a)]
    assert _marginal(segs) == [list(b)]
    # A segment no variant reaches is not drawn, and the chain restarts after it.
    never = np.full(3, -np.inf)
    chain: list[tuple[list[tuple[int, ...] | None], NDArray[np.float64]]] = [
        *segs,
        ([None, None, None], never),
        ([a, a, b], np.log(np.array([0.2, 0.2, 0.6]))),
    ]
    assert _marginal(chain) == [list(b), None, list(b)]
