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

Scoring is :func:`track_engine.scoring.score_routes`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from citymap.network import City
from citymap.network_files import load_roads
from simulators.city import generate_city
from simulators.day_plan import plan_day
from simulators.readers import SimReader, place_readers
from simulators.rf import simulate_reads
from simulators.riders import generate_population, trajectories
from tagtrail.bench.engine_hmm import HmmMatcher
from tagtrail.bench.engine_oracle import RouteChoiceOracle
from tagtrail.bench.engine_replay import estimate_passages
from tagtrail.bench.engine_truth import Truth, clone_kinds, prepare_truth
from tagtrail.bench.engine_where_now import tag_positions, where_now_columns
from track_engine.calibration_scoring import score_calibration
from track_engine.miss_rates import learn_miss_rates, tracks_from_passages
from track_engine.paths import shortest_path
from track_engine.roads import NodeDistances, ReaderPaths, RoadGraph, precompute_reader_paths
from track_engine.route_result import Route
from track_engine.routes import build_route
from track_engine.scoring import Scores, score_routes

METHODS = ("tagtrail", "shortest_path", "hmm", "route_choice_oracle")
READER_RATES = ("registry", "learned", "oracle")
DEAF_MISS_RATE = 0.9
START = datetime(2026, 11, 2, 23, 0, tzinfo=UTC)  # 07:00 local: the morning peak
_US_PER_S = 1_000_000


@dataclass(frozen=True)
class AccuracyOptions:
    """What to simulate."""

    seed: int = 7
    bikes: int = 200
    hours: float = 2.0
    size_m: float = 3000.0
    roads: Path | None = None
    junction_tolerance_m: float | None = None  # OSM junction consolidation (None: the default)
    coverages: tuple[float, ...] = (0.25, 0.5, 1.0)
    miss_rates: tuple[float, ...] = (0.1, 0.3)
    clones: int = 4
    thefts: int = 4
    hmm: bool = True
    route_oracle: bool = True  # the route_choice_oracle row
    reader_rates: tuple[str, ...] = ("registry",)
    deaf_readers: float = 0.0  # share of readers deaf (DEAF_MISS_RATE) unknown to the registry
    history_bikes: int = 600  # the day the ``learned`` rates are learned from
    history_hours: float = 8.0
    where_now: bool = False  # score where-now and intercept (engine_where_now) on tagtrail rows

    def __post_init__(self) -> None:
        unknown = sorted(set(self.reader_rates) - set(READER_RATES))
        if unknown or not self.reader_rates:
            raise ValueError(f"reader rates must be among {READER_RATES}, got {unknown or '()'}")
        if not 0.0 <= self.deaf_readers <= 1.0:
            raise ValueError("deaf_readers must be a fraction within [0, 1]")


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
                record = _record(method, coverage, miss, scores)
                record |= clone_kinds(routes, sc.truth)
                record |= calibration_record(routes, sc, graph)
                record |= reader_spacing(sc.readers)
                record["reader_rates"] = rates
                record["deaf_readers"] = options.deaf_readers
                record["rate_error_mean"] = (
                    _rate_error(reader_paths, sc.true_rates) if reader_paths else None
                )
                if method == "tagtrail" and positions is not None:
                    record |= where_now_columns(
                        graph, reader_paths or sc.reader_paths, sc.passages, sc.truth.heard,
                        positions, population, cloned_tags=sc.truth.cloned_tags,
                        seed=options.seed,
                    )  # fmt: skip
                results.append(record | learning)
    return results


def route_oracle(city: City, options: AccuracyOptions) -> RouteChoiceOracle:
    """The route-choice oracle of the simulated day (its router seed, from the day plan)."""
    plan = plan_day(
        city, seed=options.seed, bikes=options.bikes, start=START, hours=options.hours,
        thefts=options.thefts, clones=options.clones,
    )  # fmt: skip
    return RouteChoiceOracle(city, router_seed=plan.router_seed)


def reader_spacing(readers: list[SimReader]) -> dict[str, Any]:
    """How many readers, and how far each stands from its nearest neighbour (median, 10th
    percentile, meters between surveyed positions): readers a few meters apart hear the same
    pass, which is what junction consolidation is for."""
    if len(readers) < 2:
        return {"readers": len(readers), "reader_spacing_median_m": None,
                "reader_spacing_p10_m": None}  # fmt: skip
    xy = np.array([[r.x_m, r.y_m] for r in readers])
    nearest = cKDTree(xy).query(xy, k=2)[0][:, 1]
    return {
        "readers": len(readers),
        "reader_spacing_median_m": round(float(np.median(nearest)), 1),
        "reader_spacing_p10_m": round(float(np.percentile(nearest, 10)), 1),
    }


def score_scenario(routes: dict[str, Route], sc: Scenario, graph: RoadGraph) -> Scores:
    """Routes of one scenario against its truth."""
    return score_routes(
        routes,
        graph=graph,
        estimated_passages=sc.passages,
        truth_passages=sc.truth.heard,
        spans=sc.truth.spans,
        true_edges=sc.truth.edges,
        true_positions=sc.truth.positions,
        cloned_tags=sc.truth.cloned_tags,
    )


def calibration_record(routes: dict[str, Route], sc: Scenario, graph: RoadGraph) -> dict[str, Any]:
    """How well the stated stretch probabilities match the truth (None: the method states
    none): ``calibration_ece``, ``alternatives_coverage`` and the ``reliability`` table."""
    cal = score_calibration(routes, graph=graph, spans=sc.truth.spans, true_edges=sc.truth.edges)
    if cal.stretches == 0:
        return {"calibration_ece": None, "alternatives_coverage": None, "reliability": None,
                "calibrated_stretches": 0}  # fmt: skip
    return {
        "calibration_ece": round(cal.ece, 4),
        "alternatives_coverage": round(cal.alternatives_coverage, 4),
        "calibrated_stretches": cal.stretches,
        "reliability": [
            {
                "lo": round(b.lo, 2),
                "hi": round(b.hi, 2),
                "stretches": b.stretches,
                "stated": None if not b.stretches else round(b.stated, 4),
                "right": None if not b.stretches else round(b.right, 4),
            }
            for b in cal.bins
        ],
    }


def rate_paths(
    sc: Scenario,
    rates: str,
    city: City,
    options: AccuracyOptions,
    learning: dict[str, Any] | None = None,
) -> ReaderPaths:
    """The scenario's reader paths weighing silence by ``rates`` (see the module docstring).

    For ``learned``, ``learning`` gets how long the learning took (``learn_seconds``, the
    history's simulation apart) and from how many passages (``learn_passages``).
    """
    if rates == "registry":
        return sc.reader_paths
    if rates == "oracle":
        return dataclasses.replace(sc.reader_paths, miss_rate=dict(sc.true_rates))
    history = simulate_history(city, sc.readers, options)
    started = time.perf_counter()
    learned = learn_miss_rates(tracks_from_passages(history), sc.reader_paths)
    if learning is not None:
        learning["learn_seconds"] = round(time.perf_counter() - started, 2)
        learning["learn_passages"] = len(history)
    return dataclasses.replace(
        sc.reader_paths, miss_rate={r: e.miss_rate for r, e in learned.items()}
    )


def simulate_history(
    city: City, readers: list[SimReader], options: AccuracyOptions
) -> pd.DataFrame:
    """The passages of another day (the day before, other riders) at the same readers."""
    seed = options.seed + 1000
    population = generate_population(
        city,
        seed=seed,
        bikes=options.history_bikes,
        start=START - timedelta(days=1),
        hours=options.history_hours,
        thefts=0,
        clones=0,
    )
    reads, _ = simulate_reads(city, readers, trajectories(city, population, seed=seed), seed=seed)
    return estimate_passages(reads, readers)


def _rate_error(reader_paths: ReaderPaths, true_rates: dict[str, float]) -> float:
    """Mean absolute difference between the miss rates path choice used and the real ones."""
    errors = [abs(reader_paths.miss_rate_of(r) - true) for r, true in true_rates.items()]
    return round(float(np.mean(errors)), 4) if errors else 0.0


@dataclass(frozen=True)
class Scenario:
    """One (coverage, miss rate) run: readers, estimated passages, truth, reader paths.

    ``readers`` are as simulated (deaf ones with their real rate); ``reader_paths`` carries
    the registry's rates; ``true_rates`` the simulated ones.
    """

    coverage: float
    miss_rate: float
    readers: list[SimReader]
    passages: pd.DataFrame
    true_passages: pd.DataFrame
    truth: Truth
    reader_paths: ReaderPaths
    true_rates: dict[str, float]


def simulate_city(options: AccuracyOptions) -> tuple[City, Any, pd.DataFrame, RoadGraph]:
    """The city (or ``--roads``), its population, trajectories and road graph."""
    city = load_roads(
        options.roads, junction_tolerance_m=options.junction_tolerance_m
    ) if options.roads else generate_city(seed=options.seed, size_m=options.size_m)  # fmt: skip
    population = generate_population(
        city,
        seed=options.seed,
        bikes=options.bikes,
        start=START,
        hours=options.hours,
        thefts=options.thefts,
        clones=options.clones,
    )
    traj = trajectories(city, population, seed=options.seed)
    graph = RoadGraph.from_arrays(
        node_lonlat=city.node_lonlat,
        node_xy_m=city.node_xy_m,
        edge_src=city.edge_src,
        edge_dst=city.edge_dst,
        edge_length_m=city.edge_length_m,
    )
    return city, population, traj, graph


def build_scenario(
    city: City,
    population: Any,
    traj: pd.DataFrame,
    graph: RoadGraph,
    seed: int,
    coverage: float,
    miss: float,
    *,
    deaf: float = 0.0,
    distances: NodeDistances | None = None,
) -> Scenario:
    """Place readers, simulate the reads, fold passages and prepare the truth of one run.

    ``deaf``: the share of readers that miss DEAF_MISS_RATE of passing tags while the
    registry (the scenario's reader paths) keeps their surveyed rate. ``distances``: road
    distances shared with the other scenarios (see :func:`run_accuracy`).
    """
    placed = place_readers(city, seed=seed, fraction=coverage, miss_rate=miss)
    rng = np.random.default_rng(seed + 99)
    deaf_ids = set(rng.choice(len(placed), round(deaf * len(placed)), replace=False).tolist())
    readers = [
        dataclasses.replace(r, miss_rate=DEAF_MISS_RATE) if i in deaf_ids else r
        for i, r in enumerate(placed)
    ]
    reads, true_passages = simulate_reads(city, readers, traj, seed=seed)
    truth = prepare_truth(city, readers, population, traj, true_passages)
    passages = estimate_passages(reads, readers)
    reader_paths = precompute_reader_paths(
        graph,
        {r.reader_id: r.node for r in readers},
        miss_rate={r.reader_id: r.miss_rate for r in placed},
        distances=distances,
    )
    true_rates = {r.reader_id: r.miss_rate for r in readers}
    return Scenario(
        coverage, miss, readers, passages, true_passages, truth, reader_paths, true_rates
    )


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
    routes: dict[str, Route] = {}
    for tag, ps in passages.groupby("tag_id", sort=True):
        if method == "tagtrail":
            route = build_route(ps, graph, reader_nodes, reader_paths)
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


def _record(method: str, coverage: float, miss: float, s: Scores) -> dict[str, Any]:
    def r(x: float, nd: int) -> float | None:
        return None if np.isnan(x) else round(float(x), nd)

    return {
        "method": method,
        "coverage": coverage,
        "miss_rate": miss,
        "recall": r(s.recall, 4),
        "precision": r(s.precision, 4),
        "time_error_median_s": r(s.time_error_median_s, 3),
        "time_error_p95_s": r(s.time_error_p95_s, 3),
        "position_error_median_m": r(s.position_error_median_m, 1),
        "position_error_p95_m": r(s.position_error_p95_m, 1),
        "trips": s.trips,
        "clone_hits": s.clone_hits,
        "clone_tags": s.clone_tags,
        "clone_false_alarms": s.clone_false_alarms,
    }
