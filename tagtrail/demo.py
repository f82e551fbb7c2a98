"""The walking skeleton: a simulated city whose reader bytes go through every real stage.

simulator -> reader JSON over MQTT -> gateway (decode, normalize, batch) -> wire batches over
MQTT -> engine (COPY reads, alerts, passages) -> PostgreSQL -> API (route of the stolen bike).
No stage is skipped or short-circuited; the demo only wires the parts together and waits.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import psycopg

from api.registry import loaders as registry
from citymap.network import City
from reader_gateway.config import DEFAULT_MAX_READ_AGE_S, DEFAULT_MAX_READ_LEAD_S
from reader_gateway.transport.mqtt import MqttGateway, MqttGatewayConfig
from simulators.city import generate_city
from simulators.emit import MqttEmitter
from simulators.intentions import trip_rate_scale_for
from simulators.readers import SimReader, place_readers
from simulators.rf import simulate_reads
from simulators.riders import Bike, Population, Theft, generate_population, trajectories
from tagtrail.settings import Settings
from track_engine.consumer.config import EngineConfig
from track_engine.consumer.service import EngineService
from track_engine.identifiers import frame_number_key
from track_engine.reader_status import ReaderStatusRecorder

log = logging.getLogger(__name__)

DEMO_CASE_PREFIX = "DEMO-"


class DemoError(RuntimeError):
    """The demo could not complete (a stage did not finish in time)."""


@dataclass(frozen=True)
class DemoOptions:
    """Size and pace of the simulated city."""

    seed: int = 7
    bikes: int = 120
    size_m: float = 2000.0
    reader_fraction: float = 0.5
    hours: float = 1.0
    lead_minutes: float = 20.0  # live mode: how much of the window lies in the past at start
    speedup: float = 1.0
    # Live mode only: the theft happens this many minutes before the banner, the thief rides
    # on (no van) until this long after the banner, and the city keeps at least this many
    # trips per bike per hour whatever the local hour (a demo at 3 a.m. is not silent).
    live_theft_before_min: tuple[float, float] = (5.0, 8.0)
    live_ride_after_min: float = 25.0
    live_trips_per_bike_per_h: float = 0.5


@dataclass(frozen=True)
class SimulatedCity:
    """Everything the simulator produced for one run, with the ground truth."""

    city: City
    readers: list[SimReader]
    population: Population
    reads: pd.DataFrame
    truth: pd.DataFrame
    start: datetime

    @property
    def theft(self) -> Theft:
        """The demo's theft."""
        return self.population.thefts[0]

    @property
    def stolen_bike(self) -> Bike:
        """The bike that is stolen."""
        return next(b for b in self.population.bikes if b.bike_id == self.theft.bike_id)


def _live_plan(options: DemoOptions, start: datetime) -> dict[str, Any]:
    """The live demo's theft and traffic: stolen a few minutes before the banner, ridden on
    well past it, in a city busy enough that the map moves whatever the hour."""
    window_min = options.hours * 60
    early, late = options.live_theft_before_min
    lead = options.lead_minutes
    ride_on_min = max(early, late) + options.live_ride_after_min
    return {
        "theft_window": ((lead - late) / window_min, (lead - early) / window_min),
        "van_prob": 0.0,
        "thief_ride_on_s": ride_on_min * 60,
        "trip_rate_scale": trip_rate_scale_for(
            start, options.hours, options.live_trips_per_bike_per_h
        ),
    }


def simulate(
    options: DemoOptions, *, start: datetime, run_index: int = 0, live: bool = False
) -> SimulatedCity:
    """Generate the city, readers, riders with one theft, and every read the readers make.

    The city and its readers depend on ``options.seed`` only; the riders also on ``run_index``,
    so that a demo re-run on the same database gets new bikes and tags instead of replaying
    the same tags over an overlapping time window. ``live``: the theft and traffic of the live
    demo (:func:`_live_plan`).
    """
    if (
        live
        and not 0
        < options.live_theft_before_min[0]
        <= options.live_theft_before_min[1]
        < options.lead_minutes
    ):
        raise DemoError("the live demo's theft must fall inside its lead time")
    city = generate_city(seed=options.seed, size_m=options.size_m)
    readers = place_readers(city, seed=options.seed, fraction=options.reader_fraction)
    population_seed = options.seed + 1000 * run_index
    population = generate_population(
        city,
        seed=population_seed,
        bikes=options.bikes,
        start=start,
        hours=options.hours,
        thefts=1,
        tag_removal_prob=0.0,  # the demo's thief leaves the tag on, so there is a route to show
        **(_live_plan(options, start) if live else {}),
    )
    traj = trajectories(city, population, seed=population_seed)
    reads, truth = simulate_reads(city, readers, traj, seed=population_seed)
    return SimulatedCity(city, readers, population, reads, truth, start)


def last_ridden(sim: SimulatedCity) -> datetime:
    """When the stolen bike's last ride ends (ground truth)."""
    visits = sim.population.visits
    depart_us = visits.loc[visits["bike_id"] == sim.stolen_bike.bike_id, "depart_us"].max()
    return datetime.fromtimestamp(int(depart_us) / 1e6, UTC)


def network_source(options: DemoOptions) -> str:
    """Name under which the generated network is stored (a re-run reuses it)."""
    return f"generated:seed={options.seed}:size={options.size_m:g}"


def load_registry(
    conn: psycopg.Connection, sim: SimulatedCity, *, source: str, id_hash_key: bytes
) -> str:
    """Store roads, readers and bikes, open the theft and its watch; returns the case number."""
    city = sim.city
    network_id = registry.active_network_id(conn, source=source)
    if network_id is None:
        network_id = registry.store_road_network(
            conn,
            name="demo city",
            source=source,
            origin_lat=city.origin_lat,
            origin_lon=city.origin_lon,
            nodes=pd.DataFrame(
                {
                    "node_id": range(len(city.node_xy_m)),
                    "lon": city.node_lonlat[:, 0],
                    "lat": city.node_lonlat[:, 1],
                    "x_m": city.node_xy_m[:, 0],
                    "y_m": city.node_xy_m[:, 1],
                    "kind": city.node_kind,
                }
            ),
            edges=pd.DataFrame(
                {
                    "edge_id": range(len(city.edge_src)),
                    "src": city.edge_src,
                    "dst": city.edge_dst,
                    "length_m": city.edge_length_m,
                    "road_class": city.edge_class,
                    "oneway": city.edge_oneway,
                    "name": city.edge_names(),
                }
            ),
        )
    registry.upsert_readers(
        conn,
        pd.DataFrame(
            {
                "reader_id": [r.reader_id for r in sim.readers],
                "protocol": [r.protocol for r in sim.readers],
                "lon": [r.lon for r in sim.readers],
                "lat": [r.lat for r in sim.readers],
                "x_m": [r.x_m for r in sim.readers],
                "y_m": [r.y_m for r in sim.readers],
                "node_id": [r.node for r in sim.readers],
                "antennas": [r.antennas for r in sim.readers],
                "antenna_headings": [list(r.antenna_heading_deg) for r in sim.readers],
                # Surveyed at installation (the gateway estimates drift later): the engine
                # corrects read times by this offset.
                "clock_offset_ms": [r.clock_offset_s * 1000 for r in sim.readers],
                "miss_rate": [r.miss_rate for r in sim.readers],
                "range_m": [r.range_m for r in sim.readers],  # the survey's read range
            }
        ),
        network_id=network_id,
    )
    bikes = sim.population.bikes
    known = registry.registered_frame_keys(conn, [b.frame_number for b in bikes])
    new = [
        registry.Registration(
            owner_name=b.owner_name,
            owner_phone=b.owner_phone,
            owner_id_number=f"{b.bike_id:018d}",
            brand=b.brand,
            colour=b.colour,
            frame_number=b.frame_number,
            plate=b.plate,
            tag_id=b.tag_id,
        )
        for b in bikes
        if _frame_key(b.frame_number) not in known
    ]
    registry.register_bikes(
        conn, new, registered_at=sim.start - timedelta(days=30), id_hash_key=id_hash_key
    )
    bike = conn.execute(
        "SELECT bike_id FROM bikes WHERE frame_number_key = %s AND deregistered_at IS NULL",
        (_frame_key(sim.stolen_bike.frame_number),),
    ).fetchone()
    if bike is None:
        raise DemoError("the stolen bike did not get registered")
    theft = sim.theft
    registry.close_open_thefts(conn, bike_id=int(bike[0]), at=theft.stolen_at)
    case_number = f"{DEMO_CASE_PREFIX}{theft.stolen_at:%Y%m%d-%H%M%S}-{sim.stolen_bike.bike_id}"
    registry.open_theft(
        conn,
        bike_id=int(bike[0]),
        stolen_at=theft.stolen_at,
        reported_at=theft.stolen_at + timedelta(minutes=5),
        place=f"node {theft.from_node}",
        description="demo theft",
        case_number=case_number,
    )
    return case_number


def _frame_key(frame_number: str) -> str:
    return frame_number_key(frame_number)


@dataclass
class RunningPipeline:
    """Gateway and engine threads of one demo run."""

    gateway: MqttGateway
    engine: EngineService
    stop: threading.Event
    threads: list[threading.Thread]


@contextmanager
def running_pipeline(
    settings: Settings, *, database_url: str, mqtt_url: str, simulated_s: float = 0.0
) -> Iterator[RunningPipeline]:
    """Start a gateway and an engine worker on threads; stop and close them on exit.

    ``simulated_s`` is how much simulated time the run replays: the gateway accepts reads that
    far behind and ahead of its clock (a replay ends at now, or runs faster than real time).
    """
    with psycopg.connect(database_url) as conn:
        offsets = {str(r): float(o) / 1000 for r, o in conn.execute(
            "SELECT reader_id, clock_offset_ms FROM readers")}  # fmt: skip
    shards = tuple(range(settings.shard_count))
    run_tag = uuid.uuid4().hex[:10]  # client ids of this run only: runs never take over each other
    engine = EngineService(
        EngineConfig(
            database_url=database_url,
            mqtt_url=mqtt_url,
            topic_prefix=settings.topic_prefix,
            shards=shards,
            client_id=f"tagtrail-engine-{run_tag}",
            persistent_session=False,
            gap_s=settings.passage_gap_s,
            allowed_lateness_s=settings.passage_lateness_s,
            # This pipeline replays simulated time as fast as it can: trips that began before
            # the simulated end ("now") run on past it, and tests replay fixed days months
            # back. `tagtrail engine` keeps the read window; the demo's own engine does not.
            read_max_age_s=None,
            read_max_ahead_s=None,
        )
    )
    gateway = MqttGateway(
        MqttGatewayConfig(
            mqtt_url=mqtt_url,
            gateway_id="gw-demo",
            client_id=f"tagtrail-gw-{run_tag}",
            persistent_session=False,
            topic_prefix=settings.topic_prefix,
            shard_count=settings.shard_count,
            max_read_age_s=DEFAULT_MAX_READ_AGE_S + simulated_s,
            max_read_lead_s=DEFAULT_MAX_READ_LEAD_S + simulated_s,
        ),
        clock_offsets_s=offsets,
    )
    recorder = ReaderStatusRecorder(
        database_url=database_url,
        mqtt_url=mqtt_url,
        topic_prefix=settings.topic_prefix,
        client_id=f"tagtrail-status-{run_tag}",
    )
    stop = threading.Event()
    engine.start()
    gateway.start()
    recorder.start()
    _wait_for(lambda: engine.connected.is_set() and gateway.connected.is_set(), 15, "MQTT connect")
    threads = [
        threading.Thread(target=engine.run, args=(stop,), name="engine", daemon=True),
        threading.Thread(target=gateway.run, args=(stop,), name="gateway", daemon=True),
        threading.Thread(target=recorder.run, args=(stop,), name="reader-status", daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        yield RunningPipeline(gateway, engine, stop, threads)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        gateway.close()
        engine.close()
        recorder.close()


def simulator_emitter(settings: Settings, mqtt_url: str) -> MqttEmitter:
    """The simulated readers' MQTT publisher, with a client id of this run only."""
    return MqttEmitter(
        mqtt_url,
        topic_prefix=settings.topic_prefix,
        client_id=f"tagtrail-sim-{uuid.uuid4().hex[:10]}",
    )


def _wait_for(
    condition: Callable[[], bool], timeout_s: float, what: str | Callable[[], str]
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            detail = what() if callable(what) else what
            raise DemoError(f"timed out after {timeout_s:.0f} s waiting for {detail}")
        time.sleep(0.05)


def utc_now() -> datetime:
    """Current time, whole seconds, aware UTC."""
    return datetime.now(UTC).replace(microsecond=0)
