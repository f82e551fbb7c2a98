"""``tagtrail bench accuracy``: cloned tags that ride are flagged; the route-choice oracle."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import numpy as np

from simulators.city import generate_city
from simulators.day_plan import plan_day
from simulators.riders import generate_population
from tagtrail.bench.engine_accuracy import run_accuracy
from tagtrail.bench.engine_oracle import RouteChoiceOracle
from tagtrail.bench.engine_scenario import AccuracyOptions
from track_engine.roads import RoadGraph, precompute_reader_paths

START = datetime(2026, 11, 2, 23, 0, tzinfo=UTC)


def test_cloned_tags_riding_with_their_originals_are_flagged_and_no_honest_tag_is() -> None:
    # Three copies ride (two with their originals, one after its original parked) on a 3 km
    # city; every tag's route goes through the engine's clone test.
    options = AccuracyOptions(
        seed=1, bikes=60, hours=1.0, size_m=3000.0, coverages=(0.5,), miss_rates=(0.3,),
        clones=3, thefts=1, hmm=False,
    )  # fmt: skip
    rows = {r["method"]: r for r in run_accuracy(options)}
    assert set(rows) == {"tagtrail", "shortest_path", "route_choice_oracle"}
    tagtrail = rows["tagtrail"]
    assert tagtrail["clone_tags"] == 3
    assert tagtrail["clone_hits"] == 3
    assert tagtrail["clone_false_alarms"] == 0
    # Read off the simulated trips: which copies rode while their original did.
    assert tagtrail["clone_tags_together"] + tagtrail["clone_tags_parked"] == 3
    assert tagtrail["clone_tags_together"] >= 2
    assert tagtrail["clone_hits_together"] == tagtrail["clone_tags_together"]
    assert 0.0 < rows["route_choice_oracle"]["recall"] <= 1.0


def test_the_route_choice_oracle_knows_the_way_a_simulated_rider_took() -> None:
    # Between any two nodes of a simulated trip, the rider's way is one of the oracle's
    # candidates (a piece of a shortest path on the trip's variant is one), and the oracle's
    # decoded route of the whole trip is a chain of such candidates.
    city = generate_city(seed=4, size_m=1500.0)
    kwargs = {"seed": 4, "bikes": 30, "start": START, "hours": 1.0, "thefts": 0}
    population = generate_population(city, **kwargs)  # type: ignore[arg-type]
    plan = plan_day(city, **kwargs)  # type: ignore[arg-type]
    graph = RoadGraph.from_arrays(
        node_lonlat=city.node_lonlat, node_xy_m=city.node_xy_m, edge_src=city.edge_src,
        edge_dst=city.edge_dst, edge_length_m=city.edge_length_m,
    )  # fmt: skip
    oracle = RouteChoiceOracle(city, router_seed=plan.router_seed)
    visits = population.visits
    for trip_id, trip in visits.groupby("trip_id"):
        nodes = trip.sort_values("seq")["node"].to_numpy(np.int64).tolist()
        if len(nodes) < 9:
            continue
        picked = list(range(0, len(nodes), 4))
        for a, b in itertools.pairwise(picked):
            assert tuple(nodes[a : b + 1]) in oracle.variant_paths(nodes[a], nodes[b]), trip_id
        readers = {f"R{k}": nodes[k] for k in picked}
        times = trip.sort_values("seq")["arrive_us"].to_numpy(np.int64)
        paths = oracle.choose_route(
            list(readers), [int(times[k]) for k in picked], [""] * len(picked),
            precompute_reader_paths(graph, readers),
        )  # fmt: skip
        for (a, b), path in zip(itertools.pairwise(picked), paths, strict=True):
            assert path is not None
            assert tuple(path) in oracle.variant_paths(nodes[a], nodes[b])
