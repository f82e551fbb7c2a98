"""Engine commands: ``tagtrail engine``."""

from __future__ import annotations

from typing import Annotated

import typer

from tagtrail.runtime import run_until_interrupted, services
from tagtrail.settings import Settings


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add the engine's commands and benchmarks."""
    del bench  # no engine benchmark yet
    app.command()(engine)


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
    with services(settings) as svc:
        migrate(svc.database_url)
        service = EngineService(
            EngineConfig(
                database_url=svc.database_url,
                mqtt_url=svc.mqtt_url,
                topic_prefix=settings.topic_prefix,
                shards=owned,
                client_id=f"tagtrail-engine-{worker_id}",
                gap_s=settings.passage_gap_s,
            )
        )
        run_until_interrupted(service.start, service.run, service.close)
