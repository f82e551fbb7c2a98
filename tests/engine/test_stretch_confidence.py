"""How sure each stretch is: posteriors of the candidate ways between two sightings."""

from __future__ import annotations

import numpy as np
import pytest
from test_routes import T0_US, US, grid_graph, passages

from track_engine.paths import NegativeEvidenceChooser
from track_engine.roads import RoadGraph, precompute_reader_paths
from track_engine.routes import build_route
from track_engine.stretch_confidence import normalise, stretch_confidence

#   8 -- 9 -- 10 -- 11
#   4 -- 5 -- 6  -- 7
#   0 -- 1 -- 2  -- 3      A=0, E=5: two equal 200 m ways, 0-1-5 and 0-4-5.
DIAGONAL = {"A": 0, "E": 5}


@pytest.fixture(scope="module")
def graph() -> RoadGraph:
    return grid_graph()


def test_normalised_posteriors_sum_to_one_and_keep_the_order() -> None:
    p = normalise(np.array([-1.0, -2.0, -30.0]))
    assert p.sum() == pytest.approx(1.0)
    assert p[0] > p[1] > p[2] > 0.0
    assert normalise(np.array([-np.inf, -np.inf])).tolist() == [0.5, 0.5]
    with pytest.raises(ValueError, match="at least one candidate"):
        normalise(np.empty(0))


def test_only_ways_of_at_least_five_percent_are_alternatives_and_at_most_a_handful() -> None:
    ways = [(0, k, 9) for k in range(8)]
    p = np.array([0.3, 0.2, 0.15, 0.1, 0.08, 0.07, 0.06, 0.04])
    conf = stretch_confidence(ways, p, ways[0], max_alternatives=4)
    assert conf.probability == pytest.approx(0.3)
    assert [a.probability for a in conf.alternatives] == pytest.approx([0.2, 0.15, 0.1, 0.08])
    assert ways[0] not in [a.nodes for a in conf.alternatives]
    fewer = stretch_confidence(ways, p, ways[0], max_alternatives=10)
    assert min(a.probability for a in fewer.alternatives) >= 0.05
    assert len(fewer.alternatives) == 6
    with pytest.raises(ValueError, match="2 ways but 1 probabilities"):
        stretch_confidence(ways[:2], np.array([1.0]), ways[0])


def test_two_equal_ways_are_each_about_a_coin_toss(graph: RoadGraph) -> None:
    route = build_route(passages(("A", 0), ("E", 40)), graph, DIAGONAL)
    (conf,) = route.confidence
    assert conf is not None
    assert conf.probability == pytest.approx(0.5, abs=0.05)
    (alt,) = conf.alternatives
    assert alt.probability == pytest.approx(0.5, abs=0.05)
    assert {alt.nodes, tuple(route.segments[0].nodes)} == {(0, 1, 5), (0, 4, 5)}
    assert conf.probability + alt.probability <= 1.0 + 1e-9


def test_a_silent_reader_makes_the_chosen_way_the_most_probable(graph: RoadGraph) -> None:
    # M on node 1 did not hear the bike: 0-4-5 is chosen and is the most probable way.
    readers = {**DIAGONAL, "M": 1}
    paths = precompute_reader_paths(graph, readers, miss_rate={"M": 0.3})
    route = build_route(passages(("A", 0), ("E", 40)), graph, readers, paths)
    (conf,) = route.confidence
    assert conf is not None
    assert route.segments[0].nodes == (0, 4, 5)
    others = [a.probability for a in conf.alternatives]
    assert all(conf.probability > p for p in others)
    assert conf.probability + sum(others) <= 1.0 + 1e-9
    assert conf.probability == pytest.approx(1 / 1.3, abs=0.05)  # 1 : 0.3 odds


def test_a_stretch_with_one_way_is_certain(graph: RoadGraph) -> None:
    # A (0) to B (1): one edge; every other way is a long detour.
    readers = {"A": 0, "B": 1}
    route = build_route(passages(("A", 0), ("B", 20)), graph, readers)
    (conf,) = route.confidence
    assert conf is not None
    assert conf.probability == pytest.approx(1.0, abs=1e-3)
    assert conf.alternatives == ()


def test_the_route_feature_carries_every_stretch_with_its_alternatives(graph: RoadGraph) -> None:
    route = build_route(passages(("A", 0), ("E", 40), ("A", 80)), graph, DIAGONAL)
    stretches = route.to_geojson()["properties"]["stretches"]
    assert [s["segment"] for s in stretches] == [0, 1]
    lonlat = graph.node_lonlat.tolist()
    for s in stretches:
        assert s["from_reader"] in DIAGONAL
        assert s["to_reader"] in DIAGONAL
        assert 0.0 < s["probability"] <= 1.0
        (alt,) = s["alternatives"]
        assert alt["coordinates"][0] == lonlat[DIAGONAL[s["from_reader"]]]
        assert s["probability"] + alt["probability"] <= 1.0 + 1e-3


def test_a_chooser_that_does_not_say_leaves_the_probability_unknown(graph: RoadGraph) -> None:
    def straight(from_reader: str, to_reader: str, **kw: object) -> list[int] | None:
        del from_reader, to_reader, kw
        return [0, 1, 5]

    route = build_route(passages(("A", 0), ("E", 40)), graph, DIAGONAL, path_chooser=straight)
    (s,) = route.to_geojson()["properties"]["stretches"]
    assert s["probability"] is None
    assert s["alternatives"] == []


def test_posteriors_use_the_chooser_s_own_evidence(graph: RoadGraph) -> None:
    chooser = NegativeEvidenceChooser()
    paths = precompute_reader_paths(graph, DIAGONAL)
    chosen, conf = chooser.choose_route_with_confidence(
        ["A", "E"], [T0_US, T0_US + 40 * US], ["", ""], paths
    )
    assert chosen == chooser.choose_route(["A", "E"], [T0_US, T0_US + 40 * US], ["", ""], paths)
    assert conf[0] is not None
