"""``python -m tagtrail.bench.engine_bound``: what bounds issue #17's accuracy targets on one
``tagtrail bench accuracy`` scenario (same city, readers, riders, reads and passages).

For each method — ``tagtrail``, ``shortest_path``, ``route_choice_oracle`` (the chooser that
knows the simulator's route-choice model: :mod:`tagtrail.bench.engine_oracle`) and, unless
``--no-priors``, tagtrail with a fleet way prior (:mod:`track_engine.way_prior`) learned
without ground truth from

* ``tagtrail_sameday_prior`` — the *same* day's passages of the other tags, cross-fitted: the
  tags are split into ``folds`` and each fold's routes use the prior learned from the other
  folds' rides (a tag's own rides never inform its own route), or
* ``tagtrail_history_prior`` — another simulated day at the same readers
  (:func:`tagtrail.bench.engine_scenario.simulate_history`: other riders, the day before) —

it prints the scores, the recall lost per cause (:func:`tagtrail.bench.engine_diagnosis.diagnose`,
split into *route building* — trip ends, dropped or misplaced passages, segments not drawn —
which every method shares, and *path choice*), and how far the wrong metres lie from the true
way (:mod:`tagtrail.bench.engine_wrong_ways`). With ``--clones-figures`` it adds the moves a
clone detector has to work with (:mod:`tagtrail.bench.engine_clone_moves`).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tagtrail.bench.engine_accuracy import reconstruct
from tagtrail.bench.engine_clone_moves import clone_move_figures
from tagtrail.bench.engine_diagnosis import LOSS_CAUSES, diagnose, diagnosis_table
from tagtrail.bench.engine_scenario import (
    AccuracyOptions,
    Scenario,
    build_scenario,
    route_oracle,
    simulate_city,
    simulate_history,
)
from tagtrail.bench.engine_scores import score_record, score_scenario
from tagtrail.bench.engine_wrong_ways import wrong_way_distances
from track_engine.paths import NegativeEvidenceChooser
from track_engine.roads import RoadGraph
from track_engine.route_result import Route
from track_engine.routes import build_route
from track_engine.way_prior import Ride, WayPrior, learn_way_prior, rides_of

__all__ = ["crossfit_priors", "prior_routes", "run_bound", "sameday_rides"]

BASE_METHODS = ("tagtrail", "shortest_path", "route_choice_oracle", "route_choice_oracle_marginal")
PRIOR_METHODS = ("tagtrail_sameday_prior", "tagtrail_history_prior")
# Causes every method shares (the route around the path choice), and the path choice's own.
BUILDING_CAUSES = LOSS_CAUSES[:4]
CHOICE_CAUSES = LOSS_CAUSES[4:]


def sameday_rides(sc: Scenario) -> dict[str, list[Ride]]:
    """Every tag's rides on the scored day, as the engine stored its passages."""
    out: dict[str, list[Ride]] = {}
    ordered = sc.passages.sort_values(["tag_id", "closest_at_us", "reader_id"], kind="mergesort")
    for tag, ps in ordered.groupby("tag_id", sort=True):
        out[str(tag)] = rides_of(ps["reader_id"].astype(str).tolist(), ps["closest_at_us"].tolist())
    return out


def prior_routes(
    sc: Scenario, graph: RoadGraph, priors: dict[str, WayPrior], default: WayPrior | None = None
) -> dict[str, Route]:
    """Every tag's route with tagtrail's chooser and the way prior ``priors[tag]`` (``default``
    for a tag not in ``priors``)."""
    reader_nodes = {r.reader_id: r.node for r in sc.readers}
    choosers: dict[int, NegativeEvidenceChooser] = {}
    out: dict[str, Route] = {}
    for tag, ps in sc.passages.groupby("tag_id", sort=True):
        prior = priors.get(str(tag), default)
        chooser = choosers.setdefault(id(prior), NegativeEvidenceChooser(prior=prior))
        out[str(tag)] = build_route(ps, graph, reader_nodes, sc.reader_paths, path_chooser=chooser)
    return out


def crossfit_priors(
    rides: dict[str, list[Ride]], miss_rate_of: Callable[[str], float], folds: int
) -> dict[str, WayPrior]:
    """Per tag, the fleet prior learned from the rides of the *other* folds' tags (tags
    sorted, fold = position modulo ``folds``): a tag's own rides never inform its route."""
    tags = sorted(rides)
    fold_of = {t: i % folds for i, t in enumerate(tags)}
    out: dict[str, WayPrior] = {}
    for k in range(folds):
        others = [r for t in tags if fold_of[t] != k for r in rides[t]]
        prior = learn_way_prior(others, miss_rate_of)
        out |= {t: prior for t in tags if fold_of[t] == k}
    return out


def _method_record(
    method: str, routes: dict[str, Route], sc: Scenario, graph: RoadGraph, population: Any
) -> dict[str, Any]:
    """Scores, recall lost per cause and wrong-way distances of one method's routes."""
    scores = score_scenario(routes, sc, graph)
    record = score_record(method, sc.coverage, sc.miss_rate, scores)
    diag = diagnose(sc, population, graph, routes, NegativeEvidenceChooser())
    table = diagnosis_table(diag, record["recall"])
    lost = {row["cause"]: row["recall_lost"] for row in table if row["cause"] in LOSS_CAUSES}
    record["recall_lost"] = lost
    record["recall_lost_route_building"] = round(sum(lost[c] or 0.0 for c in BUILDING_CAUSES), 4)
    record["recall_lost_path_choice"] = round(sum(lost[c] or 0.0 for c in CHOICE_CAUSES), 4)
    record["recall_attributed"] = table[-1].get("recall_attributed")
    # Precision's loss the same way: each cause's wrongly drawn metres over all drawn metres.
    drawn_m = float(diag["true_m"].sum() - diag["lost_m"].sum() + diag["false_m"].sum())
    false_m = diag.groupby("cause")["false_m"].sum()
    record["precision_lost"] = {
        c: round(float(false_m.get(c, 0.0)) / drawn_m, 4) if drawn_m else None for c in LOSS_CAUSES
    }
    record["precision_attributed"] = (
        round(1.0 - float(diag["false_m"].sum()) / drawn_m, 4) if drawn_m else None
    )
    record["wrong_ways"] = wrong_way_distances(routes, sc.truth.spans, sc.truth.edges, graph)
    return record


def run_bound(
    options: AccuracyOptions,
    *,
    coverage: float = 0.5,
    miss: float = 0.3,
    priors: bool = True,
    folds: int = 5,
    clone_figures: bool = False,
) -> dict[str, Any]:
    """The methods' records (and the clone figures) of one scenario, JSON-ready."""
    city, population, traj, graph = simulate_city(options)
    sc = build_scenario(city, population, traj, graph, options.seed, coverage, miss)
    oracle = route_oracle(city, options)
    marginal = route_oracle(city, options, decision="marginal")
    records: list[dict[str, Any]] = []
    by_method: dict[str, dict[str, Route]] = {}
    for method in BASE_METHODS:
        started = time.perf_counter()
        name = "route_choice_oracle" if method.startswith("route_choice_oracle") else method
        chooser = marginal if method.endswith("_marginal") else oracle
        routes = reconstruct(name, sc.passages, graph, sc.reader_paths, sc.readers, None,
                             oracle=chooser)  # fmt: skip
        by_method[method] = routes
        records.append(_method_record(method, routes, sc, graph, population)
                       | {"seconds": round(time.perf_counter() - started, 1)})  # fmt: skip
    if priors:
        started = time.perf_counter()
        priors_of = crossfit_priors(sameday_rides(sc), sc.reader_paths.miss_rate_of, folds)
        routes = prior_routes(sc, graph, priors_of)
        seconds = round(time.perf_counter() - started, 1)
        records.append(_method_record(PRIOR_METHODS[0], routes, sc, graph, population)
                       | {"seconds": seconds, "folds": folds})  # fmt: skip
        started = time.perf_counter()
        history = simulate_history(city, sc.readers, options)
        ordered = history.sort_values(["tag_id", "closest_at_us", "reader_id"], kind="mergesort")
        hist_rides = [
            r
            for _, ps in ordered.groupby("tag_id", sort=True)
            for r in rides_of(ps["reader_id"].astype(str).tolist(), ps["closest_at_us"].tolist())
        ]
        prior = learn_way_prior(hist_rides, sc.reader_paths.miss_rate_of)
        routes = prior_routes(sc, graph, {}, prior)
        records.append(_method_record(PRIOR_METHODS[1], routes, sc, graph, population)
                       | {"seconds": round(time.perf_counter() - started, 1),
                          "history_rides": len(hist_rides)})  # fmt: skip
    out: dict[str, Any] = {
        "seed": options.seed,
        "roads": str(options.roads) if options.roads else None,
        "coverage": coverage,
        "miss_rate": miss,
        "readers": len(sc.readers),
        "results": records,
    }
    if clone_figures:
        cands = NegativeEvidenceChooser().candidates_for(sc.reader_paths)
        out["clones"] = clone_move_figures(sc, graph, by_method["tagtrail"], cands)
    return out


def main(argv: list[str] | None = None) -> None:
    """``python -m tagtrail.bench.engine_bound``: one scenario's bound figures as JSON."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--bikes", type=int, default=200)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--roads", type=Path, default=None)
    parser.add_argument("--junction-tolerance-m", type=float, default=None)
    parser.add_argument("--coverage", type=float, default=0.5)
    parser.add_argument("--miss-rate", type=float, default=0.3)
    parser.add_argument("--clones", type=int, default=4)
    parser.add_argument("--no-priors", action="store_true")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--clones-figures", action="store_true")
    args = parser.parse_args(argv)
    options = AccuracyOptions(
        seed=args.seed, bikes=args.bikes, hours=args.hours, roads=args.roads,
        junction_tolerance_m=args.junction_tolerance_m, clones=args.clones, hmm=False,
        coverages=(args.coverage,), miss_rates=(args.miss_rate,),
    )  # fmt: skip
    result = run_bound(
        options, coverage=args.coverage, miss=args.miss_rate, priors=not args.no_priors,
        folds=args.folds, clone_figures=args.clones_figures,
    )  # fmt: skip
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
