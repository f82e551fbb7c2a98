"""One simulation run, end to end: roads, readers, riders and thefts, reads, ground truth.

The fleet, trip intentions and theft dice are planned for the whole city at once
(:func:`simulators.day_plan.plan_day`); paths, timing, positions and reads are then computed per
chunk of ``chunk_bikes`` bikes (:mod:`simulators.chunks`) from draws keyed by bike, so the
output does not depend on the chunk size. :func:`run` keeps everything in memory (tests,
demos, live emission); :mod:`simulators.run_files` streams a large run to files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pandas as pd

from citymap.network import City
from citymap.network_files import load_roads
from citymap.reader_files import read_readers
from simulators.bike_days import router_for
from simulators.chunks import ChunkResult, World, simulate_chunk
from simulators.city import generate_city
from simulators.day_plan import plan_day
from simulators.deployments import sim_readers
from simulators.fleet import LOCAL_UTC_OFFSET_H, Population
from simulators.habits import Habits
from simulators.readers import SimReader, outage_schedule, place_readers, reader_count_fraction
from simulators.rf import RfParams

DEFAULT_START = datetime(2025, 3, 2, 16, 0, tzinfo=UTC)  # 00:00 local time (UTC+8)
DEFAULT_MIX = {"impinj-iot": 0.4, "zebra-iotc": 0.2, "r2000": 0.2, "tagtrail-active": 0.2}


@dataclass(frozen=True)
class SimOptions:
    """Everything that decides a run; the same options always give the same output."""

    seed: int = 1
    bikes: int = 300
    hours: float = 2.0
    size_m: float = 3000.0
    readers: int | None = None  # a reader count; None: ``coverage`` of the junctions
    coverage: float = 0.3
    roads: str | None = None  # .npz network file or .osm / .osm.pbf
    readers_file: str | None = None  # deployment CSV / GeoJSON instead of placed readers
    miss_rate: float | None = None
    protocol_mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    active_fraction: float = 0.2
    thefts: int = 2
    clones: int = 1
    start: datetime = DEFAULT_START
    outages_per_reader_day: float = 0.3
    chunk_bikes: int = 2000  # memory per chunk only: the output does not depend on it
    rf: RfParams = field(default_factory=RfParams)
    # Riders with habits (personal routes, shared preferences, working days and weekends);
    # None keeps every existing seed's output.
    habits: Habits | None = None
    days: int | None = None  # N consecutive days from ``start`` instead of ``hours``

    @property
    def window_hours(self) -> float:
        """Length of the simulated window: ``days`` whole days, or ``hours``."""
        return 24.0 * self.days if self.days is not None else self.hours


@dataclass(frozen=True, eq=False)
class SimResult:
    """A finished run: the world, the reads, and the truth to score against."""

    options: SimOptions
    city: City
    readers: list[SimReader]
    population: Population
    outages: pd.DataFrame
    reads: pd.DataFrame
    passages: pd.DataFrame
    positions: int  # ground-truth position rows produced


Progress = Callable[[str, float], None]


def local_midnight(day: str) -> datetime:
    """00:00 local time (UTC+8) of ``day`` (YYYY-MM-DD) as an aware UTC datetime."""
    try:
        midnight = datetime.combine(date.fromisoformat(day), time(), tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"not a YYYY-MM-DD day: {day!r}") from exc
    return midnight - timedelta(hours=LOCAL_UTC_OFFSET_H)


def build_city(options: SimOptions) -> City:
    """The run's road network: imported (``roads``) or generated from the seed."""
    if options.roads:
        return load_roads(options.roads)
    return generate_city(seed=options.seed, size_m=options.size_m)


def build_readers(options: SimOptions, city: City) -> list[SimReader]:
    """The run's readers: from a deployment file, a count, or a coverage fraction."""
    if options.readers_file:
        return sim_readers(read_readers(options.readers_file), city)
    fraction = (
        options.coverage
        if options.readers is None
        else reader_count_fraction(city, options.readers)
    )
    return place_readers(
        city,
        seed=options.seed + 1,
        fraction=fraction,
        protocol_mix=options.protocol_mix,
        miss_rate=options.miss_rate,
    )


def build_world(options: SimOptions, city: City | None = None) -> World:
    """Roads, readers, the day plan, outages and read-model parameters of a run."""
    city = city if city is not None else build_city(options)
    readers = build_readers(options, city)
    plan = plan_day(
        city, seed=options.seed + 2, bikes=options.bikes, start=options.start,
        hours=options.window_hours, thefts=min(options.thefts, options.bikes),
        clones=min(options.clones, options.bikes - 1), active_fraction=options.active_fraction,
        habits=options.habits,
    )  # fmt: skip
    outages = outage_schedule(
        readers, seed=options.seed + 3, start_us=plan.start_us, end_us=plan.end_us,
        per_reader_day=options.outages_per_reader_day,
    )  # fmt: skip
    params = options.rf
    if params.clock_ref_us is None:  # clocks set at the start of the window, in every chunk
        params = RfParams(**{**params.__dict__, "clock_ref_us": plan.start_us})
    return World(options.seed, city, readers, plan, outages, params)


def chunk_ranges(options: SimOptions) -> list[tuple[int, int]]:
    """Bike ranges of the run's chunks (their size changes memory, never the output)."""
    size = max(1, options.chunk_bikes)
    return [(b0, min(options.bikes, b0 + size)) for b0 in range(0, options.bikes, size)]


def run(options: SimOptions, *, progress: Progress | None = None) -> SimResult:
    """Simulate in memory, chunk by chunk in this process; for tests, demos and live runs.

    ``progress(stage, fraction_done)`` is called as the run advances. Files for large runs
    are written by :func:`simulators.run_files.write_run`, which streams the same chunks.
    """
    report = progress or (lambda _stage, _done: None)
    report("roads", 0.0)
    world = build_world(options)
    router = router_for(world.city, world.plan)
    parts: list[ChunkResult] = []
    ranges = chunk_ranges(options)
    for k, (b0, b1) in enumerate(ranges):
        report("reads", 0.1 + 0.85 * k / len(ranges))
        parts.append(simulate_chunk(world, router, b0, b1))
    report("merge", 0.95)
    trips, visits = merge_trips(parts)
    population = Population(world.plan.bikes, [t for p in parts for t in p.thefts], trips, visits)
    names, ranks = world.plan.tag_names.astype(str), np.array(world.reader_ids, dtype=str)
    reads = pd.concat([p.reads for p in parts], ignore_index=True)
    order = np.lexsort((reads["tag"], reads["antenna"], reads["reader"], reads["read_at_us"]))
    reads = reads.iloc[order].reset_index(drop=True)
    reads = pd.DataFrame({
        "reader_id": pd.Categorical.from_codes(reads["reader"], pd.Index(ranks, dtype=str)),
        "antenna": reads["antenna"], "tag_id": pd.Categorical.from_codes(
            reads["tag"], pd.Index(names, dtype=str)),
        "rssi_dbm": reads["rssi_dbm"], "read_at_us": reads["read_at_us"],
        "true_at_us": reads["true_at_us"],
    })  # fmt: skip
    passages = sorted_passages(pd.concat([p.passages for p in parts], ignore_index=True))
    passages = passages.assign(tag=names[passages["tag"]], reader=ranks[passages["reader"]])
    passages = passages.rename(columns={"tag": "tag_id", "reader": "reader_id"})
    report("done", 1.0)
    return SimResult(options, world.city, world.readers, population, world.outages, reads,
                     passages, sum(len(p.positions) for p in parts))  # fmt: skip


def merge_trips(parts: list[ChunkResult]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Chunks' trips and visits with trip ids made global (chunks are in bike order)."""
    trips, visits, offset = [], [], 0
    for p in parts:
        trips.append(p.trips.assign(trip_id=(p.trips["trip_id"] + offset).astype(np.int32)))
        visits.append(p.visits.assign(trip_id=(p.visits["trip_id"] + offset).astype(np.int32)))
        offset += len(p.trips)
    return pd.concat(trips, ignore_index=True), pd.concat(visits, ignore_index=True)


def sorted_passages(passages: pd.DataFrame) -> pd.DataFrame:
    """Passages in (closest approach, reader, bike) order; reader ranks sort like reader ids."""
    order = np.lexsort((passages["bike_id"], passages["reader"], passages["closest_at_us"]))
    return passages.iloc[order].reset_index(drop=True)
