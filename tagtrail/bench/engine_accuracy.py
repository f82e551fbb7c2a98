"""``tagtrail bench accuracy``: routes reconstructed from simulated reads, scored against truth.

For each reader coverage and miss rate: generate the city (or load ``--roads``), place readers,
simulate riders (with a few thefts and cloned tags) and every read, correct read times by each
reader's surveyed clock offset (what the gateway does), fold the reads into passages exactly as
the engine does, and reconstruct every tag's route three ways on the *same passages*:

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
import itertools
import time
from collections import Counter
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
from simulators.fleet import plan_day
from simulators.readers import SimReader, place_readers
from simulators.rf import simulate_reads
from simulators.riders import generate_population, trajectories
from tagtrail.bench.engine_hmm import HmmMatcher
from tagtrail.bench.engine_oracle import RouteChoiceOracle
from track_engine.miss_rates import learn_miss_rates, tracks_from_passages
from track_engine.passages import fold_passages
from track_engine.paths import NegativeEvidenceChooser, score, shortest_path
from track_engine.roads import NodeDistances, ReaderPaths, RoadGraph, precompute_reader_paths
from track_engine.routes import Route, build_route
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

    def __post_init__(self) -> None:
        unknown = sorted(set(self.reader_rates) - set(READER_RATES))
        if unknown or not self.reader_rates:
            raise ValueError(f"reader rates must be among {READER_RATES}, got {unknown or '()'}")
        if not 0.0 <= self.deaf_readers <= 1.0:
            raise ValueError("deaf_readers must be a fraction within [0, 1]")


@dataclass(frozen=True)
class Truth:
    """Ground truth prepared for scoring."""

    heard: pd.DataFrame
    spans: pd.DataFrame
    edges: pd.DataFrame
    positions: pd.DataFrame
    cloned_tags: frozenset[str]
    # Cloned tags whose two bikes ride at the same time at least once (the rest: the copy
    # rides only while its original is parked).
    cloned_riding_together: frozenset[str] = frozenset()
    # Cloned tags heard on two bikes (a copy no reader heard cannot be told from none).
    cloned_heard_both: frozenset[str] = frozenset()


def run_accuracy(options: AccuracyOptions) -> list[dict[str, Any]]:
    """Every (method, coverage, miss rate) result as a JSON-ready dict."""
    city, population, traj, graph = simulate_city(options)
    hmm = HmmMatcher(graph) if options.hmm else None
    oracle = route_oracle(city, options) if options.route_oracle else None
    # Every scenario's readers are a prefix of the largest coverage's (one placement order):
    # their road distances are computed once, from each node the first time it is needed.
    sites = place_readers(city, seed=options.seed, fraction=max(options.coverages))
    distances = NodeDistances(graph, [r.node for r in sites])
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
                record |= _clone_kinds(routes, sc.truth)
                record |= reader_spacing(sc.readers)
                record["reader_rates"] = rates
                record["deaf_readers"] = options.deaf_readers
                record["rate_error_mean"] = (
                    _rate_error(reader_paths, sc.true_rates) if reader_paths else None
                )
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


def estimate_passages(reads: pd.DataFrame, readers: list[SimReader]) -> pd.DataFrame:
    """Clock-corrected reads folded into passages, as the engine does, with the direction of
    travel at two-antenna readers (from the surveyed antenna headings)."""
    offset_us = {r.reader_id: round(r.clock_offset_s * _US_PER_S) for r in readers}
    corrected = reads.assign(
        read_at_us=reads["read_at_us"].to_numpy(np.int64)
        - reads["reader_id"].map(offset_us).to_numpy(np.int64),
        tag_id=reads["tag_id"].astype(str),
        reader_id=reads["reader_id"].astype(str),
    )
    # What the registry knows of a two-antenna reader: the heading each antenna faces.
    facing = {
        r.reader_id: {k + 1: f"{h:g}" for k, h in enumerate(r.antenna_heading_deg)}
        for r in readers
        if r.antennas >= 2
    }
    return fold_passages(
        corrected[["tag_id", "reader_id", "antenna", "rssi_dbm", "read_at_us"]],
        antenna_direction=facing,
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
    reader_nodes = {r.reader_id: r.node for r in readers}
    xy = {r.reader_id: (r.x_m, r.y_m) for r in readers}
    routes: dict[str, Route] = {}
    for tag, ps in passages.groupby("tag_id", sort=True):
        if method == "tagtrail":
            route = build_route(ps, graph, reader_nodes, reader_paths)
        elif method == "route_choice_oracle":
            assert oracle is not None
            route = build_route(ps, graph, reader_nodes, reader_paths, path_chooser=oracle)
        elif method == "shortest_path":
            route = build_route(
                ps, graph, reader_nodes, reader_paths, path_chooser=shortest_path,
                drop_outliers=False,
            )  # fmt: skip
        else:
            assert hmm is not None
            ordered = ps.sort_values("closest_at_us", kind="mergesort")
            chooser = hmm.chooser(
                [xy[r] for r in ordered["reader_id"]], ordered["closest_at_us"].tolist()
            )
            route = build_route(
                ps, graph, reader_nodes, reader_paths, path_chooser=chooser, drop_outliers=False
            )
        routes[str(tag)] = route
    return routes


def prepare_truth(
    city: City,
    readers: list[SimReader],
    population: Any,
    traj: pd.DataFrame,
    true_passages: pd.DataFrame,
) -> Truth:
    """Observable spans, true edges and per-second positions of every scorable trip."""
    tag_of = pd.Series({b.bike_id: b.tag_id for b in population.bikes})
    counts = tag_of.value_counts()
    cloned = frozenset(str(t) for t in counts[counts > 1].index)
    node_of = {r.reader_id: r.node for r in readers}
    heard = true_passages[true_passages["heard"].astype(bool) & (true_passages["reads"] > 0)]
    heard = heard.assign(
        tag_id=heard["tag_id"].astype(str),
        reader_id=heard["reader_id"].astype(str),
        closest_at_us=heard["closest_at_us"].astype(np.int64),
        bike_id=heard["bike_id"].astype(np.int64),
    )
    trips = population.trips[["trip_id", "bike_id", "start_us", "end_us"]].astype(np.int64)
    on_trip = pd.merge_asof(
        heard.sort_values("closest_at_us"),
        trips.sort_values("start_us"),
        left_on="closest_at_us",
        right_on="start_us",
        by="bike_id",
        direction="backward",
    ).dropna(subset=["trip_id"])
    on_trip = on_trip[on_trip["closest_at_us"] <= on_trip["end_us"] + 5 * _US_PER_S]
    on_trip = on_trip.assign(
        trip_id=on_trip["trip_id"].astype(np.int64),
        node=on_trip["reader_id"].map(node_of).astype(np.int64),
    )
    visits = population.visits[["trip_id", "seq", "node", "arrive_us"]].astype(np.int64)
    located = pd.merge_asof(
        on_trip.sort_values("closest_at_us"),
        visits.sort_values("arrive_us"),
        left_on="closest_at_us",
        right_on="arrive_us",
        by=["trip_id", "node"],
        direction="nearest",
        tolerance=60 * _US_PER_S,
    ).dropna(subset=["seq"])
    span = located.groupby("trip_id").agg(
        seq_lo=("seq", "min"),
        seq_hi=("seq", "max"),
        start_us=("closest_at_us", "min"),
        end_us=("closest_at_us", "max"),
        bike_id=("bike_id", "first"),
    )
    span = span[span["seq_hi"] > span["seq_lo"]].reset_index()
    span["tag_id"] = span["bike_id"].map(tag_of).astype(str)
    span = span[~span["tag_id"].isin(cloned)].reset_index(drop=True)
    whole = trips.rename(columns={"start_us": "trip_start_us", "end_us": "trip_end_us"})
    span = span.merge(whole[["trip_id", "trip_start_us", "trip_end_us"]], on="trip_id")

    v = visits.sort_values(["trip_id", "seq"])
    v = v.assign(src=v.groupby("trip_id")["node"].shift(1))
    v = v.merge(span[["trip_id", "seq_lo", "seq_hi"]], on="trip_id")
    inside = (v["seq"] > v["seq_lo"]) & (v["seq"] <= v["seq_hi"]) & v["src"].notna()
    edges = v.loc[inside, ["trip_id", "src", "node"]].rename(columns={"node": "dst"})
    edges = edges.astype({"src": np.int64, "dst": np.int64})

    t = traj[["trip_id", "t_us", "x_m", "y_m"]].astype({"trip_id": np.int64, "t_us": np.int64})
    t = t[t["t_us"] % _US_PER_S == 0].merge(span[["trip_id", "tag_id", "start_us", "end_us"]])
    positions = t[(t["t_us"] >= t["start_us"]) & (t["t_us"] <= t["end_us"])]
    positions = positions[["trip_id", "tag_id", "t_us", "x_m", "y_m"]].reset_index(drop=True)
    return Truth(
        heard=heard[["tag_id", "reader_id", "closest_at_us"]],
        spans=span[
            [
                "trip_id",
                "tag_id",
                "start_us",
                "end_us",
                "trip_start_us",
                "trip_end_us",
                "seq_lo",
                "seq_hi",
            ]
        ].astype({"seq_lo": np.int64, "seq_hi": np.int64}),
        edges=edges.reset_index(drop=True),
        positions=positions,
        cloned_tags=cloned,
        cloned_riding_together=_riding_together(population, cloned),
        cloned_heard_both=frozenset(
            str(t) for t, n in heard.groupby("tag_id")["bike_id"].nunique().items() if n > 1
        )
        & cloned,
    )


def _riding_together(population: Any, cloned: frozenset[str]) -> frozenset[str]:
    """Cloned tags two of whose bikes are on a trip at the same moment at least once."""
    trips = population.trips
    out = set()
    for tag in cloned:
        bikes = [b.bike_id for b in population.bikes if b.tag_id == tag]
        mine = trips[trips["bike_id"].isin(bikes)]
        spans = sorted(zip(mine["start_us"], mine["end_us"], mine["bike_id"], strict=True))
        if any(a[2] != b[2] and b[0] < a[1] for i, a in enumerate(spans) for b in spans[i + 1 :]):
            out.add(tag)
    return frozenset(out)


def _clone_kinds(routes: dict[str, Route], truth: Truth) -> dict[str, int]:
    """Clone hits split by whether the copy rode at the same time as its original."""
    together = truth.cloned_riding_together
    parked = truth.cloned_tags - together
    flagged = {t for t in truth.cloned_tags if t in routes and routes[t].clone_suspected}
    both = truth.cloned_heard_both
    return {
        "clone_tags_heard_both": len(both),
        "clone_hits_heard_both": len(flagged & both),
        "clone_tags_together": len(together),
        "clone_hits_together": len(flagged & together),
        "clone_tags_parked": len(parked),
        "clone_hits_parked": len(flagged & parked),
    }


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


# --- Diagnosis: where the recall of the tagtrail method is lost ---------------------------------

# Causes a lost true edge is charged to, in the order they are tested (see ``diagnose``).
LOSS_CAUSES = (
    "trip start/end inside the span",
    "between segments (dropped or misplaced passage)",
    "passage order / passage not on the trip",
    "segment not drawn (impossible / no path)",
    "true path not a candidate",
    "wrong choice: true path crosses a missed reader",
    "wrong choice: no reader between (near-equal ways)",
)
# "Similar time": an alternative within this many meters of the true path's length (10 s at
# the population's 4.5 m/s).
_SIMILAR_M = 45.0
_LOCATE_S = 30.0


def diagnose(
    sc: Scenario,
    population: Any,
    graph: RoadGraph,
    routes: dict[str, Route],
    chooser: NegativeEvidenceChooser,
) -> pd.DataFrame:
    """One row per scored trip's route segment (and per uncovered stretch of its span).

    Each segment of a tag's route that belongs to a scored trip is located on the trip's true
    node sequence (its passages' readers at their times), and its true sub-path compared with
    the drawn path. Columns: trip_id, cause (a ``LOSS_CAUSES`` entry, or ``"exact"`` /
    ``"drawn true"``), true_m (true length of the stretch), lost_m (true length not drawn),
    false_m (drawn length not true), similar (candidates within ``_SIMILAR_M`` of the true
    length, the true one included), dscore (segment log-likelihood of the true path minus the
    chosen one, direction and own speed aside; NaN unless both are candidates), stop (the
    rider stopped inside the segment), oneway (the true path uses a one-way street the chosen
    path does not), missed (readers on the true path that missed the tag).
    """
    length = {
        (int(s), int(d)): float(m)
        for s, d, m in zip(graph.edge_src, graph.edge_dst, graph.edge_length_m, strict=True)
    }
    oneway = _oneway_edges(graph)
    visits = population.visits
    spans = sc.truth.spans
    cands = chooser.candidates_for(sc.reader_paths)
    rows: list[dict[str, Any]] = []
    trip: Any
    for trip in spans.itertuples(index=False):
        route = routes.get(str(trip.tag_id))
        v = visits[visits["trip_id"] == trip.trip_id].sort_values("seq")
        seq_lo, seq_hi = int(trip.seq_lo), int(trip.seq_hi)
        nodes = v["node"].to_numpy(np.int64)
        arrive = v["arrive_us"].to_numpy(np.int64)
        depart = v["depart_us"].to_numpy(np.int64)
        covered = np.zeros(len(nodes), bool)  # covered[k]: true edge nodes[k-1] -> nodes[k]
        lo_t = int(trip.trip_start_us) - 5 * _US_PER_S
        hi_t = int(trip.trip_end_us) + 5 * _US_PER_S
        segments = [] if route is None else [
            s for s in route.segments if lo_t <= s.start_us and s.end_us <= hi_t
        ]  # fmt: skip
        for seg in segments:
            a = _locate(nodes, arrive, depart, sc.reader_paths.reader_node[seg.from_reader],
                        seg.start_us)  # fmt: skip
            b = _locate(nodes, arrive, depart, sc.reader_paths.reader_node[seg.to_reader],
                        seg.end_us)  # fmt: skip
            drawn = list(seg.nodes) if seg.drawn else []
            drawn_m = _path_m(drawn, length)
            if a is None or b is None or b < a:
                rows.append(_row(trip, LOSS_CAUSES[2], 0.0, 0.0, drawn_m))
                continue
            true_nodes = [int(n) for n in nodes[a : b + 1]]
            true_m = _path_m(true_nodes, length)
            hit = _hit_m(true_nodes, drawn, length)
            covered[a + 1 : b + 1] = True
            row = _row(trip, "exact", true_m, true_m - hit, drawn_m - hit)
            row["stop"] = bool(np.any(depart[a + 1 : b] > arrive[a + 1 : b]))
            row["missed"] = sum(1 for n in true_nodes[1:-1] if cands.node_nats[n] > 0.0)
            rows.append(row)
            if row["lost_m"] <= 1e-6 and row["false_m"] <= 1e-6:
                continue
            if not seg.drawn or len(drawn) < 2:
                row["cause"] = LOSS_CAUSES[3]
                continue
            row["oneway"] = any(
                e in oneway and e not in set(itertools.pairwise(drawn))
                for e in itertools.pairwise(true_nodes)
            )
            options = cands.candidates(seg.from_reader, seg.to_reader)
            row["similar"] = sum(1 for c in options if abs(c.length_m - true_m) <= _SIMILAR_M)
            by_nodes = {c.nodes: c for c in options}
            true_c = by_nodes.get(tuple(true_nodes))
            if true_c is None:
                row["cause"] = LOSS_CAUSES[4]
                continue
            chosen_c = by_nodes.get(tuple(drawn))
            if chosen_c is not None:
                dt = (seg.end_us - seg.start_us) / _US_PER_S
                shortest = options[0].length_m
                row["dscore"] = score(
                    true_c, shortest_m=shortest, dt_s=dt, model=chooser.model
                ) - score(chosen_c, shortest_m=shortest, dt_s=dt, model=chooser.model)
            row["cause"] = LOSS_CAUSES[5] if row["missed"] else LOSS_CAUSES[6]
        # True edges of the span no segment accounts for.
        first = np.flatnonzero(covered[seq_lo + 1 : seq_hi + 1])
        for k in range(seq_lo + 1, seq_hi + 1):
            if covered[k]:
                continue
            e_m = length[(int(nodes[k - 1]), int(nodes[k]))]
            inside = first.size and first[0] + seq_lo + 1 < k < first[-1] + seq_lo + 1
            cause = LOSS_CAUSES[1] if inside else LOSS_CAUSES[0]
            rows.append(_row(trip, cause, e_m, e_m, 0.0))
    out = pd.DataFrame(rows)
    for col, default in (("similar", np.nan), ("dscore", np.nan), ("stop", False),
                         ("oneway", False), ("missed", 0)):  # fmt: skip
        if col not in out:
            out[col] = default
    return out


def diagnosis_table(diag: pd.DataFrame, recall: float) -> list[dict[str, Any]]:
    """Lost recall per cause (share of the true length), with the segments' attributes."""
    true_m = float(diag["true_m"].sum())
    out: list[dict[str, Any]] = []
    for cause in LOSS_CAUSES:
        d = diag[diag["cause"] == cause]
        out.append({
            "cause": cause,
            "rows": len(d),
            "lost_m": round(float(d["lost_m"].sum()), 0),
            "recall_lost": round(float(d["lost_m"].sum()) / true_m, 4) if true_m else None,
            "precision_false_m": round(float(d["false_m"].sum()), 0),
            "median_similar": None if d["similar"].isna().all()
            else float(d["similar"].median()),
            "with_stop": int(d["stop"].sum()),
            "oneway": int(d["oneway"].sum()),
            "evidence_prefers_wrong": int((d["dscore"] < 0).sum()),
        })  # fmt: skip
    exact = diag[diag["cause"] == "exact"]
    out.append({
        "cause": "exact (chosen path = true path)",
        "rows": len(exact),
        "lost_m": 0.0,
        "recall_lost": 0.0,
        "true_share": round(float(exact["true_m"].sum()) / true_m, 4) if true_m else None,
        "recall_scored": recall,
        "recall_attributed": round(1.0 - float(diag["lost_m"].sum()) / true_m, 4)
        if true_m else None,
    })  # fmt: skip
    return out


def _locate(
    nodes: np.ndarray, arrive: np.ndarray, depart: np.ndarray, node: int, at_us: int
) -> int | None:
    """The visit index of ``node`` nearest in time to ``at_us`` (None beyond ``_LOCATE_S``)."""
    idx = np.flatnonzero(nodes == node)
    if idx.size == 0:
        return None
    off = np.maximum(np.maximum(arrive[idx] - at_us, at_us - depart[idx]), 0)
    k = int(np.argmin(off))
    return int(idx[k]) if off[k] <= _LOCATE_S * _US_PER_S else None


def _path_m(nodes: list[int], length: dict[tuple[int, int], float]) -> float:
    return sum(length[(a, b)] for a, b in itertools.pairwise(nodes))


def _hit_m(true_nodes: list[int], drawn: list[int], length: dict[tuple[int, int], float]) -> float:
    """Length of the directed edges both paths use, counted with multiplicity."""
    t = Counter(itertools.pairwise(true_nodes))
    d = Counter(itertools.pairwise(drawn))
    return sum(length[e] * min(n, d[e]) for e, n in t.items() if e in d)


def _oneway_edges(graph: RoadGraph) -> set[tuple[int, int]]:
    pairs = set(zip(graph.edge_src.tolist(), graph.edge_dst.tolist(), strict=True))
    return {(a, b) for a, b in pairs if (b, a) not in pairs}


def _row(trip: Any, cause: str, true_m: float, lost_m: float, false_m: float) -> dict[str, Any]:
    return {"trip_id": int(trip.trip_id), "cause": cause, "true_m": true_m,
            "lost_m": lost_m, "false_m": false_m}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """``python -m tagtrail.bench.engine_accuracy --diagnose``: the recall-loss breakdown."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--diagnose", action="store_true", required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--bikes", type=int, default=200)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--coverage", type=float, default=0.5)
    parser.add_argument("--miss-rate", type=float, default=0.3)
    args = parser.parse_args(argv)
    options = AccuracyOptions(seed=args.seed, bikes=args.bikes, hours=args.hours, hmm=False)
    city, population, traj, graph = simulate_city(options)
    sc = build_scenario(city, population, traj, graph, args.seed, args.coverage, args.miss_rate)
    chooser = NegativeEvidenceChooser()
    routes = reconstruct("tagtrail", sc.passages, graph, sc.reader_paths, sc.readers, None)
    scores = score_scenario(routes, sc, graph)
    diag = diagnose(sc, population, graph, routes, chooser)
    table = diagnosis_table(diag, round(scores.recall, 4))
    print(
        json.dumps(
            {
                "seed": args.seed,
                "coverage": args.coverage,
                "miss_rate": args.miss_rate,
                "breakdown": table,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
