"""The ``tagtrail`` command line (typer). Every command has ``--help``.

Commands live in :mod:`tagtrail.commands`, one module per area; this module only assembles
them, plus the cross-cutting ``db`` and ``demo`` commands.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import orjson
import typer

from tagtrail.commands import api as api_commands
from tagtrail.commands import bench as bench_commands
from tagtrail.commands import engine as engine_commands
from tagtrail.commands import gateway as gateway_commands
from tagtrail.commands import notify as notify_commands
from tagtrail.commands import simulate as simulate_commands
from tagtrail.runtime import database_services, err, exit_if_ports_taken, services
from tagtrail.settings import Settings

app = typer.Typer(
    help="TagTrail: find stolen e-bikes from RFID reads.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks: print figures and ratios (--json for one document).")
app.add_typer(db_app, name="db")
app.add_typer(bench_app, name="bench")
for module in (
    gateway_commands,
    engine_commands,
    api_commands,
    notify_commands,
    simulate_commands,
    bench_commands,
):
    module.register(app, bench_app)


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
    """Apply pending schema migrations (idempotent; safe to run concurrently).

    Needs only the database (an embedded one if TAGTRAIL_DATABASE_URL is unset), never a
    broker: a migration job must not bind the broker port nor depend on it.
    """
    from track_engine.db.migrate import applied_versions, migrate

    settings = Settings()
    with database_services(settings) as svc:
        applied = migrate(svc.database_url)
        for m in applied:
            err.print(f"applied {m.version:04d}_{m.name}")
        if not applied:
            err.print("schema is up to date")
        versions = applied_versions(svc.database_url)
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
    speedup: Annotated[
        float,
        typer.Option(min=1, max=60, help="Live: simulated seconds per second (1 = real time)."),
    ] = 1.0,
) -> None:
    """Run the whole pipeline on a simulated city in which one bike is stolen.

    Without --once it keeps running in real time and serves the API and console on
    http://127.0.0.1:8000; Ctrl-C stops everything cleanly.
    """
    from tagtrail import demo as demo_mod
    from tagtrail import demo_live, demo_once

    settings = Settings()
    options = demo_mod.DemoOptions(
        seed=seed, bikes=bikes, hours=hours, size_m=size_m, speedup=speedup
    )
    # Before PostgreSQL starts and the demo's theft case is opened: a taken port is one line.
    exit_if_ports_taken(settings, need_api=not once)
    with services(settings) as svc:
        if once:
            result = demo_once.run_once(
                settings,
                options,
                database_url=svc.database_url,
                mqtt_url=svc.mqtt_url,
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
        demo_live.run_live(
            settings,
            options,
            database_url=svc.database_url,
            mqtt_url=svc.mqtt_url,
            console=err,
        )
