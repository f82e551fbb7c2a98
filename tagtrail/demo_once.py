"""``tagtrail demo --once``: an hour of simulated time through every real stage as fast as it
can go, then the stolen bike's route as one JSON document (:func:`run_once`)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import psycopg

from api.network.service import NetworkCache
from api.registry import cases
from api.tracking.service import RouteRequest, route_for_plate
from simulators.emit import reader_messages
from tagtrail.demo import (
    DEMO_CASE_PREFIX,
    DemoError,
    DemoOptions,
    _wait_for,
    load_registry,
    network_source,
    running_pipeline,
    simulate,
    simulator_emitter,
)
from tagtrail.settings import Settings
from track_engine.db.migrate import migrate


def run_once(
    settings: Settings, options: DemoOptions, *, database_url: str, mqtt_url: str, now: datetime
) -> dict[str, Any]:
    """Simulate ``options.hours`` ending at ``now`` as fast as possible; return the result.

    Waits for every stage to drain: all reader messages acknowledged by the broker and decoded
    by the gateway, every batch processed by the engine, then the open passages closed.
    """
    migrate(database_url)
    start = (now - timedelta(hours=options.hours)).replace(microsecond=0)
    with psycopg.connect(database_url) as conn:
        run_index = cases.count_cases_with_prefix(conn, DEMO_CASE_PREFIX)
    sim = simulate(options, start=start, run_index=run_index)
    source = network_source(options)
    with psycopg.connect(database_url) as conn:
        case_number = load_registry(
            conn, sim, source=source, id_hash_key=settings.resolve_id_hash_key()
        )
    protocols = {r.reader_id: r.protocol for r in sim.readers}
    started = time.monotonic()
    with running_pipeline(
        settings,
        database_url=database_url,
        mqtt_url=mqtt_url,
        simulated_s=options.hours * 3600,
    ) as pipe:
        emitter = simulator_emitter(settings, mqtt_url)
        try:
            gateway = pipe.gateway
            emitter.replay(
                reader_messages(sim.reads, protocols),
                stop=pipe.stop,
                # What the broker holds for the gateway is what it has not acknowledged yet
                # (acks follow the spool, not the hand-over): bounded well below Mosquitto's
                # default max_queued_messages (1000), past which the broker drops messages.
                backlog=lambda: emitter.published - gateway.messages_acked,
            )
            if not emitter.drain(60):
                raise DemoError("the broker did not acknowledge every reader message")
        finally:
            emitter.close()
        timeout = 120 + len(sim.reads) / 500
        _wait_for(
            lambda: pipe.gateway.messages_in >= emitter.published,
            timeout,
            lambda: f"the gateway ({pipe.gateway.messages_in} of {emitter.published} messages in)",
        )
        _wait_for(pipe.gateway.idle, timeout, "the gateway to publish its batches")
        _wait_for(
            lambda: pipe.engine.counters.reads_received >= pipe.gateway.reads_out,
            timeout,
            "the engine",
        )
        pipe.stop.set()
        for thread in pipe.threads:
            thread.join(10)
        pipe.engine.flush()
        counters = pipe.engine.counters
        gateway_counts = (pipe.gateway.messages_in, pipe.gateway.reads_out)
    elapsed = time.monotonic() - started
    plate = sim.stolen_bike.plate
    with psycopg.connect(database_url) as conn:
        route = route_for_plate(
            conn,
            NetworkCache(),
            RouteRequest(
                plate=plate,
                since=sim.theft.stolen_at,
                until=now,
                reason="demo run of a simulated theft",
                case_number=case_number,
                actor="system:demo",
            ),
        )
    passages = [
        {"reader_id": p["reader_id"], "time": p["closest_at"]}
        for p in route["properties"]["passages"]
    ]
    return {
        "plate": plate,
        "case_number": case_number,
        "stolen_at": sim.theft.stolen_at.isoformat(),
        "passages": passages,
        "route": route,
        "stats": {
            "run_index": run_index,
            "simulated_from": start.isoformat(),
            "simulated_to": now.isoformat(),
            "bikes": options.bikes,
            "readers": len(sim.readers),
            "reader_messages": emitter.published,
            "gateway_messages_in": gateway_counts[0],
            "gateway_reads_out": gateway_counts[1],
            "engine_reads_received": counters.reads_received,
            "engine_reads_stored": counters.reads_stored,
            "engine_passages_stored": counters.passages_stored,
            "alerts": counters.alerts,
            "true_passages_of_stolen_bike": int(
                (sim.truth["heard"] & (sim.truth["tag_id"] == sim.stolen_bike.tag_id)).sum()
            ),
            "pipeline_seconds": round(elapsed, 2),
        },
    }
