"""Gateway commands: ``tagtrail gateway``."""

from __future__ import annotations

from typing import Annotated

import typer

from tagtrail.runtime import run_until_interrupted, services
from tagtrail.settings import Settings


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add the gateway's commands and benchmarks."""
    del bench  # no gateway benchmark yet
    app.command()(gateway)


def gateway(
    gateway_id: Annotated[str, typer.Option(help="Unique gateway name.")] = "gw-0",
) -> None:
    """Run an MQTT reader gateway: networked readers' JSON in, normalized batches out."""
    from reader_gateway.transport.mqtt import MqttGateway, MqttGatewayConfig

    settings = Settings()
    with services(settings) as svc:
        service = MqttGateway(
            MqttGatewayConfig(
                mqtt_url=svc.mqtt_url,
                gateway_id=gateway_id,
                topic_prefix=settings.topic_prefix,
                shard_count=settings.shard_count,
            ),
            clock_offsets_s={},
        )
        run_until_interrupted(service.start, service.run, service.close)
