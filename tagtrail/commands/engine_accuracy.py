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
  sightings the shortest path is used, so it is never scored on less than the baseline draws.

Scoring is :func:`track_engine.scoring.score_routes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulators.city import City, generate_city
from simulators.network_files import load_roads
from simulators.readers import SimReader, place_readers
from simulators.rf import simulate_reads
from simulators.riders import generate_population, trajectories
from tagtrail.commands.engine_hmm import HmmMatcher
from track_engine.passages import fold_passages
from track_engine.paths import shortest_path
from track_engine.roads import ReaderPaths, RoadGraph, precompute_reader_paths
from track_engine.routes import Route, build_route
from track_engine.scoring import Scores, score_routes

METHODS = ("tagtrail", "shortest_path", "hmm")
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
    coverages: tuple[float, ...] = (0.25, 0.5, 1.0)
    miss_rates: tuple[float, ...] = (0.1, 0.3)
    clones: int = 4
    thefts: int = 4
    hmm: bool = True


@dataclass(frozen=True)
class Truth:
    """Ground truth prepared for scoring."""

    heard: pd.DataFrame
    spans: pd.DataFrame
    edges: pd.DataFrame
    positions: pd.DataFrame
    cloned_tags: frozenset[str]


def run_accuracy(options: AccuracyOptions) -> list[dict[str, Any]]:
    """Every (method, coverage, miss rate) result as a JSON-ready dict."""
    city = load_roads(options.roads) if options.roads else generate_city(
        seed=options.seed, size_m=options.size_m
    )  # fmt: skip
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
    hmm = HmmMatcher(graph) if options.hmm else None
    results: list[dict[str, Any]] = []
    for coverage in options.coverages:
        for miss in options.miss_rates:
            readers = place_readers(city, seed=options.seed, fraction=coverage, miss_rate=miss)
            reads, true_passages = simulate_reads(city, readers, traj, seed=options.seed)
            truth = prepare_truth(city, readers, population, traj, true_passages)
            passages = estimate_passages(reads, readers)
            reader_paths = precompute_reader_paths(
                graph,
                {r.reader_id: r.node for r in readers},
                miss_rate={r.reader_id: r.miss_rate for r in readers},
            )
            for method in METHODS:
                if method == "hmm" and hmm is None:
                    continue
                routes = reconstruct(method, passages, graph, reader_paths, readers, hmm)
                scores = score_routes(
                    routes,
                    graph=graph,
                    estimated_passages=passages,
                    truth_passages=truth.heard,
                    spans=truth.spans,
                    true_edges=truth.edges,
                    true_positions=truth.positions,
                    cloned_tags=truth.cloned_tags,
                )
                results.append(_record(method, coverage, miss, scores))
    return results


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
) -> dict[str, Route]:
    """Every tag's route by one method."""
    reader_nodes = {r.reader_id: r.node for r in readers}
    xy = {r.reader_id: (r.x_m, r.y_m) for r in readers}
    routes: dict[str, Route] = {}
    for tag, ps in passages.groupby("tag_id", sort=True):
        if method == "tagtrail":
            route = build_route(ps, graph, reader_nodes, reader_paths)
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
        spans=span[["trip_id", "tag_id", "start_us", "end_us", "trip_start_us", "trip_end_us"]],
        edges=edges.reset_index(drop=True),
        positions=positions,
        cloned_tags=cloned,
    )


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
