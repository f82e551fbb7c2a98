"""Pipeline benchmarks: ``tagtrail bench ingest|latency|query|login-flood|memory``
(``bench ingest --engines 1,2`` compares engine worker counts).

Each command runs its benchmark from :mod:`tagtrail.bench` against the machine's PostgreSQL
and Mosquitto on 127.0.0.1 (a fresh database and a topic prefix of the run's own) and prints a
table, or one JSON document with ``--json``. See docs/performance.md for what each measures.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

import typer

_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
_MQTT = "private"

AdminUrl = Annotated[
    str,
    typer.Option(
        "--admin-url",
        envvar="TAGTRAIL_BENCH_ADMIN_URL",
        help="PostgreSQL admin URL; each run creates (and drops) a database of its own.",
    ),
]
MqttUrl = Annotated[
    str,
    typer.Option(
        "--mqtt-url",
        envvar="TAGTRAIL_BENCH_MQTT_URL",
        help="Mosquitto URL, or 'private': a Mosquitto of the run's own, with the queue sizes "
        "docs/deployment.md deploys (the distribution's defaults drop messages under load).",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
Database = Annotated[
    str,
    typer.Option(
        "--database",
        help="plain: the machine's PostgreSQL (--admin-url). timescaledb or citus: the same run "
        "on plain PostgreSQL and then on a private TimescaleDB node or Citus coordinator + 2 "
        "workers (started from PostgreSQL 15 with ../shared/pg15-ext; docs/deployment.md), and "
        "their ratio.",
    ),
]


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add the pipeline benchmarks."""
    del app
    bench.command("ingest")(bench_ingest)
    bench.command("latency")(bench_latency)
    bench.command("query")(bench_query)
    bench.command("login-flood")(bench_login_flood)
    bench.command("memory")(bench_memory)


def bench_ingest(
    minutes: Annotated[
        float,
        typer.Option(
            min=0.05,
            help="Feeding time per phase (with --feed-rate: rate × minutes reads, all fed).",
        ),
    ] = 1.0,
    stored_rows: Annotated[
        int, typer.Option(min=0, help="Second phase: reads already stored (0: skip it).")
    ] = 0,
    gateways: Annotated[int, typer.Option(min=1, max=8, help="Gateway processes.")] = 1,
    engines: Annotated[
        str,
        typer.Option(
            help="Engine processes (1-4). Several counts, comma-separated (1,2), run the "
            "benchmark once each and report them side by side with their speed-ups."
        ),
    ] = "1",
    ptys: Annotated[int, typer.Option(min=1, max=32, help="Serial readers per gateway.")] = 4,
    max_rate: Annotated[
        float, typer.Option(min=1000, help="Reads prepared per second of --minutes.")
    ] = 150_000.0,
    feed_rate: Annotated[
        float | None,
        typer.Option(
            min=1000,
            help="Feed the ptys at this many reads/s (a steady load: does the pipeline keep "
            "up?) instead of as fast as they drain.",
        ),
    ] = None,
    copy_rows: Annotated[
        int | None,
        typer.Option(
            min=1000,
            help="Rows of the raw COPY reference (default: every read of the run, the same rows "
            "as the pipeline stored; fewer make it a burst).",
        ),
    ] = None,
    warmup_s: Annotated[float, typer.Option(min=0, help="Seconds left out of the rate.")] = 10.0,
    tags: Annotated[int, typer.Option(min=100, help="Tags in the workload.")] = 1_000_000,
    admin_url: AdminUrl = _ADMIN,
    mqtt_url: MqttUrl = _MQTT,
    database: Database = "plain",
    json: Json = False,
) -> None:
    """Sustained reads/s end to end (ptys → gateway → Mosquitto → engine → PostgreSQL), the
    raw COPY of the same rows, their ratio, and the rate with --stored-rows already stored;
    with several --engines counts, each count's figures and its speed-up over the first."""
    from tagtrail.bench import ingest, shards
    from tagtrail.bench.broker import broker_url
    from tagtrail.bench.common import print_report
    from tagtrail.bench.workload import Workload

    try:
        counts = shards.engine_counts(engines)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--engines") from exc
    opts = ingest.IngestOptions(
        minutes=minutes,
        stored_rows=stored_rows,
        gateways=gateways,
        engines=counts[0],
        ptys_per_gateway=ptys,
        max_reads_per_s=max_rate,
        feed_rate=feed_rate,
        copy_rows=copy_rows,
        warmup_s=warmup_s,
        admin_url=admin_url,
        mqtt_url=mqtt_url,
        workload=Workload(tags=tags),
    )
    kind = _database_kind(database)
    with broker_url(mqtt_url) as url:
        opts = replace(opts, mqtt_url=url)
        if kind is not None:
            doc = ingest.run_ingest_compared(opts, kind)
            rows = ingest.compared_report_rows(doc)
        elif len(counts) == 1:
            doc = ingest.run_ingest(opts)
            rows = ingest.report_rows(doc)
        else:
            doc = shards.run_shards(shards.ShardsOptions(engines=counts, ingest=opts))
            rows = shards.report_rows(doc)
    doc["broker"] = "private (deployment queue sizes)" if mqtt_url == _MQTT else mqtt_url
    print_report(doc, rows, json=json)


def bench_latency(
    load: Annotated[
        float, typer.Option(min=0, help="Background load through the ptys, reads/s.")
    ] = 20_000.0,
    probes: Annotated[int, typer.Option(min=1, help="Watched-tag reads to time.")] = 60,
    interval_s: Annotated[float, typer.Option(min=0.05, help="Mean gap between them.")] = 0.5,
    warmup_s: Annotated[float, typer.Option(min=0, help="Load before the first one.")] = 5.0,
    admin_url: AdminUrl = _ADMIN,
    mqtt_url: MqttUrl = _MQTT,
    json: Json = False,
) -> None:
    """Latency from a reader emitting a watched tag to the alert on a live SSE client
    (/api/v1/live/alerts, logged in as an officer), under a background load."""
    from tagtrail.bench.broker import broker_url
    from tagtrail.bench.common import print_report
    from tagtrail.bench.latency import LatencyOptions, report_rows, run_latency

    with broker_url(mqtt_url) as url:
        doc = run_latency(
            LatencyOptions(
                load_reads_per_s=load,
                probes=probes,
                interval_s=interval_s,
                warmup_s=warmup_s,
                admin_url=admin_url,
                mqtt_url=url,
            )
        )
    doc["broker"] = "private (deployment queue sizes)" if mqtt_url == _MQTT else mqtt_url
    print_report(doc, report_rows(doc), json=json)


def bench_query(
    stored_rows: Annotated[
        int, typer.Option(min=0, help="Reads preloaded (and a 15th as many passages).")
    ] = 50_000_000,
    clients: Annotated[int, typer.Option(min=1, max=256, help="Concurrent clients.")] = 16,
    seconds: Annotated[float, typer.Option(min=1, help="How long the clients ask.")] = 30.0,
    bikes: Annotated[int, typer.Option(min=10, help="Bikes in the simulated city.")] = 120,
    hours: Annotated[float, typer.Option(min=0.25, max=12, help="Simulated hours.")] = 3.0,
    api_workers: Annotated[
        int, typer.Option(min=1, max=64, help="API worker processes (tagtrail api --workers).")
    ] = 1,
    client: Annotated[
        str,
        typer.Option(
            help="processes: each client its own process on a plain HTTP/1.1 socket (no shared "
            "interpreter lock); threads: httpx clients in threads of one process (the earlier "
            "client, itself a bottleneck on 2 cores)."
        ),
    ] = "processes",
    warmup_s: Annotated[
        float,
        typer.Option(
            min=0,
            help="Requests started in the first seconds (cold caches) are also reported apart.",
        ),
    ] = 10.0,
    admin_url: AdminUrl = _ADMIN,
    database: Database = "plain",
    json: Json = False,
) -> None:
    """Route, last-seen and next-readers latency (p50/p99) through the API, with concurrent
    officer clients, on a database holding --stored-rows reads."""
    from tagtrail.bench.common import print_report
    from tagtrail.bench.query import (
        QueryOptions,
        compared_report_rows,
        report_rows,
        run_query,
        run_query_compared,
    )

    if client not in ("processes", "threads"):
        raise typer.BadParameter("processes or threads", param_hint="--client")
    kind = _database_kind(database)
    opts = QueryOptions(
        client="processes" if client == "processes" else "threads",
        warmup_s=warmup_s,
        stored_rows=stored_rows,
        clients=clients,
        seconds=seconds,
        bikes=bikes,
        hours=hours,
        api_workers=api_workers,
        admin_url=admin_url,
    )
    if kind is not None:
        doc = run_query_compared(opts, kind)
        print_report(doc, compared_report_rows(doc), json=json)
        return
    doc = run_query(opts)
    print_report(doc, report_rows(doc), json=json)


def bench_login_flood(
    clients: Annotated[
        int, typer.Option(min=2, max=512, help="Concurrent clients, all told.")
    ] = 100,
    officers: Annotated[
        int,
        typer.Option(min=1, help="Of the clients, officers asking for routes; the rest log in."),
    ] = 10,
    seconds: Annotated[float, typer.Option(min=1, help="How long they run.")] = 60.0,
    api_workers: Annotated[
        int, typer.Option(min=1, max=64, help="API worker processes (tagtrail api --workers).")
    ] = 2,
    known_share: Annotated[
        float,
        typer.Option(
            min=0, max=1, help="Share of the flood's logins with a real account's right password."
        ),
    ] = 0.2,
    hours: Annotated[float, typer.Option(min=0.25, max=12, help="Simulated hours.")] = 1.0,
    p99_target_s: Annotated[
        float, typer.Option(min=0.001, help="The officers' route p99 must stay under this.")
    ] = 1.0,
    warmup_s: Annotated[
        float, typer.Option(min=0, help="Officers alone (cold caches) before the flood starts.")
    ] = 5.0,
    admin_url: AdminUrl = _ADMIN,
    json: Json = False,
) -> None:
    """Officers' route lookups while logins flood the API from many forwarded addresses:
    statuses by code, route p50/p99/max, logins/s, 429s. Exits 1 if a 5xx or a failed request
    was seen or the route p99 missed its target."""
    from tagtrail.bench.common import print_report
    from tagtrail.bench.login_flood import LoginFloodOptions, report_rows, run_login_flood

    if officers >= clients:
        raise typer.BadParameter("fewer officers than clients", param_hint="--officers")
    doc = run_login_flood(
        LoginFloodOptions(
            clients=clients,
            officers=officers,
            seconds=seconds,
            api_workers=api_workers,
            known_share=known_share,
            hours=hours,
            p99_target_s=p99_target_s,
            warmup_s=warmup_s,
            admin_url=admin_url,
        )
    )
    print_report(doc, report_rows(doc), json=json)
    if not doc["passed"]:
        raise typer.Exit(1)


def bench_memory(
    registered: Annotated[int, typer.Option(min=1, help="Registered bikes/tags.")] = 1_000_000,
    active: Annotated[int, typer.Option(min=1, help="Tags with a passage open.")] = 100_000,
    watched: Annotated[int, typer.Option(min=0, help="Tags under an open watch.")] = 1_000,
    admin_url: AdminUrl = _ADMIN,
    mqtt_url: MqttUrl = _MQTT,
    json: Json = False,
) -> None:
    """Engine RSS with --registered tags registered and --active of them in open passages."""
    from tagtrail.bench.broker import broker_url
    from tagtrail.bench.common import print_report
    from tagtrail.bench.memory import MemoryOptions, report_rows, run_memory

    if active > registered:
        raise typer.BadParameter("--active cannot exceed --registered")
    with broker_url(mqtt_url) as url:
        doc = run_memory(
            MemoryOptions(
                registered=registered,
                active=active,
                watched=watched,
                admin_url=admin_url,
                mqtt_url=url,
            )
        )
    print_report(doc, report_rows(doc), json=json)


def _database_kind(database: str) -> Literal["timescaledb", "citus"] | None:
    """``--database``: None for plain PostgreSQL, else the real engine to compare with."""
    if database == "plain":
        return None
    if database in ("timescaledb", "citus"):
        return "timescaledb" if database == "timescaledb" else "citus"
    raise typer.BadParameter("plain, timescaledb or citus", param_hint="--database")
