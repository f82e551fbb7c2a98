"""``tagtrail bench accuracy --days N --habits --prior …``: what learned way priors buy.

Riders with habits (:mod:`simulators.habits`) ride the same ways day after day, and all of them
share route preferences. The engine learns that from stored passages
(:mod:`track_engine.way_prior`); this benchmark measures it. For ``days`` working days from
the accuracy benchmark's first morning (weekends skipped), the same fleet (one seed: the same
riders, homes and habits) rides the same morning window each day. The first ``days - 1``
mornings are history: their reads go through the same readers and the engine's fold, and the
priors are learned from those passages only. The last morning (with the thefts and clones)
is scored exactly as ``tagtrail bench accuracy`` scores it
(:mod:`tagtrail.bench.engine_accuracy`), once per prior:

* ``none``     — the default chooser;
* ``fleet``    — the way prior of every tag's history rides;
* ``personal`` — per tag, the way prior of that tag's own history rides;
* ``fleet+personal`` — the fleet's rides plus ``PERSONAL_SHARE`` times the tag's own (what the
  API's route lookups use, :mod:`api.tracking.service`).

The personal prior is the product's (:func:`track_engine.way_prior.learn_personal_prior`:
bounded to tags with enough rides in the window), and as in the product a stolen
bike's stretches from its theft on use no personal prior (``PriorOptions.theft_cut``; off:
the owner's habits are used after the theft too, to measure what that would do).

Each row also scores the stolen bikes' trips alone (``stolen_recall``, ``stolen_precision``,
``stolen_trips``): after a theft the bike no longer follows its owner's habits.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from citymap.network_files import load_roads
from simulators.city import generate_city
from simulators.fleet import LOCAL_UTC_OFFSET_H, to_us
from simulators.habits import Habits
from simulators.readers import SimReader
from simulators.rf import simulate_reads
from simulators.riders import generate_population, trajectories
from tagtrail.bench.engine_intercept import first_steps, score_intercept
from tagtrail.bench.engine_replay import estimate_passages
from tagtrail.bench.engine_scenario import START, AccuracyOptions, Scenario, build_scenario
from tagtrail.bench.engine_scores import score_record, score_scenario
from track_engine.db.personal_priors import encode_ways
from track_engine.paths import NegativeEvidenceChooser
from track_engine.roads import RoadGraph
from track_engine.route_result import Route
from track_engine.routes import build_route
from track_engine.way_prior import (
    PERSONAL_SHARE,
    Ride,
    WayPrior,
    learn_personal_prior,
    learn_way_prior,
    rides_of,
)

PRIORS = ("none", "fleet", "personal", "fleet+personal")
_LOCAL_OFFSET = timedelta(hours=LOCAL_UTC_OFFSET_H)  # the simulator's local time


@dataclasses.dataclass(frozen=True)
class PriorOptions:
    """The multi-day run: ``days`` mornings (the last scored), with ``habits`` or without."""

    days: int = 5
    habits: bool = True
    priors: tuple[str, ...] = ("none", "fleet")
    route_variants: int = 4  # the simulator's city-wide route variants (its default: 4)
    theft_cut: bool = True  # as the product: no personal prior from a bike's theft on
    weight: float = 1.0  # the way priors' weight and pseudo-count (track_engine.way_prior)
    pseudo: float = 1.0
    personal_share: float = PERSONAL_SHARE

    def __post_init__(self) -> None:
        unknown = sorted(set(self.priors) - set(PRIORS))
        if unknown or not self.priors:
            raise ValueError(f"priors must be among {PRIORS}, got {unknown or '()'}")
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if self.days < 2 and set(self.priors) - {"none"}:
            raise ValueError("a learned prior needs --days 2 or more (history before the day)")
        if not self.habits and set(self.priors) - {"none"}:
            # One seed without habits replays the very same trips every morning: the history
            # would hold the scored morning's own rides.
            raise ValueError("a learned prior needs --habits (without, the mornings repeat)")


def run_priors(options: AccuracyOptions, multi: PriorOptions) -> list[dict[str, Any]]:
    """Every (coverage, miss rate, prior) row of the last morning, JSON-ready."""
    city = (
        load_roads(options.roads, junction_tolerance_m=options.junction_tolerance_m)
        if options.roads
        else generate_city(seed=options.seed, size_m=options.size_m)
    )
    graph = RoadGraph.from_arrays(
        node_lonlat=city.node_lonlat, node_xy_m=city.node_xy_m, edge_src=city.edge_src,
        edge_dst=city.edge_dst, edge_length_m=city.edge_length_m,
    )  # fmt: skip
    habits = Habits() if multi.habits else None
    *before, last = working_mornings(multi.days)
    population = _population(city, options, last, habits, multi.route_variants, thefts=True)
    traj = trajectories(city, population, seed=options.seed)
    history = [
        trajectories(city, _population(city, options, day, habits, multi.route_variants), seed=d)
        for d, day in enumerate(before)
    ]
    results: list[dict[str, Any]] = []
    for coverage in options.coverages:
        for miss in options.miss_rates:
            sc = build_scenario(city, population, traj, graph, options.seed, coverage, miss)
            rides, past = _history_rides(city, sc.readers, history, options.seed)
            intercept = _intercept(sc, population, past, options)
            fleet_rides = [r for tag_rides in rides.values() for r in tag_rides]
            started = time.perf_counter()  # the learning alone, not the history's simulation
            fleet = learn_way_prior(
                fleet_rides, sc.reader_paths.miss_rate_of, weight=multi.weight,
                pseudo=multi.pseudo,
            )  # fmt: skip
            learn_s = time.perf_counter() - started
            own = {
                tag: learn_personal_prior(tag_rides, sc.reader_paths.miss_rate_of)
                for tag, tag_rides in rides.items()
            }
            own = {tag: p for tag, p in own.items() if p}
            stolen_us = _stolen_at(population) if multi.theft_cut else {}
            for prior in multi.priors:
                routes = _routes(sc, graph, prior, fleet, own, stolen_us, multi)
                record = score_record("tagtrail", coverage, miss, score_scenario(routes, sc, graph))
                record |= _stolen(routes, sc, graph, population)
                record |= {
                    "prior": prior, "days": multi.days, "habits": multi.habits,
                    "bikes": options.bikes, "hours": options.hours,
                    "route_variants": multi.route_variants,
                    "history_rides": len(fleet_rides),
                    "prior_pairs": len(fleet.rides),
                    "learn_seconds": round(learn_s, 2) if prior != "none" else None,
                    "theft_cut": multi.theft_cut, "prior_weight": multi.weight,
                    "prior_pseudo": multi.pseudo, "personal_share": multi.personal_share,
                    **_personal_size(own),
                }  # fmt: skip
                results.append(record | intercept)
    return results


def working_mornings(days: int) -> list[datetime]:
    """The first ``days`` working-day mornings (Monday to Friday, local) from START."""
    out: list[datetime] = []
    day = START
    while len(out) < days:
        if (day + _LOCAL_OFFSET).weekday() < 5:
            out.append(day)
        day += timedelta(days=1)
    return out


def _population(
    city: Any,
    options: AccuracyOptions,
    start: Any,
    habits: Habits | None,
    route_variants: int,
    *,
    thefts: bool = False,
) -> Any:
    """One morning of the fleet. One seed for every day: the same bikes, homes and habits
    (habit draws are keyed by bike and day, :mod:`simulators.habits`)."""
    return generate_population(
        city, seed=options.seed, bikes=options.bikes, start=start, hours=options.hours,
        thefts=options.thefts if thefts else 0, clones=options.clones if thefts else 0,
        habits=habits, route_variants=route_variants,
    )  # fmt: skip


def _history_rides(
    city: Any, readers: list[SimReader], history: list[pd.DataFrame], seed: int
) -> tuple[dict[str, list[Ride]], pd.DataFrame]:
    """Every tag's rides over the history mornings, as the engine would have stored them, and
    those mornings' stored passages."""
    out: dict[str, list[Ride]] = {}
    stored: list[pd.DataFrame] = []
    for d, traj in enumerate(history):
        reads, _ = simulate_reads(city, readers, traj, seed=seed + 500 + d)
        passages = estimate_passages(reads, readers).sort_values(
            ["tag_id", "closest_at_us", "reader_id"], kind="mergesort"
        )
        stored.append(passages)
        for tag, ps in passages.groupby("tag_id", sort=False):
            found = rides_of(ps["reader_id"].astype(str).tolist(), ps["closest_at_us"].tolist())
            out.setdefault(str(tag), []).extend(found)
    return out, pd.concat(stored, ignore_index=True) if stored else pd.DataFrame()


def _intercept(
    sc: Scenario, population: Any, past: pd.DataFrame, options: AccuracyOptions
) -> dict[str, Any]:
    """The intercept columns of the scored morning, the history mornings as the history
    (with ``--where-now``; :mod:`tagtrail.bench.engine_intercept`); the same for every prior."""
    if not options.where_now:
        return {}
    heard = sc.truth.heard
    return score_intercept(
        sc.reader_paths, sc.passages, heard, skip_tags=sc.truth.cloned_tags, seed=options.seed,
        history=past if not past.empty else None, true_passages=sc.true_passages,
        first_steps=first_steps(population, heard, sc.reader_paths.reader_node),
    )  # fmt: skip


def _routes(
    sc: Scenario,
    graph: RoadGraph,
    prior: str,
    fleet: WayPrior,
    own: dict[str, WayPrior],
    stolen_us: dict[str, int],
    multi: PriorOptions,
) -> dict[str, Route]:
    """Every tag's route with the chooser of ``prior``; a stolen bike's stretches from its
    theft on without its own prior (``stolen_us``, by tag; empty: no cut)."""
    reader_nodes = {r.reader_id: r.node for r in sc.readers}
    default = NegativeEvidenceChooser(prior=fleet if prior == "fleet" else None)
    out: dict[str, Route] = {}
    for tag, ps in sc.passages.groupby("tag_id", sort=True):
        chooser = default
        mine = own.get(str(tag))
        if prior in ("personal", "fleet+personal") and mine is not None:
            mine = WayPrior(mine.rides, weight=multi.weight, pseudo=multi.pseudo)
            after = WayPrior() if prior == "personal" else fleet
            chooser = NegativeEvidenceChooser(
                prior=mine if prior == "personal" else fleet.combined(mine, multi.personal_share),
                prior_until_us=stolen_us.get(str(tag)), prior_after=after,
            )  # fmt: skip
        elif prior == "fleet+personal":
            chooser = NegativeEvidenceChooser(prior=fleet)
        out[str(tag)] = build_route(ps, graph, reader_nodes, sc.reader_paths, path_chooser=chooser)
    return out


def _stolen_at(population: Any) -> dict[str, int]:
    """When each stolen bike's tag was stolen (UTC µs), by tag."""
    tags = {b.bike_id: b.tag_id for b in population.bikes}
    return {str(tags[t.bike_id]): to_us(t.stolen_at) for t in population.thefts}


def _personal_size(own: dict[str, WayPrior]) -> dict[str, Any]:
    """How many tags keep a personal prior, and its stored size (migration 0160's JSON)."""
    if not own:
        return {"personal_tags": 0, "personal_pairs_per_tag": None, "personal_bytes_per_tag": None}
    sizes = [len(encode_ways(p)) for p in own.values()]
    pairs = sum(len(p.rides) for p in own.values())
    return {"personal_tags": len(own), "personal_pairs_per_tag": round(pairs / len(own), 1),
            "personal_bytes_per_tag": round(sum(sizes) / len(own))}  # fmt: skip


def _stolen(
    routes: dict[str, Route], sc: Scenario, graph: RoadGraph, population: Any
) -> dict[str, Any]:
    """Recall and precision over the stolen bikes' trips after the theft alone."""
    trips = population.trips
    stolen = set(trips.loc[trips["kind"] == "theft", "trip_id"].tolist())
    t = sc.truth
    spans = t.spans[t.spans["trip_id"].isin(stolen)]
    if spans.empty:
        return {"stolen_recall": None, "stolen_precision": None, "stolen_trips": 0}
    truth = dataclasses.replace(
        t,
        spans=spans,
        edges=t.edges[t.edges["trip_id"].isin(stolen)],
        positions=t.positions[t.positions["trip_id"].isin(stolen)],
    )
    scores = score_scenario(routes, dataclasses.replace(sc, truth=truth), graph)
    rec = score_record("tagtrail", sc.coverage, sc.miss_rate, scores)
    return {"stolen_recall": rec["recall"], "stolen_precision": rec["precision"],
            "stolen_trips": rec["trips"]}  # fmt: skip
