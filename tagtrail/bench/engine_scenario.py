"""The simulated world of one ``tagtrail bench accuracy`` run and its scenarios.

:class:`AccuracyOptions` says what to simulate; :func:`simulate_city` builds the city (or loads
``--roads``), its riders and their trajectories; :func:`build_scenario` places the readers of
one (coverage, miss rate), simulates every read, runs them through the real gateway normalizer
and engine (:mod:`tagtrail.bench.engine_replay`) and prepares the truth;
:func:`rate_paths` gives the reader paths weighing silence by registry, learned or oracle miss
rates (see :mod:`tagtrail.bench.engine_accuracy`).
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

from citymap.network import City
from citymap.network_files import load_roads
from simulators.city import generate_city
from simulators.day_plan import plan_day
from simulators.readers import SimReader, place_readers
from simulators.rf import simulate_reads
from simulators.riders import generate_population, trajectories
from tagtrail.bench.engine_oracle import RouteChoiceOracle
from tagtrail.bench.engine_replay import estimate_passages
from tagtrail.bench.engine_truth import Truth, prepare_truth
from track_engine.miss_rates import learn_miss_rates, tracks_from_passages
from track_engine.roads import NodeDistances, ReaderPaths, RoadGraph, precompute_reader_paths

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
    distances shared with the other scenarios (see
    :func:`tagtrail.bench.engine_accuracy.run_accuracy`).
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


def route_oracle(
    city: City, options: AccuracyOptions, *, decision: str = "viterbi"
) -> RouteChoiceOracle:
    """The route-choice oracle of the simulated day (its router seed, from the day plan);
    ``decision``: :class:`tagtrail.bench.engine_oracle.RouteChoiceOracle`'s."""
    plan = plan_day(
        city, seed=options.seed, bikes=options.bikes, start=START, hours=options.hours,
        thefts=options.thefts, clones=options.clones,
    )  # fmt: skip
    return RouteChoiceOracle(city, router_seed=plan.router_seed, decision=decision)


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
