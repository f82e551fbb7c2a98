"""Learning each reader's miss rate from passages (track_engine.miss_rates)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.sparse import csgraph
from test_routes import T0_US, US, grid_graph, passages

from track_engine import path_candidates
from track_engine.miss_rates import Track, learn_miss_rates, tracks_from_passages
from track_engine.roads import ReaderPaths, RoadGraph, precompute_reader_paths

PRIOR = 0.3
PRIOR_PASSES = 50.0  # the default


def line_graph(nodes: int = 7, spacing_m: float = 100.0) -> RoadGraph:
    """One straight two-way street: node i at (i * spacing, 0)."""
    xy = np.column_stack([np.arange(nodes) * spacing_m, np.zeros(nodes)])
    lonlat = np.column_stack([121.15 + xy[:, 0] / 96_250.0, 30.04 + xy[:, 1] / 111_195.0])
    return RoadGraph.from_arrays(
        node_lonlat=lonlat,
        node_xy_m=xy,
        edge_src=np.arange(nodes - 1),
        edge_dst=np.arange(1, nodes),
        both_directions=True,
    )


def track(*visits: tuple[str, float]) -> Track:
    """A tag's passages at (reader, seconds after T0)."""
    return Track(
        readers=tuple(r for r, _ in visits),
        times_us=tuple(T0_US + round(s * US) for _, s in visits),
        directions=("",) * len(visits),
    )


@pytest.fixture(scope="module")
def line() -> ReaderPaths:
    # A at 0 m, M at 300 m, B at 600 m: M stands on the only road from A to B.
    readers = {"A": 0, "M": 3, "B": 6}
    return precompute_reader_paths(line_graph(), readers, miss_rate=dict.fromkeys(readers, PRIOR))


def test_a_reader_on_the_only_road_is_charged_every_pass_it_did_not_hear(
    line: ReaderPaths,
) -> None:
    heard = [track(("A", 0), ("M", 70), ("B", 140))] * 30
    missed = [track(("A", 0), ("B", 140))] * 70
    learned = learn_miss_rates(heard + missed, line, prior_passes=PRIOR_PASSES)
    m = learned["M"]
    assert m.heard == 30
    assert m.silent == pytest.approx(70.0)
    # 70 of 100 missed cannot be a reader that misses 30%: it changed, and the counts say
    # what it does now (the posterior mean under a uniform prior).
    assert m.p_changed > 0.99
    assert m.miss_rate == pytest.approx((70 + 1) / (100 + 2))
    assert m.prior == PRIOR
    # Believed never to change, the registry figure is a Beta prior worth PRIOR_PASSES.
    kept = learn_miss_rates(heard + missed, line, prior_passes=PRIOR_PASSES, changed_share=0.0)
    assert kept["M"].miss_rate == pytest.approx((70 + PRIOR_PASSES * PRIOR) / (100 + PRIOR_PASSES))


def test_a_reader_hearing_about_as_registered_keeps_about_its_registry_figure(
    line: ReaderPaths,
) -> None:
    # 13 of 36 missed (0.36): within the noise of a reader that misses 30%.
    tracks = [track(("A", 0), ("M", 70), ("B", 140))] * 23 + [track(("A", 0), ("B", 140))] * 13
    m = learn_miss_rates(tracks, line)["M"]
    assert m.p_changed < 0.05
    assert m.miss_rate == pytest.approx((13 + PRIOR_PASSES * PRIOR) / (36 + PRIOR_PASSES))


def test_passes_at_the_ends_of_a_ride_are_not_evidence(line: ReaderPaths) -> None:
    # M first or last: whether it would have heard the tag before or after is unknowable.
    tracks = [track(("M", 0), ("B", 70)), track(("A", 0), ("M", 70))] * 20
    m = learn_miss_rates(tracks, line)["M"]
    assert (m.heard, m.silent, m.miss_rate) == (0, 0.0, PRIOR)


def test_a_pause_between_passages_is_not_a_ride(line: ReaderPaths) -> None:
    # An hour from A to B (600 m): the bike was parked somewhere; M's silence says nothing.
    tracks = [track(("A", 0), ("B", 3600))] * 50
    assert learn_miss_rates(tracks, line)["M"].miss_rate == PRIOR


def test_a_long_stop_folded_into_two_passages_is_one_pass(line: ReaderPaths) -> None:
    tracks = [track(("A", 0), ("M", 70), ("M", 100), ("B", 170))] * 10
    assert learn_miss_rates(tracks, line)["M"].heard == 10


def test_readers_without_evidence_keep_the_registry_figure(line: ReaderPaths) -> None:
    learned = learn_miss_rates([], line)
    assert {r: e.miss_rate for r, e in learned.items()} == dict.fromkeys(line.reader_ids, PRIOR)
    assert all(e.passes == 0 for e in learned.values())


def test_a_reader_that_never_hears_the_tags_passing_it_is_learned_deaf() -> None:
    # Grid (test_routes): A at node 0, E at node 5, M at node 1. A to E is 200 m either way:
    # 0-1-5 past M, or 0-4-5. Half the riders go past M, which never hears anyone; the
    # other half pass N on node 4, which hears them all.
    readers = {"A": 0, "E": 5, "M": 1, "N": 4}
    paths = precompute_reader_paths(grid_graph(), readers, miss_rate=dict.fromkeys(readers, 0.3))
    tracks = [track(("A", 0), ("E", 45))] * 50 + [track(("A", 0), ("N", 22), ("E", 45))] * 50
    once = learn_miss_rates(tracks, paths, iterations=1)
    learned = learn_miss_rates(tracks, paths, iterations=4)
    assert learned["M"].heard == 0
    # Each round credits M with more of the silent rides as its rate rises, and N with fewer.
    assert 0.3 < once["M"].miss_rate < learned["M"].miss_rate
    assert learned["M"].miss_rate > 0.85
    assert learned["N"].heard == 50
    assert learned["N"].miss_rate < min(once["N"].miss_rate, 0.25)


def test_learned_rates_stay_probabilities(line: ReaderPaths) -> None:
    never = [track(("A", 0), ("B", 140))] * 100
    always = [track(("A", 0), ("M", 70), ("B", 140))] * 100
    assert learn_miss_rates(never, line)["M"].miss_rate == 0.99
    assert learn_miss_rates(always, line)["M"].miss_rate == 0.01


def test_the_prior_must_be_a_prior(line: ReaderPaths) -> None:
    with pytest.raises(ValueError, match="prior_passes"):
        learn_miss_rates([], line, prior_passes=0.0)
    with pytest.raises(ValueError, match="changed_share"):
        learn_miss_rates([], line, changed_share=1.5)


def test_iterations_must_be_positive(line: ReaderPaths) -> None:
    with pytest.raises(ValueError, match="iterations"):
        learn_miss_rates([], line, iterations=0)


def test_tracks_are_each_tags_passages_in_time_order() -> None:
    frame = pd.concat(
        [
            passages(("B", 140), ("A", 0), tag_id="T2"),
            passages(("A", 0), ("M", 70), ("B", 140), tag_id="T1"),
        ]
    )
    frame.loc[frame["reader_id"] == "M", "direction"] = None
    tracks = tracks_from_passages(frame)
    assert [t.readers for t in tracks] == [("A", "M", "B"), ("A", "B")]
    assert tracks[0].times_us == (T0_US, T0_US + 70 * US, T0_US + 140 * US)
    assert tracks[0].directions == ("", "", "")
    assert tracks_from_passages(frame.iloc[:0]) == []


def test_a_sources_trees_are_built_once_a_round_even_when_the_cache_holds_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A city's trees do not all fit the cache; here it holds one source. Tracks alternate
    # between sources, so taken in track order every pair would rebuild its source's trees.
    readers = {"A": 0, "B": 3, "C": 11, "D": 8}
    paths = precompute_reader_paths(grid_graph(), readers, miss_rate=dict.fromkeys(readers, 0.3))
    monkeypatch.setattr(path_candidates, "_TREE_CACHE_BYTES", 1)
    monkeypatch.setattr(path_candidates, "_MIN_TREE_SOURCES", 1)
    built: list[int] = []
    real = csgraph.dijkstra

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(int(kwargs["indices"]))
        return real(*args, **kwargs)

    monkeypatch.setattr("track_engine.path_candidates.dijkstra", counting)
    # In track order: A, B, D, then A again (for A to C, after D took the cache).
    tracks = [track(("A", 0), ("B", 70), ("C", 140)), track(("D", 0), ("A", 70), ("C", 200))]
    learn_miss_rates(tracks, paths, iterations=2)
    sources = {readers[r] for r in ("A", "B", "D")}  # the pairs' first readers
    # A source's trees are built (and grown as far as its destinations need) in one run of
    # Dijkstra calls a round: no source comes back after another took the cache.
    runs = [k for k, _ in itertools.groupby(built)]
    assert len(runs) == 2 * len(sources)
    assert set(runs) == sources


def test_readers_sharing_a_node_are_each_charged_the_passes_they_missed() -> None:
    # X and Y stand on the same node between A and B. A pass heard by X alone is a miss of Y
    # (the candidate paths leave readers on a segment's ends out, so the visit counts it).
    readers = {"A": 0, "X": 3, "Y": 3, "B": 6}
    paths = precompute_reader_paths(line_graph(), readers, miss_rate=dict.fromkeys(readers, PRIOR))
    tracks = (
        [track(("A", 0), ("X", 70), ("B", 140))] * 30  # Y missed
        + [track(("A", 0), ("X", 70), ("Y", 70.5), ("B", 140))] * 10  # both heard
        + [track(("A", 0), ("B", 140))] * 5  # both missed
    )
    learned = learn_miss_rates(tracks, paths)
    assert (learned["X"].heard, learned["Y"].heard) == (40, 10)
    assert learned["X"].silent == pytest.approx(5.0)
    assert learned["Y"].silent == pytest.approx(35.0)
    assert learned["Y"].miss_rate > 0.7  # 35 of 45 missed: changed
    assert learned["X"].miss_rate < PRIOR  # 5 of 45: as registered, a little better
