"""The ``tagtrail`` command line (typer). Every command has ``--help``."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import Annotated

import orjson
import typer
from rich.console import Console

from tagtrail.embedded import Services
from tagtrail.settings import Settings

app = typer.Typer(
    help="TagTrail: find stolen e-bikes from RFID reads.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
err = Console(stderr=True)


def _services(settings: Settings) -> Services:
    return Services(
        database_url=settings.database_url,
        mqtt_url=settings.mqtt_url,
        pgdata=settings.pgdata_dir,
        mqtt_port=settings.embedded_mqtt_port,
    )


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at INFO level.")] = False,
) -> None:
    """TagTrail: reader gateway, track engine, API and city simulator."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending schema migrations (idempotent; safe to run concurrently)."""
    from track_engine.db.migrate import applied_versions, migrate

    settings = Settings()
    with _services(settings) as services:
        applied = migrate(services.database_url)
        for m in applied:
            err.print(f"applied {m.version:04d}_{m.name}")
        if not applied:
            err.print("schema is up to date")
        versions = applied_versions(services.database_url)
        err.print(f"database at version {versions[-1][0]:04d}" if versions else "no migrations")


@app.command()
def demo(
    once: Annotated[
        bool,
        typer.Option(help="Run a fixed stretch of simulated time as fast as possible, then exit."),
    ] = False,
    json: Annotated[
        bool, typer.Option("--json", help="With --once: print one JSON document.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Simulation seed.")] = 7,
    bikes: Annotated[int, typer.Option(min=10, help="Number of registered bikes.")] = 120,
    hours: Annotated[float, typer.Option(min=0.25, max=24, help="Simulated hours.")] = 1.0,
    size_m: Annotated[
        float, typer.Option(min=1000, max=15000, help="City size in meters.")
    ] = 2000.0,
) -> None:
    """Run the whole pipeline on a simulated city in which one bike is stolen.

    Without --once it keeps running in real time and serves the API and console on
    http://127.0.0.1:8000; Ctrl-C stops everything cleanly.
    """
    from tagtrail import demo as demo_mod

    settings = Settings()
    options = demo_mod.DemoOptions(seed=seed, bikes=bikes, hours=hours, size_m=size_m)
    with _services(settings) as services:
        if once:
            result = demo_mod.run_once(
                settings,
                options,
                database_url=services.database_url,
                mqtt_url=services.mqtt_url,
                now=demo_mod.utc_now(),
            )
            if json:
                sys.stdout.write(orjson.dumps(result).decode() + "\n")
            else:
                stats = result["stats"]
                err.print(
                    f"stolen plate [bold]{result['plate']}[/]: {len(result['passages'])} passages, "
                    f"{stats['engine_reads_stored']} reads stored in {stats['pipeline_seconds']} s"
                )
            return
        demo_mod.run_live(
            settings,
            options,
            database_url=services.database_url,
            mqtt_url=services.mqtt_url,
            console=err,
        )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
) -> None:
    """Serve the API and web console."""
    import uvicorn

    from api.app import create_app
    from api.config import ApiConfig
    from track_engine.db.migrate import migrate

    settings = Settings()
    with _services(settings) as services:
        migrate(services.database_url)
        uvicorn.run(
            create_app(ApiConfig(database_url=services.database_url)),
            host=host or settings.api_host,
            port=port or settings.api_port,
            log_level="info",
        )


@app.command()
def engine(
    shards: Annotated[
        str | None, typer.Option(help="Comma-separated shards to own (default: all).")
    ] = None,
    worker_id: Annotated[str, typer.Option(help="Unique worker name (MQTT client id).")] = "0",
) -> None:
    """Run a track-engine worker: consume read batches, store reads and passages, raise alerts."""
    from track_engine.consumer import EngineConfig, EngineService
    from track_engine.db.migrate import migrate

    settings = Settings()
    owned = (
        tuple(int(s) for s in shards.split(",")) if shards else tuple(range(settings.shard_count))
    )
    with _services(settings) as services:
        migrate(services.database_url)
        service = EngineService(
            EngineConfig(
                database_url=services.database_url,
                mqtt_url=services.mqtt_url,
                topic_prefix=settings.topic_prefix,
                shards=owned,
                client_id=f"tagtrail-engine-{worker_id}",
                gap_s=settings.passage_gap_s,
            )
        )
        _run_until_interrupted(service.start, service.run, service.close)


@app.command()
def gateway(
    gateway_id: Annotated[str, typer.Option(help="Unique gateway name.")] = "gw-0",
) -> None:
    """Run an MQTT reader gateway: networked readers' JSON in, normalized batches out."""
    from reader_gateway.transport.mqtt import MqttGateway, MqttGatewayConfig

    settings = Settings()
    with _services(settings) as services:
        service = MqttGateway(
            MqttGatewayConfig(
                mqtt_url=services.mqtt_url,
                gateway_id=gateway_id,
                topic_prefix=settings.topic_prefix,
                shard_count=settings.shard_count,
            ),
            clock_offsets_s={},
        )
        _run_until_interrupted(service.start, service.run, service.close)


def _run_until_interrupted(
    start: Callable[[], None], run: Callable[[threading.Event], None], close: Callable[[], None]
) -> None:
    stop = threading.Event()
    start()
    try:
        run(stop)
    except KeyboardInterrupt:
        err.print("stopping…")
    finally:
        stop.set()
        close()
