"""The way prior: learned from rides heard at readers on the way, used by path choice."""

from __future__ import annotations

import math

import pytest
from test_routes import T0_US, US, grid_graph

from track_engine.paths import NegativeEvidenceChooser
from track_engine.roads import RoadGraph, precompute_reader_paths
from track_engine.way_prior import Ride, WayPrior, learn_way_prior, observed_ways, rides_of

#   4 -- 5          A=0, E=5: two equal 200 m ways, 0-1-5 (past M) and 0-4-5 (past N),
#   0 -- 1          each reader missing 30%: the evidence alone cannot tell them apart.
READERS = {"A": 0, "E": 5, "M": 1, "N": 4}
MISS = {"M": 0.3, "N": 0.3}
TIMES = [T0_US, T0_US + 40 * US]


@pytest.fixture(scope="module")
def graph() -> RoadGraph:
    return grid_graph()


def _posterior_of(chooser: NegativeEvidenceChooser, graph: RoadGraph, nodes: tuple[int, ...]):
    paths = precompute_reader_paths(graph, READERS, miss_rate=MISS)
    ((cands, prob),) = chooser.posteriors(["A", "E"], TIMES, ["", ""], paths)
    return sum(float(p) for c, p in zip(cands, prob, strict=True) if c.nodes == nodes)


def test_a_prior_favouring_one_of_two_equal_ways_picks_it(graph: RoadGraph) -> None:
    paths = precompute_reader_paths(graph, READERS, miss_rate=MISS)
    for via, nodes in ((("M",), [0, 1, 5]), (("N",), [0, 4, 5])):
        other = ("N",) if via == ("M",) else ("M",)
        prior = WayPrior({("A", "E"): {via: 20.0, other: 2.0}})
        chooser = NegativeEvidenceChooser(prior=prior)
        assert chooser.choose_route(["A", "E"], TIMES, ["", ""], paths) == [nodes]
        assert _posterior_of(chooser, graph, tuple(nodes)) > 0.5
    # Without a prior the two ways are a coin toss.
    assert _posterior_of(NegativeEvidenceChooser(), graph, (0, 1, 5)) == pytest.approx(0.5)


def test_the_prior_rides_on_the_reader_paths_and_a_pair_it_never_saw_is_unchanged(
    graph: RoadGraph,
) -> None:
    import dataclasses

    paths = precompute_reader_paths(graph, READERS, miss_rate=MISS)
    with_prior = dataclasses.replace(paths, way_prior=WayPrior({("A", "E"): {("N",): 9.0}}))
    chooser = NegativeEvidenceChooser()
    assert chooser.choose_route(["A", "E"], TIMES, ["", ""], with_prior) == [[0, 4, 5]]
    # A prior about another pair: every candidate of A→E gets 0, the scores are as without.
    elsewhere = NegativeEvidenceChooser(prior=WayPrior({("E", "A"): {("M",): 50.0}}))
    assert elsewhere.ranked(paths, "A", "E", 40.0) == chooser.ranked(paths, "A", "E", 40.0)


def test_loglik_is_smoothed_and_zero_for_unseen_pairs() -> None:
    prior = WayPrior({("A", "E"): {("M",): 8.0}}, pseudo=1.0)
    ways = [("M",), ("N",)]
    assert prior.loglik("A", "E", ("M",), ways) == pytest.approx(math.log(9.0 / 10.0))
    assert prior.loglik("A", "E", ("N",), ways) == pytest.approx(math.log(1.0 / 10.0))
    assert prior.loglik("E", "A", ("N",), ways) == 0.0
    assert prior.logliks("A", "E", [("N",), ("M",), ("N",)]) == pytest.approx(
        [math.log(0.1), math.log(0.9), math.log(0.1)]
    )
    assert prior.logliks("E", "A", ways) == [0.0, 0.0]
    assert not WayPrior()


def test_rides_are_cut_at_long_silences_and_repeats_fold() -> None:
    times = [0, 5 * US, 60 * US, 120 * US, 1000 * US, 1060 * US]
    rides = rides_of(["A", "A", "M", "E", "N", "E"], times, max_gap_s=300)
    # The repeat at A folds into its last passage; N, E are 880 s later: a second ride.
    assert rides == [
        Ride(("A", "M", "E"), (5 * US, 60 * US, 120 * US)),
        Ride(("N", "E"), (1000 * US, 1060 * US)),
    ]


def test_observed_ways_count_the_readers_heard_between() -> None:
    seen = observed_ways([Ride(("A", "M", "E"), (0, 1, 2)), Ride(("A", "E"), (0, 1))])
    assert seen[("A", "E")] == {("M",): 1, (): 1}
    assert seen[("A", "M")] == {(): 1}


def test_learning_corrects_for_readers_that_missed_the_tag() -> None:
    # 100 rides A→E past M (misses 30%): ~70 are heard at M, ~30 seem to pass no reader.
    # 20 rides by a reader-free way. Counted naively the reader-free way has 50 of 120 rides.
    rides = [Ride(("A", "M", "E"), (0, 1, 2))] * 70 + [Ride(("A", "E"), (0, 1))] * 50
    prior = learn_way_prior(rides, lambda r: 0.3 if r == "M" else 0.1)
    ways = prior.rides[("A", "E")]
    assert ways[("M",)] == pytest.approx(100.0, abs=1.0)
    assert ways[()] == pytest.approx(20.0, abs=1.0)


def test_a_personal_prior_adds_to_the_fleets_with_its_share() -> None:
    fleet = WayPrior({("A", "E"): {("M",): 10.0, ("N",): 10.0}})
    personal = WayPrior({("A", "E"): {("N",): 4.0}, ("E", "A"): {(): 2.0}})
    both = fleet.combined(personal, 5.0)
    assert both.rides[("A", "E")] == {("M",): 10.0, ("N",): 30.0}
    assert both.rides[("E", "A")] == {(): 10.0}
    assert fleet.rides[("A", "E")] == {("M",): 10.0, ("N",): 10.0}  # the fleet's is untouched
