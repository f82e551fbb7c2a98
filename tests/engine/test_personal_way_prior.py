"""The personal way prior: one tag's own habits, bounded, added to the fleet's, and not used
for the stretches after the bike's theft."""

from __future__ import annotations

import json

import pytest
from test_routes import T0_US, US, grid_graph

from track_engine.db.personal_priors import decode_ways, encode_ways, prior_of_rows
from track_engine.paths import NegativeEvidenceChooser
from track_engine.roads import precompute_reader_paths
from track_engine.way_prior import (
    PERSONAL_SHARE,
    Ride,
    WayPrior,
    learn_personal_prior,
)

#   4 -- 5          A=0, E=5: two equal 200 m ways, 0-1-5 (past M) and 0-4-5 (past N).
#   0 -- 1
READERS = {"A": 0, "E": 5, "M": 1, "N": 4}
MISS = {"M": 0.3, "N": 0.3}


def _ride(*readers: str) -> Ride:
    return Ride(tuple(readers), tuple(T0_US + k * 40 * US for k in range(len(readers))))


def test_a_personal_prior_needs_enough_rides_and_keeps_only_pairs_ridden_twice() -> None:
    def miss(_: str) -> float:
        return 0.3

    habit = [_ride("A", "M", "E"), _ride("A", "M", "E")]
    assert not learn_personal_prior(habit, miss)  # two rides: not a habit yet
    rides = [*habit, _ride("E", "N", "A")]
    prior = learn_personal_prior(rides, miss, min_pair_rides=2)
    # A→M, M→E and A→E (past M) twice each; the one ride back (E→N→A) is not kept.
    assert set(prior.rides) == {("A", "M"), ("M", "E"), ("A", "E")}
    assert prior.rides[("A", "E")] == pytest.approx({("M",): 2.0})
    # By default every pair of a tag with enough rides is kept.
    assert ("E", "A") in learn_personal_prior(rides, miss).rides


def test_combined_sums_only_the_pairs_looked_up_and_equals_the_sum() -> None:
    fleet = WayPrior({("A", "E"): {("M",): 10.0, ("N",): 10.0}, ("E", "A"): {(): 3.0}})
    own = WayPrior({("A", "E"): {("N",): 4.0}, ("M", "E"): {(): 2.0}})
    both = fleet.combined(own, PERSONAL_SHARE)
    assert dict(both.rides) == {
        ("A", "E"): {("M",): 10.0, ("N",): 30.0},
        ("E", "A"): {(): 3.0},
        ("M", "E"): {(): 10.0},
    }
    assert len(both.rides) == 3
    assert fleet.combined(WayPrior(), PERSONAL_SHARE) is fleet  # nothing of its own: the fleet's


def test_the_own_prior_applies_before_the_theft_and_the_fleet_s_after() -> None:
    paths = precompute_reader_paths(grid_graph(), READERS, miss_rate=MISS)
    fleet = WayPrior({("A", "E"): {("M",): 4.0, ("N",): 6.0}})  # the fleet rides past N
    own = WayPrior({("A", "E"): {("M",): 4.0}})  # this rider past M
    mine = fleet.combined(own, PERSONAL_SHARE)
    times = [T0_US, T0_US + 60 * US]
    via_m, via_n = [0, 1, 5], [0, 4, 5]

    def route(chooser: NegativeEvidenceChooser) -> list[list[int] | None]:
        return chooser.choose_route(["A", "E"], times, ["", ""], paths)

    assert route(NegativeEvidenceChooser(prior=fleet)) == [via_n]
    assert route(NegativeEvidenceChooser(prior=mine)) == [via_m]
    # Stolen after the stretch started: the rider's own way.
    later = NegativeEvidenceChooser(prior=mine, prior_until_us=times[0] + 1, prior_after=fleet)
    assert route(later) == [via_m]
    # Stolen before it: the fleet's way.
    before = NegativeEvidenceChooser(prior=mine, prior_until_us=times[0], prior_after=fleet)
    assert route(before) == [via_n]
    # After the theft with no fleet prior given: the reader paths' own (here none: a toss).
    bare = NegativeEvidenceChooser(prior=mine, prior_until_us=times[0])
    assert bare.prior_at(paths, times[0]) is None
    assert bare.prior_at(paths, times[0] - 1) is mine


def test_the_stored_form_round_trips_and_a_bike_s_tags_add_up() -> None:
    prior = WayPrior({("A", "E"): {("M",): 2.5, (): 1.0}, ("M", "E"): {(): 2.0}})
    stored = encode_ways(prior)

    assert decode_ways(json.loads(stored)) == prior.rides
    other = WayPrior({("A", "E"): {("M",): 3.0}})
    summed, learned = prior_of_rows(
        [("T1", json.loads(stored), 1), ("T2", json.loads(encode_ways(other)), 2)]
    )
    assert summed.rides[("A", "E")] == {("M",): 5.5, (): 1.0}
    assert learned == 2
