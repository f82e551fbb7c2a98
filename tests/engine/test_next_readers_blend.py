"""The next-readers blend: the road model alone without history, the history taking over as
departures pile up, the heading's and the tag's own departures above the fleet's, and ETA
windows from the fleet's travel times once a pair is ridden often enough."""

from __future__ import annotations

import pytest

from track_engine.intercept import Intercept
from track_engine.next_readers import (
    Blend,
    Departures,
    EtaWindow,
    TravelTimes,
    blend_next_readers,
)

ROAD = [
    Intercept("A", 0.5, 200.0, 200 / (32 / 3.6), 200 / (10 / 3.6)),
    Intercept("B", 0.3, 300.0, 300 / (32 / 3.6), 300 / (10 / 3.6)),
    Intercept("C", 0.2, 400.0, 400 / (32 / 3.6), 400 / (10 / 3.6)),
]


def _probabilities(history: Departures, blend: Blend | None = None) -> dict[str, float]:
    answer = blend_next_readers(ROAD, history, {"D": 900.0}, blend=blend, limit=None)
    return {p.reader_id: p.probability for p in answer}


def test_without_history_the_answer_is_the_road_model() -> None:
    answer = blend_next_readers(ROAD, Departures(), {}, limit=3)
    assert [(p.reader_id, p.source) for p in answer] == [("A", "road"), ("B", "road"),
                                                          ("C", "road")]  # fmt: skip
    assert [p.probability for p in answer] == pytest.approx([0.5, 0.3, 0.2])
    # The window is the road distance at 10-32 km/h, 10 s more either side.
    assert (answer[0].eta_from_s, answer[0].eta_to_s) == pytest.approx((12.5, 82.0))


def test_departures_pull_the_answer_by_their_count() -> None:
    few = _probabilities(Departures(fleet={"C": 3}), Blend(road=3.0))
    assert few["C"] == pytest.approx((3 + 3 * 0.2) / 6)
    assert few["A"] == pytest.approx(3 * 0.5 / 6)
    many = _probabilities(Departures(fleet={"C": 300}), Blend(road=3.0))
    assert many["C"] > 0.98
    # A reader only the history knows (beyond the road model's horizon) is in the answer.
    beyond = _probabilities(Departures(fleet={"D": 6}))
    assert beyond["D"] > beyond["A"]
    assert sum(beyond.values()) == pytest.approx(1.0)


def test_the_heading_and_the_tags_own_departures_come_on_top_of_the_fleets() -> None:
    fleet = {"A": 20, "B": 20}
    chain = Blend(road=3.0, fleet=3.0, own=3.0, heading_only=False)
    turned = _probabilities(Departures(fleet=fleet, heading={"B": 10}), chain)
    assert turned["B"] > 0.8 > turned["A"]
    habit = _probabilities(Departures(fleet=fleet, heading={"B": 10}, own={"A": 12}), chain)
    assert habit["A"] > habit["B"]
    off = _probabilities(Departures(fleet=fleet, own={"A": 12}), Blend(own=0.0))
    assert off["A"] == pytest.approx(1.0)  # strength 0: the level's counts alone
    # The default: with the previous reader known, the fleet's departures of every heading are
    # left out; those that came the same way are smoothed towards the road model (10 pseudo).
    came = Departures(previous_reader="P", fleet={"A": 40}, heading={"B": 10})
    assert _probabilities(came)["B"] == pytest.approx((10 + 10 * 0.3) / 20)
    assert _probabilities(came)["A"] == pytest.approx(10 * 0.5 / 20)
    answer = blend_next_readers(ROAD, Departures(fleet={"C": 50}), {}, limit=1)
    assert answer[0].source == "history"


def test_eta_window_from_the_fleet_once_the_pair_is_ridden_often() -> None:
    window = EtaWindow()  # from 10 rides: the 10th-90th percentile x0.9 / x1.1, then 10 s
    often = TravelTimes(count=12, p10_s=40.0, p50_s=50.0, p90_s=70.0)
    assert window.window_s(300.0, often) == pytest.approx((26.0, 87.0))
    rarely = TravelTimes(count=4, p10_s=40.0, p50_s=50.0, p90_s=70.0)
    assert window.window_s(300.0, rarely) == pytest.approx((23.75, 118.0))  # 300 m, 10-32 km/h
    # No road distance (a reader the network does not know): the fleet's, however few.
    assert window.window_s(float("nan"), rarely) == pytest.approx((26.0, 87.0))
    assert EtaWindow(slack_s=60.0).window_s(300.0, often)[0] == 0.0  # never before the sighting
    history = Departures(fleet={"A": 12}, travel={"A": often})
    answer = blend_next_readers(ROAD, history, {}, limit=1)
    assert (answer[0].eta_from_s, answer[0].eta_to_s, answer[0].travel_s) == pytest.approx(
        (26.0, 87.0, 50.0)
    )
