"""The model's next readers: the nearest reader each way first, a reader behind a reliable one
rarely next, probabilities that sum to 1 and ETA windows from the e-bike speed range."""

from __future__ import annotations

import numpy as np
from test_where_now import line_graph

from track_engine.intercept import next_readers_by_model


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
