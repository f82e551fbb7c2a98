"""Engine commands: ``tagtrail engine``, ``tagtrail bench accuracy`` and ``bench soak``."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from tagtrail.runtime import err, run_until_interrupted, services
from tagtrail.settings import Settings


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add the engine's commands and benchmarks."""
    app.command()(engine)
    bench.command("accuracy")(bench_accuracy)
    bench.command("soak")(bench_soak)


def engine(
    shards: Annotated[
        str | None, typer.Option(help="Comma-separated shards to own (default: all).")
    ] = None,
    worker_id: Annotated[str, typer.Option(help="Unique worker name (MQTT client id).")] = "0",
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65535,
            help="Prometheus exporter port (0: no exporter; default: the "
            "TAGTRAIL_ENGINE_METRICS_PORT setting, 9108).",
        ),
    ] = None,
    metrics_addr: Annotated[
        str | None,
        typer.Option(
            help="Exporter address (default: the TAGTRAIL_ENGINE_METRICS_ADDR setting, 127.0.0.1)."
        ),
    ] = None,
    record_status: Annotated[
        bool,
        typer.Option(
            help="Record reader heartbeats from the gateways' status topics (one "
            "worker per deployment is enough)."
        ),
    ] = True,
) -> None:
    """Run a track-engine worker: consume read batches, store reads and passages, raise alerts.

    Hourly it also creates partitions ahead of the clock and drops raw reads older than
    TAGTRAIL_RETENTION_DAYS (reads of tags under a case hold are kept in held_reads). Every
    TAGTRAIL_MISS_RATE_INTERVAL_H hours (0: never) it learns the readers' miss rates from the
    passages, in a child process (once between all workers: `readers learn-miss-rates`).
    Reads older than TAGTRAIL_READ_MAX_AGE_DAYS (default: the retention period) or more than
    TAGTRAIL_READ_MAX_AHEAD_S ahead of the engine's clock are quarantined, not stored.
    Started while its database is down, it waits for it (a warning per attempt).
    """
    from track_engine.consumer.config import EngineConfig
    from track_engine.consumer.service import EngineService
    from track_engine.db.connect import wait_for_database
    from track_engine.db.migrate import migrate
    from track_engine.db.miss_rate_schedule import learn_periodically
    from track_engine.reader_status import ReaderStatusRecorder

    settings = Settings()
    if metrics_port is None:
        metrics_port = settings.engine_metrics_port
    if metrics_addr is None:
        metrics_addr = settings.engine_metrics_addr
    owned = (
        tuple(int(s) for s in shards.split(",")) if shards else tuple(range(settings.shard_count))
    )
    with services(settings) as svc:
        # Started before its database (a reboot, a deployment brought up in any order): wait,
        # saying so, instead of exiting.
        try:
            wait_for_database(svc.database_url)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        migrate(svc.database_url)
        service = EngineService(
            EngineConfig(
                database_url=svc.database_url,
                mqtt_url=svc.mqtt_url,
                topic_prefix=settings.topic_prefix,
                shards=owned,
                client_id=f"tagtrail-engine-{worker_id}",
                gap_s=settings.passage_gap_s,
                allowed_lateness_s=settings.passage_lateness_s,
                metrics_port=metrics_port or None,
                metrics_addr=metrics_addr,
                retention_days=settings.retention_days,
                partition_ahead_days=settings.partition_ahead_days,
                read_max_age_s=settings.read_max_age_days_resolved * 86_400.0,
                read_max_ahead_s=settings.read_max_ahead_s,
            )
        )
        recorder = (
            ReaderStatusRecorder(
                database_url=svc.database_url,
                mqtt_url=svc.mqtt_url,
                topic_prefix=settings.topic_prefix,
                client_id=f"tagtrail-status-{worker_id}",
            )
            if record_status
            else None
        )
        stop_threads = threading.Event()
        recorder_thread = None
        if recorder is not None:
            recorder.start()
            recorder_thread = threading.Thread(
                target=recorder.run, args=(stop_threads,), name="reader-status", daemon=True
            )
            recorder_thread.start()
        learner_thread = None
        if settings.miss_rate_interval_h > 0:
            learner_thread = threading.Thread(
                target=learn_periodically,
                args=(svc.database_url,),
                kwargs={
                    "interval_s": settings.miss_rate_interval_h * 3600.0,
                    "stop": stop_threads,
                },
                name="reader-miss-rates",
                daemon=True,
            )
            learner_thread.start()
        try:
            run_until_interrupted(service.start, service.run, service.close)
        finally:
            stop_threads.set()
            if recorder is not None and recorder_thread is not None:
                recorder_thread.join(5)
                recorder.close()
            if learner_thread is not None:
                learner_thread.join(10)  # ends a run in progress (its child process)


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated numbers, got {text!r}") from None


def bench_accuracy(
    seed: Annotated[int, typer.Option(help="Seed of the city, readers, riders and reads.")] = 7,
    bikes: Annotated[int, typer.Option(min=10, help="Simulated bikes.")] = 200,
    hours: Annotated[float, typer.Option(min=0.25, help="Simulated hours (from 07:00).")] = 2.0,
    size_m: Annotated[float, typer.Option(min=500, help="Generated city size (m).")] = 3000.0,
    roads: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Road network (.npz, .osm, .osm.pbf)."),
    ] = None,
    junction_tolerance_m: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Merge the OSM nodes of one junction within this many meters (osmnx's "
            "consolidate_intersections; 0 keeps every node). Default: 10.",
        ),
    ] = None,
    coverage: Annotated[str, typer.Option(help="Reader coverages (fractions).")] = "0.25,0.5,1.0",
    miss_rate: Annotated[str, typer.Option(help="Reader miss rates.")] = "0.1,0.3",
    clones: Annotated[int, typer.Option(min=0, help="Bikes carrying a cloned tag.")] = 4,
    hmm: Annotated[bool, typer.Option(help="Score the HMM map-matching baseline.")] = True,
    route_oracle: Annotated[
        bool, typer.Option(help="Score the route-choice oracle (knows the simulator's model).")
    ] = True,
    reader_rates: Annotated[
        str,
        typer.Option(
            help="Miss rates TagTrail weighs silent readers by: registry (surveyed), learned "
            "(from another simulated day's passages), oracle (the simulated ones)."
        ),
    ] = "registry",
    deaf_readers: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help="Share of readers deaf (miss 90%) unbeknown to the registry."
        ),
    ] = 0.0,
    history_bikes: Annotated[
        int, typer.Option(min=10, help="Bikes of the day the learned rates come from.")
    ] = 600,
    history_hours: Annotated[
        float, typer.Option(min=0.25, help="Hours of the day the learned rates come from.")
    ] = 8.0,
    where_now: Annotated[
        bool,
        typer.Option(
            "--where-now",
            help="Also score where-now (90% region hit rate and area, 5/15/30 min after the "
            "last sighting) and the next-readers answer (top 3, ETA window) on tagtrail rows.",
        ),
    ] = False,
    days: Annotated[
        int,
        typer.Option(
            min=1,
            help="Working-day mornings to simulate; the last is scored, the priors are "
            "learned from the others (tagtrail rows only; see docs/accuracy.md, Priors).",
        ),
    ] = 1,
    habits: Annotated[
        bool, typer.Option("--habits", help="Riders keep personal routes and preferences.")
    ] = False,
    prior: Annotated[
        str,
        typer.Option(
            help="Way priors to score with --days: none, fleet, personal, fleet+personal."
        ),
    ] = "none,fleet",
    json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Route accuracy against simulator ground truth: TagTrail vs shortest path vs HMM, and
    the route-choice oracle (the bound the evidence allows)."""
    from rich.table import Table

    from tagtrail.bench.engine_accuracy import run_accuracy
    from tagtrail.bench.engine_scenario import AccuracyOptions

    try:
        options = AccuracyOptions(
            seed=seed,
            bikes=bikes,
            hours=hours,
            size_m=size_m,
            roads=roads,
            junction_tolerance_m=junction_tolerance_m,
            coverages=_floats(coverage),
            miss_rates=_floats(miss_rate),
            clones=clones,
            hmm=hmm,
            route_oracle=route_oracle,
            reader_rates=tuple(x.strip() for x in reader_rates.split(",") if x.strip()),
            deaf_readers=deaf_readers,
            history_bikes=history_bikes,
            history_hours=history_hours,
            where_now=where_now,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if days > 1 or habits:
        _bench_priors(options, days, habits, prior, json)
        return
    results = run_accuracy(options)
    if json:
        sys.stdout.write(orjson.dumps({"results": results}).decode() + "\n")
        return
    table = Table(title=f"Route accuracy (seed {seed}, {bikes} bikes, {hours:g} h)")
    heads = ("coverage", "miss", "method", "rates", "recall", "precision", "time p50 s",
             "time p95 s", "pos p50 m", "pos p95 m", "trips", "clones hit",
             "false alarms", "readers", "spacing p50 m", "ECE", "alt cover")  # fmt: skip
    for h in heads:
        table.add_column(h, justify="left" if h == "method" else "right")
    for r in results:
        table.add_row(
            f"{r['coverage']:g}", f"{r['miss_rate']:g}", r["method"],
            r["reader_rates"] or "–", _fmt(r["recall"], 3),
            _fmt(r["precision"], 3), _fmt(r["time_error_median_s"], 2),
            _fmt(r["time_error_p95_s"], 2), _fmt(r["position_error_median_m"], 1),
            _fmt(r["position_error_p95_m"], 1), str(r["trips"]),
            f"{r['clone_hits']}/{r['clone_tags']}", str(r["clone_false_alarms"]),
            str(r["readers"]), _fmt(r["reader_spacing_median_m"], 1),
            _fmt(r["calibration_ece"], 3), _fmt(r["alternatives_coverage"], 3),
        )  # fmt: skip
    err.print(table)
    for r in results:
        if r["reliability"]:
            err.print(_reliability_table(r))
    if where_now:
        err.print(_where_now_table(results))


def _bench_priors(options: Any, days: int, habits: bool, prior: str, json: bool) -> None:
    """The multi-day run of ``bench accuracy`` (:mod:`tagtrail.bench.engine_priors`)."""
    from rich.table import Table

    from tagtrail.bench.engine_priors import PriorOptions, run_priors

    try:
        multi = PriorOptions(
            days=days, habits=habits, priors=tuple(x.strip() for x in prior.split(",") if x.strip())
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    results = run_priors(options, multi)
    if json:
        sys.stdout.write(orjson.dumps({"results": results}).decode() + "\n")
        return
    table = Table(title=f"Way priors ({days} mornings, habits {'on' if habits else 'off'})")
    heads = ("coverage", "miss", "prior", "recall", "precision", "trips", "stolen recall",
             "stolen precision", "stolen trips", "history rides")  # fmt: skip
    for h in heads:
        table.add_column(h, justify="left" if h == "prior" else "right")
    for r in results:
        table.add_row(
            f"{r['coverage']:g}", f"{r['miss_rate']:g}", r["prior"], _fmt(r["recall"], 3),
            _fmt(r["precision"], 3), str(r["trips"]), _fmt(r["stolen_recall"], 3),
            _fmt(r["stolen_precision"], 3), str(r["stolen_trips"]), str(r["history_rides"]),
        )  # fmt: skip
    err.print(table)


def _reliability_table(r: dict[str, Any]) -> Any:
    """Stretches by stated probability vs how often the drawn way was the true one."""
    from rich.table import Table

    table = Table(
        title=f"Reliability: {r['method']}, coverage {r['coverage']:g}, miss {r['miss_rate']:g}"
        f" (ECE {r['calibration_ece']:.3f})"
    )
    for h in ("stated", "stretches", "mean stated", "right"):
        table.add_column(h, justify="right")
    for b in r["reliability"]:
        if b["stretches"]:
            table.add_row(
                f"{b['lo']:.1f}–{b['hi']:.1f}", str(b["stretches"]), _fmt(b["stated"], 3),
                _fmt(b["right"], 3),
            )  # fmt: skip
    return table


def _where_now_table(results: list[dict[str, Any]]) -> Any:
    """Where now (90% region vs reach circle) and intercept scores of the tagtrail rows."""
    from rich.table import Table

    table = Table(title="Where now (90% region) and intercept")
    heads = ("coverage", "miss", "min", "cases", "hit", "stolen hit", "area km²",
             "reach km²", "top-3", "model top-3", "ETA window", "ETA width s",
             "nearest top-3")  # fmt: skip
    for h in heads:
        table.add_column(h, justify="right")
    for r in results:
        if "where_now_hit" not in r:
            continue
        for m in r["where_now_hit"]:
            table.add_row(
                f"{r['coverage']:g}", f"{r['miss_rate']:g}", m, str(r["where_now_cases"][m]),
                _fmt(r["where_now_hit"][m], 3), _fmt(r["where_now_stolen_hit"][m], 3),
                _fmt(r["where_now_area_km2"][m], 2), _fmt(r["reach_area_km2"][m], 2),
                _fmt(r["intercept_top3"], 3), _fmt(r["model_top3"], 3),
                _fmt(r["eta_window_hit"], 3), _fmt(r.get("eta_window_median_s"), 1),
                _fmt(r["nearest_top3"], 3),
            )  # fmt: skip
    return table


def _fmt(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def bench_soak(
    minutes: Annotated[float, typer.Option(min=0.5, help="How long to run the load.")] = 60.0,
    rate: Annotated[int, typer.Option(min=100, help="Reads per second offered.")] = 20_000,
    sample_s: Annotated[float, typer.Option(min=1, help="Seconds between samples.")] = 10.0,
    readers: Annotated[int, typer.Option(min=1, help="Simulated active readers.")] = 50,
    json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Gateway + engine at a steady rate: memory, lag, backlog and loss over time (not CI).

    Runs against TAGTRAIL_DATABASE_URL and TAGTRAIL_MQTT_URL when both are set; otherwise,
    like the other pipeline benchmarks, against a fresh database on the machine's PostgreSQL
    (127.0.0.1:5432) and a Mosquitto of its own with the deployment's queue sizes. Needs
    psutil (the dev extra).
    """
    from contextlib import ExitStack

    from tagtrail.bench.broker import PRIVATE, broker_url
    from tagtrail.bench.common import ADMIN_URL, fresh_database
    from tagtrail.bench.soak import result_document, run_soak

    settings = Settings()
    with ExitStack() as stack:
        database_url = settings.database_url or stack.enter_context(fresh_database(ADMIN_URL))
        mqtt_url = stack.enter_context(broker_url(settings.mqtt_url or PRIVATE))
        result = run_soak(
            database_url=database_url,
            mqtt_url=mqtt_url,
            minutes=minutes,
            rate=rate,
            sample_s=sample_s,
            readers=readers,
            progress=not json,
        )
    if json:
        sys.stdout.write(orjson.dumps(result_document(result)).decode() + "\n")
        return
    for key, value in result.summary().items():
        err.print(f"{key:32} {value}")
    if result.lost_reads or not result.drained:
        raise typer.Exit(1)
