"""``tagtrail bench accuracy``: routes reconstructed from simulated reads, scored against truth.

For each reader coverage and miss rate: generate the city (or load ``--roads``), place readers,
simulate riders (with a few thefts and cloned tags) and every read, run the reads through the
gateway's normalizer (each reader's surveyed clock offset taken off) and the engine itself over
its in-memory storage (:mod:`tagtrail.bench.engine_replay`), and reconstruct every tag's
route three ways on the passages the engine stored:

* ``tagtrail``      — the engine's path choice (time consistency, negative evidence) with
  outlier dropping;
* ``shortest_path`` — plain shortest-path stitching between consecutive readers;
* ``hmm``           — HMM map matching (leuvenmapmatching's DistanceMatcher, non-emitting
  states on) of the reader positions in time order; where it gives no path between two
  sightings the shortest path is used, so it is never scored on less than the baseline draws;
* ``route_choice_oracle`` — the engine's route building with a path chooser that knows the
  simulator's own route-choice model (:mod:`tagtrail.bench.engine_oracle`): the bound the
  evidence allows, not a method a deployment can have.

The ``tagtrail`` method weighs silent readers by their miss rates, taken one of three ways
(``reader_rates``): ``registry`` — each reader's surveyed rate, as placed by the simulator;
``learned`` — learned by :func:`track_engine.miss_rates.learn_miss_rates` from the passages of
a *different* simulated day (other riders, the same readers), with the registry as the prior;
``oracle`` — the rates the simulator really used (a reference no deployment has). With
``deaf_readers`` a share of the readers misses 90% of passing tags while the registry still
holds their surveyed rate: what a knocked antenna does.

The world and its scenarios are :mod:`tagtrail.bench.engine_scenario`; the figures of a row
:mod:`tagtrail.bench.engine_scores` (scoring is :func:`track_engine.scoring.score_routes`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from simulators.readers import SimReader, place_readers
from tagtrail.bench.engine_hmm import HmmMatcher
from tagtrail.bench.engine_oracle import RouteChoiceOracle
from tagtrail.bench.engine_scenario import (
    AccuracyOptions,
    build_scenario,
    rate_paths,
    route_oracle,
    simulate_city,
    simulate_history,
)
from tagtrail.bench.engine_scores import (
    calibration_record,
    rate_error,
    reader_spacing,
    score_record,
    score_scenario,
)
from tagtrail.bench.engine_truth import clone_kinds
from tagtrail.bench.engine_where_now import tag_positions, where_now_columns
from track_engine.paths import shortest_path
from track_engine.roads import NodeDistances, ReaderPaths, RoadGraph
from track_engine.route_result import Route
from track_engine.route_zones import ReadZone
from track_engine.routes import build_route

METHODS = ("tagtrail", "shortest_path", "hmm", "route_choice_oracle")


def run_accuracy(options: AccuracyOptions) -> list[dict[str, Any]]:
    """Every (method, coverage, miss rate) result as a JSON-ready dict."""
    city, population, traj, graph = simulate_city(options)
    hmm = HmmMatcher(graph) if options.hmm else None
    oracle = route_oracle(city, options) if options.route_oracle else None
    # Every scenario's readers are a prefix of the largest coverage's (one placement order):
    # their road distances are computed once, from each node the first time it is needed.
    sites = place_readers(city, seed=options.seed, fraction=max(options.coverages))
    distances = NodeDistances(graph, [r.node for r in sites])
    positions = tag_positions(population, traj) if options.where_now else None
    results: list[dict[str, Any]] = []
    for coverage in options.coverages:
        for miss in options.miss_rates:
            sc = build_scenario(
                city, population, traj, graph, options.seed, coverage, miss,
                deaf=options.deaf_readers, distances=distances,
            )  # fmt: skip
            runs: list[tuple[str, str | None]] = [("tagtrail", r) for r in options.reader_rates]
            runs += [(m, None) for m in METHODS[1:3] if m != "hmm" or hmm is not None]
            runs += [(METHODS[3], None)] if oracle is not None else []
            for method, rates in runs:
                learning: dict[str, Any] = {"learn_seconds": None, "learn_passages": None}
                reader_paths = rate_paths(sc, rates, city, options, learning) if rates else None
                routes = reconstruct(
                    method, sc.passages, graph, reader_paths or sc.reader_paths, sc.readers, hmm,
                    oracle=oracle,
                )  # fmt: skip
                scores = score_scenario(routes, sc, graph)
                record = score_record(method, coverage, miss, scores)
                record |= clone_kinds(routes, sc.truth)
                record |= calibration_record(routes, sc, graph)
                record |= reader_spacing(sc.readers)
                record["reader_rates"] = rates
                record["deaf_readers"] = options.deaf_readers
                record["rate_error_mean"] = (
                    rate_error(reader_paths, sc.true_rates) if reader_paths else None
                )
                if method == "tagtrail" and positions is not None:
                    # The intercept answer's history: the day before (other riders).
                    history = simulate_history(city, sc.readers, options)
                    record |= where_now_columns(
                        graph, reader_paths or sc.reader_paths, sc.passages, sc.truth.heard,
                        positions, population, cloned_tags=sc.truth.cloned_tags,
                        seed=options.seed, history=history, true_passages=sc.true_passages,
                    )  # fmt: skip
                results.append(record | learning)
    return results


def reconstruct(
    method: str,
    passages: pd.DataFrame,
    graph: RoadGraph,
    reader_paths: ReaderPaths,
    readers: list[SimReader],
    hmm: HmmMatcher | None,
    *,
    oracle: RouteChoiceOracle | None = None,
) -> dict[str, Route]:
    """Every tag's route by one method."""
    if method == "route_choice_oracle" and oracle is None:
        raise ValueError("the route_choice_oracle method needs the oracle")
    if method == "hmm" and hmm is None:
        raise ValueError("the hmm method needs the HMM matcher")
    reader_nodes = {r.reader_id: r.node for r in readers}
    xy = {r.reader_id: (r.x_m, r.y_m) for r in readers}
    # The deployment's survey: each reader's pole and read range (simulators.deployments).
    zones = {r.reader_id: ReadZone(r.x_m, r.y_m, r.range_m) for r in readers}
    routes: dict[str, Route] = {}
    for tag, ps in passages.groupby("tag_id", sort=True):
        if method == "tagtrail":
            route = build_route(ps, graph, reader_nodes, reader_paths, reader_zones=zones)
        elif method == "route_choice_oracle" and oracle is not None:
            route = build_route(ps, graph, reader_nodes, reader_paths, path_chooser=oracle)
        elif method == "shortest_path":
            route = build_route(
                ps, graph, reader_nodes, reader_paths, path_chooser=shortest_path,
                drop_outliers=False,
            )  # fmt: skip
        elif hmm is not None:
            ordered = ps.sort_values("closest_at_us", kind="mergesort")
            chooser = hmm.chooser(
                [xy[r] for r in ordered["reader_id"]], ordered["closest_at_us"].tolist()
            )
            route = build_route(
                ps, graph, reader_nodes, reader_paths, path_chooser=chooser, drop_outliers=False
            )
        else:
            raise ValueError(f"unknown method {method!r}; one of {METHODS}")
        routes[str(tag)] = route
    return routes
