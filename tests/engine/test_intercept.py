"""The model's next readers: the nearest reader each way first, a reader behind a reliable one
rarely next, probabilities that sum to 1, ETA windows from the e-bike speed range, and the
heading: the way back weighs little, straight on may weigh more than a turn."""

from __future__ import annotations

import numpy as np
import pytest
from test_where_now import grid_graph, line_graph

from track_engine.intercept import Heading, came_from_node, next_readers_by_model, other_readers
from track_engine.roads import precompute_reader_paths


def test_the_first_reader_each_way_comes_before_those_behind_it() -> None:
    graph, start = line_graph(n_each_side=30, step_m=50.0)
    readers = {"east1": start + 4, "east2": start + 8, "west1": start - 6}
    rates = {"east1": 0.05, "east2": 0.05, "west1": 0.05}
    answer = next_readers_by_model(graph, start, readers, rates, horizon_m=1000.0, limit=3)
    ids = [i.reader_id for i in answer]
    assert set(ids[:2]) == {"east1", "west1"}
    assert ids[2] == "east2"
    assert answer[2].probability < 0.1  # it hears the bike next only if east1 missed it
    assert np.isclose(sum(i.probability for i in answer), 1.0)
    east1 = next(i for i in answer if i.reader_id == "east1")
    assert east1.distance_m == 200.0
    assert np.isclose(east1.eta_from_s, 200 / (32 / 3.6))
    assert np.isclose(east1.eta_to_s, 200 / (10 / 3.6))


def test_a_sloppy_first_reader_lets_the_next_one_through() -> None:
    graph, start = line_graph(n_each_side=30, step_m=50.0)
    readers = {"east1": start + 4, "east2": start + 8}
    sloppy = next_readers_by_model(graph, start, readers, {"east1": 0.9, "east2": 0.05})
    assert sloppy[0].reader_id == "east2"


def test_the_way_back_is_down_weighted_given_where_the_bike_came_from() -> None:
    graph, start = line_graph(n_each_side=30, step_m=50.0)
    readers = {"east1": start + 4, "west1": start - 4}
    rates = {"east1": 0.05, "west1": 0.05}
    plain = next_readers_by_model(graph, start, readers, rates, limit=None)
    assert np.isclose(plain[0].probability, 0.5)  # no heading: either way alike
    came_from_west = Heading(came_from=start - 1, back=0.1, straight=1.0)
    answer = next_readers_by_model(graph, start, readers, rates, limit=None, heading=came_from_west)
    by_id = {i.reader_id: i.probability for i in answer}
    assert by_id["east1"] == pytest.approx(1 / 1.1)  # road behind west1 weighs 0.1
    assert np.isclose(sum(by_id.values()), 1.0)


def test_straight_on_can_weigh_more_than_a_turn() -> None:
    graph = grid_graph(size=21, step_m=100.0)
    centre = 10 * 21 + 10
    # Readers one block north, south, east and west; the bike came from the west.
    readers = {"N": centre + 21, "S": centre - 21, "E": centre + 1, "W": centre - 1}
    rates = dict.fromkeys(readers, 0.05)
    heading = Heading(came_from=centre - 1, back=0.0, straight=2.0)
    answer = next_readers_by_model(graph, centre, readers, rates, limit=None, heading=heading)
    by_id = {i.reader_id: i.probability for i in answer}
    assert by_id["W"] == 0.0
    plain = {
        i.reader_id: i.probability
        for i in next_readers_by_model(graph, centre, readers, rates, limit=None)
    }
    assert plain["W"] > 0.0
    # Straight on weighs twice a turn: the road behind E doubles against that behind N or S
    # (on a grid, ties split the blocks between the ways unevenly; the ratio is what counts).
    for turn in ("N", "S"):
        assert by_id["E"] / by_id[turn] == pytest.approx(2 * plain["E"] / plain[turn])


def test_the_node_the_bike_came_from_is_the_last_step_of_the_way_in() -> None:
    graph, start = line_graph(n_each_side=10, step_m=50.0)
    paths = precompute_reader_paths(graph, {"A": start - 6, "B": start, "C": start + 3})
    assert came_from_node(paths, "A", "B") == start - 1
    assert came_from_node(paths, "C", "B") == start + 1
    assert came_from_node(paths, "", "B") is None
    assert came_from_node(paths, "B", "B") is None
    assert set(other_readers(paths, "B")) == {"A", "C"}
