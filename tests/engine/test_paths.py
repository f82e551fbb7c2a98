"""Path choice with negative evidence, outlier dropping and clone flags on a hand-made grid."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_routes import READERS, T0_US, US, grid_graph, passages

from track_engine.path_candidates import Candidate, PathCandidates
from track_engine.path_decoding import most_overlap
from track_engine.path_model import PathModel
from track_engine.paths import NegativeEvidenceChooser, shortest_path
from track_engine.roads import NoPathError, RoadGraph, precompute_reader_paths
from track_engine.route_choice import warm_path_choice
from track_engine.routes import build_route

#   8 -- 9 -- 10 -- 11
#   4 -- 5 -- 6  -- 7
#   0 -- 1 -- 2  -- 3      A=0, E=5: two equal 200 m paths, 0-1-5 and 0-4-5.
DIAGONAL = {"A": 0, "E": 5}


@pytest.fixture(scope="module")
def graph() -> RoadGraph:
    return grid_graph()


def choose(
    graph: RoadGraph, readers: dict[str, int], miss: dict[str, float], dt_s: float
) -> list[int] | None:
    paths = precompute_reader_paths(graph, readers, miss_rate=miss)
    return NegativeEvidenceChooser()(
        "A", "E", start_us=T0_US, end_us=T0_US + round(dt_s * US), graph=graph,
        reader_nodes=readers, reader_paths=paths,
    )  # fmt: skip


def test_a_reader_that_did_not_hear_the_tag_makes_its_path_less_likely(graph: RoadGraph) -> None:
    # M stands on node 1: had the bike gone 0-1-5, M would have heard it (unless it missed).
    readers = {**DIAGONAL, "M": 1}
    assert choose(graph, readers, {"M": 0.3}, 40.0) == [0, 4, 5]
    # The same with M on node 4: now the other equal path is the one without a silent reader.
    readers = {**DIAGONAL, "M": 4}
    assert choose(graph, readers, {"M": 0.3}, 40.0) == [0, 1, 5]


def test_the_reader_most_likely_to_miss_is_the_one_believed_silent(graph: RoadGraph) -> None:
    # Both equal paths pass a silent reader: the flakier one (N, misses half) explains it better.
    readers = {**DIAGONAL, "M": 1, "N": 4}
    assert choose(graph, readers, {"M": 0.05, "N": 0.5}, 40.0) == [0, 4, 5]
    assert choose(graph, readers, {"M": 0.5, "N": 0.05}, 40.0) == [0, 1, 5]


def test_a_long_detour_is_not_taken_just_to_avoid_one_reader(graph: RoadGraph) -> None:
    # A (0) to B (3) along the bottom passes silent M on node 2; the reader-free way round the
    # top is 400 m longer: one missed read (30%) is far more likely than that detour.
    readers = {"A": 0, "B": 3, "M": 2}
    paths = precompute_reader_paths(graph, readers, miss_rate={"M": 0.3})
    chooser = NegativeEvidenceChooser()
    ranked = chooser.ranked(paths, "A", "B", 60.0)
    assert ranked[0][1].nodes == (0, 1, 2, 3)
    assert ranked[0][1].missed_readers == ("M",)
    assert ranked[0][1].miss_loglik == pytest.approx(math.log(0.3))
    assert any(not c.missed_readers for _, c in ranked)  # the reader-free way was a candidate


def test_speed_model_rules_out_the_impossible_and_tolerates_stops() -> None:
    model = PathModel()
    assert model.speed_loglik(300.0, 10.0) == -math.inf  # 30 m/s
    assert model.speed_loglik(300.0, 66.0) == pytest.approx(0.0, abs=0.01)  # 4.5 m/s
    # An hour for 300 m: a stop somewhere, unusual but never ruled out.
    assert model.speed_loglik(300.0, 3600.0) == model.speed_floor_loglik
    assert model.speed_loglik(0.0, 0.0) == 0.0


def test_shortest_path_baseline_ignores_evidence(graph: RoadGraph) -> None:
    readers = {**DIAGONAL, "M": 1}
    paths = precompute_reader_paths(graph, readers, miss_rate={"M": 0.3})
    got = shortest_path(
        "A", "E", start_us=T0_US, end_us=T0_US + 40 * US, graph=graph, reader_nodes=readers,
        reader_paths=paths,
    )  # fmt: skip
    assert got == paths.path("A", "E")


def test_single_outlier_between_consistent_passages_is_dropped_and_flagged(
    graph: RoadGraph,
) -> None:
    # D (node 8) at 40 s is 500 m from B 10 s earlier and 300 m from C 10 s later: a misread.
    route = build_route(passages(("A", 0), ("B", 30), ("D", 40), ("C", 50)), graph, READERS)
    assert route.passages["reader_id"].tolist() == ["A", "B", "C"]
    assert route.dropped["reader_id"].tolist() == ["D"]
    # 360 m in 8 s even in a straight line: a copy heard once, or a misread, for an officer.
    assert sorted((f.kind, f.reader_id, f.at_us) for f in route.flags) == [
        ("clone", "D", T0_US + 40 * US),
        ("outlier", "D", T0_US + 40 * US),
    ]
    assert [s.kind for s in route.segments] == ["inferred", "inferred"]
    assert route.clone_suspected
    assert {f["kind"] for f in route.to_geojson()["properties"]["flags"]} == {"clone", "outlier"}


def test_outlier_dropping_can_be_turned_off(graph: RoadGraph) -> None:
    route = build_route(
        passages(("A", 0), ("B", 30), ("D", 40), ("C", 50)), graph, READERS, drop_outliers=False
    )
    assert [s.kind for s in route.segments] == ["inferred", "impossible", "impossible"]
    # Drawing aside, the clone test is the same: D once, not D and then C again.
    assert sorted(f.kind for f in route.flags) == ["clone", "impossible", "impossible"]
    assert route.clone_suspected


def test_a_tag_in_two_places_at_once_is_flagged_as_a_clone(graph: RoadGraph) -> None:
    # Two bikes carry the same tag: sightings alternate between A (node 0) and C (node 11,
    # 500 m away) every 5 s. Dropping one outlier cannot explain that away.
    route = build_route(
        passages(("A", 0), ("C", 5), ("A", 10), ("C", 15), ("A", 20), ("C", 25)), graph, READERS
    )
    assert route.clone_suspected
    assert "clone" in [f.kind for f in route.flags]


def test_an_honest_fast_ride_is_not_flagged(graph: RoadGraph) -> None:
    # 300 m in 20 s is 15 m/s: a van, fast but possible.
    route = build_route(passages(("A", 0), ("B", 20), ("C", 40)), graph, READERS)
    assert route.flags == []
    assert not route.clone_suspected


def test_overlap_decision_prefers_the_path_sharing_most_road_with_the_probable_ones(
    graph: RoadGraph,
) -> None:
    # From 0 to 6 (all 300 m): 0-1-2-6 is the single most probable (0.4), but 0-1-5-6 shares
    # its first street with it and its last street with 0-4-5-6 (0.3 each): it is expected
    # to have more road in common with the truth (160 m against 150 m and 120 m).
    cands = [
        Candidate((0, 1, 2, 6), 300.0, (), 0.0),
        Candidate((0, 1, 5, 6), 300.0, (), 0.0),
        Candidate((0, 4, 5, 6), 300.0, (), 0.0),
    ]
    assert most_overlap(cands, np.array([0.4, 0.3, 0.3]), graph) == 1
    # A clearly more probable path still wins, and ties go to the most probable.
    assert most_overlap(cands, np.array([0.8, 0.1, 0.1]), graph) == 0
    assert most_overlap(cands[:1], np.array([1.0]), graph) == 0


def test_posterior_marginals_are_probabilities_and_agree_with_the_map_path(
    graph: RoadGraph,
) -> None:
    # A (0) to E (5) to F (7), silent M on node 1: both decodings avoid M on the first
    # segment, and every segment's marginals sum to one.
    readers = {**DIAGONAL, "F": 7, "M": 1}
    paths = precompute_reader_paths(graph, readers, miss_rate={"M": 0.3})
    times = [T0_US, T0_US + 40 * US, T0_US + 80 * US]
    route = ["A", "E", "F"]
    overlap = NegativeEvidenceChooser(PathModel(decision="overlap"))
    map_ = NegativeEvidenceChooser()
    assert overlap.choose_route(route, times, ["", "", ""], paths) == map_.choose_route(
        route, times, ["", "", ""], paths
    )
    assert overlap.choose_route(route, times, ["", "", ""], paths)[0] == [0, 4, 5]
    segs = overlap._segments(route, [40.0, 40.0], paths, None)
    marginals = overlap.marginals(segs, route, ["", "", ""], paths)
    for logp in marginals:
        assert np.exp(logp).sum() == pytest.approx(1.0)
    first = segs[0].cands[int(np.argmax(marginals[0]))]
    assert first.nodes == (0, 4, 5)


def test_an_unknown_decision_is_refused(graph: RoadGraph) -> None:
    paths = precompute_reader_paths(graph, DIAGONAL)
    chooser = NegativeEvidenceChooser(PathModel(decision="vote"))
    with pytest.raises(ValueError, match="decision"):
        chooser.choose_route(["A", "E"], [T0_US, T0_US + 40 * US], ["", ""], paths)


def test_warming_every_reader_gives_the_same_candidates_as_computing_them_on_demand(
    graph: RoadGraph,
) -> None:
    """``PathCandidates.warm`` (one multi-source Dijkstra per graph copy) must leave exactly the
    trees that the lazy per-source runs compute: same candidates, same order, for every pair."""
    paths = precompute_reader_paths(graph, READERS, miss_rate={"B": 0.05, "C": 0.3})
    lazy = PathCandidates(paths, PathModel())
    warm = PathCandidates(paths, PathModel())
    assert warm.warm() == len(set(READERS.values()))
    assert warm.warm() == len(set(READERS.values()))  # a second call has nothing left to do
    for a in READERS:
        for b in READERS:
            assert warm.candidates(a, b) == lazy.candidates(a, b), (a, b)


def test_warm_path_choice_warms_the_default_chooser_and_skips_others(graph: RoadGraph) -> None:
    paths = precompute_reader_paths(graph, READERS)
    assert warm_path_choice(paths) == len(set(READERS.values()))
    assert warm_path_choice(paths, shortest_path) == 0


def test_trees_grown_only_to_the_destination_give_the_whole_city_candidates() -> None:
    # The candidate trees stop at each copy's cost of a path to the destination; within that
    # radius a Dijkstra is final, so every candidate set equals the one whole-city trees give,
    # also when a later destination from the same source lies farther and the trees regrow.
    from simulators.city import generate_city
    from simulators.readers import place_readers

    city = generate_city(seed=5, size_m=2500.0)
    graph = RoadGraph.from_arrays(
        node_lonlat=city.node_lonlat, node_xy_m=city.node_xy_m, edge_src=city.edge_src,
        edge_dst=city.edge_dst, edge_length_m=city.edge_length_m,
    )  # fmt: skip
    readers = place_readers(city, seed=5, fraction=0.5, miss_rate=0.3)
    paths = precompute_reader_paths(
        graph,
        {r.reader_id: r.node for r in readers},
        miss_rate={r.reader_id: r.miss_rate for r in readers},
    )
    grown = PathCandidates(paths, PathModel())
    whole = PathCandidates(paths, PathModel())
    assert whole.warm() == len({r.node for r in readers})
    rng = np.random.default_rng(3)
    ids = [r.reader_id for r in readers]
    pairs = []
    for a in rng.choice(ids, size=25, replace=False).tolist():
        # nearest first, then farther: every source's trees have to grow at least once
        by_distance = sorted(ids, key=lambda b: paths.distance_m(a, b))
        pairs += [(a, b) for b in (by_distance[1], by_distance[5], by_distance[-1])]
    for a, b in pairs:
        assert grown.candidates(a, b) == whole.candidates(a, b)
    near = [(a, b) for a, b in pairs[::3]]
    assert all(paths.distance_m(a, b) < 1000.0 for a, b in near)


def test_a_reader_no_road_reaches_costs_no_dijkstra_once_trees_are_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from track_engine import path_candidates

    # Two road pieces with no road between them (an engine network need not be connected).
    graph = RoadGraph.from_arrays(
        node_lonlat=[[0.0, 0.0], [0.001, 0.0], [0.01, 0.0], [0.011, 0.0]],
        edge_src=[0, 2], edge_dst=[1, 3], both_directions=True,
    )  # fmt: skip
    paths = precompute_reader_paths(graph, {"A": 0, "B": 2})
    cands = PathCandidates(paths, PathModel())
    assert cands.warm() == 2
    calls: list[int] = []
    real = path_candidates.dijkstra

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(path_candidates, "dijkstra", counting)
    for _ in range(2):
        with pytest.raises(NoPathError):
            cands.candidates("A", "B")
    assert calls == []
