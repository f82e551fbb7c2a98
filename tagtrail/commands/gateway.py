"""Gateway commands: ``tagtrail gateway``, ``tagtrail decode`` and ``tagtrail bench gateway``."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer

from tagtrail.runtime import err, run_until_interrupted, services
from tagtrail.settings import Settings


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add the gateway's commands and benchmarks."""
    app.command()(gateway)
    app.command()(decode)
    bench.command("gateway")(bench_gateway)


def gateway(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            exists=True,
            dir_okay=False,
            help="Gateway TOML file (serial ports, subscriptions, spool); see docs/gateway.md.",
        ),
    ] = None,
    gateway_id: Annotated[
        str, typer.Option(help="Unique gateway name (without --config).")
    ] = "gw-0",
) -> None:
    """Run a reader gateway: readers' frames and JSON in, spooled normalized batches out.

    Without --config: an MQTT-only gateway for networked readers on <prefix>/raw/+/+, with
    its spool under the data directory and the broker from TAGTRAIL_MQTT_URL (or embedded).
    """
    from reader_gateway.config import load_config
    from reader_gateway.errors import ConfigError
    from reader_gateway.orchestrator.gateway import Gateway
    from reader_gateway.transport.mqtt import MqttGateway, MqttGatewayConfig

    settings = Settings()
    if config is not None:
        try:
            cfg = load_config(config)
        except ConfigError as exc:
            err.print(f"[red]{exc}[/]")
            raise typer.Exit(2) from exc
        service = Gateway(cfg)
        run_until_interrupted(service.start, service.run, service.close)
        return
    with services(settings) as svc:
        mqtt_service = MqttGateway(
            MqttGatewayConfig(
                mqtt_url=svc.mqtt_url,
                gateway_id=gateway_id,
                topic_prefix=settings.topic_prefix,
                shard_count=settings.shard_count,
                spool_dir=settings.data_dir / "spool" / gateway_id,
            ),
            clock_offsets_s={},
        )
        run_until_interrupted(mqtt_service.start, mqtt_service.run, mqtt_service.close)


def decode(
    fmt: Annotated[
        str, typer.Option("--format", help="Protocol: r2000, tagtrail-active, impinj-iot, ...")
    ],
    file: Annotated[str, typer.Argument(help="Capture file, or - for standard input.")] = "-",
    hex_text: Annotated[
        bool, typer.Option("--hex", help="The capture is hex text, not raw bytes.")
    ] = False,
    events: Annotated[bool, typer.Option(help="Also print reader events.")] = False,
    received_at: Annotated[
        str | None,
        typer.Option(help="Receive time (ISO 8601) for protocols without reader time; now."),
    ] = None,
) -> None:
    """Decode captured reader bytes: one JSON line per read and per rejected frame.

    Exit status 1 when anything was rejected, 2 when the input cannot be read at all.
    """
    from reader_gateway.offline import CaptureError, decode_capture, parse_hex_text, result_lines
    from reader_gateway.protocols import UnknownProtocolError

    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
        if hex_text:
            data = parse_hex_text(data)
        at = datetime.now(UTC) if received_at is None else _aware(received_at)
        result = decode_capture(fmt, data, received_at=at)
    except (OSError, CaptureError, UnknownProtocolError, ValueError) as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    out = sys.stdout.buffer
    for line in result_lines(result, events=events):
        out.write(orjson.dumps(line) + b"\n")
    out.flush()
    if result.rejects:
        raise typer.Exit(1)


def _aware(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"--received-at needs a UTC offset: {text!r}")
    return value.astimezone(UTC)


def bench_gateway(
    reads: Annotated[int, typer.Option(min=1000, help="Reads per protocol capture.")] = 50_000,
    repeat: Annotated[int, typer.Option(min=1, help="Runs per protocol; the best counts.")] = 3,
    json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    fmt: Annotated[
        list[str] | None,
        typer.Option("--format", help="Only this protocol (repeatable), e.g. llrp; default all."),
    ] = None,
) -> None:
    """Decoded reads per second per protocol, on one core (the process pinned to one CPU).

    ``--format llrp`` adds the LLRP path after decoding and whole LLRP sessions over loopback
    TCP through the gateway's LLRP transport.
    """
    from rich.console import Console
    from rich.table import Table

    from tagtrail.bench.gateway import run_bench

    cpu = None
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
    try:
        results = run_bench(reads=reads, repeat=repeat, formats=frozenset(fmt) if fmt else None)
    except ValueError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    if json:
        doc = {
            "benchmark": "gateway decoding",
            "cpu": cpu,
            "reads": reads,
            "repeat": repeat,
            "formats": sorted(fmt) if fmt else None,
            "load_average": list(os.getloadavg()),
            "results": [
                {
                    "protocol": r.protocol,
                    "shape": r.shape,
                    "reads": r.reads,
                    "seconds": round(r.seconds, 4),
                    "reads_per_s": round(r.reads_per_s),
                }
                for r in results
            ],
        }
        sys.stdout.write(orjson.dumps(doc).decode() + "\n")
        return
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    table = Table(
        title=f"Gateway decoding, one core ({reads:,} reads, best of {repeat}; load {load})"
    )
    for name in ("protocol", "input shape", "reads/s", "µs/read"):
        table.add_column(name, justify="left" if name in ("protocol", "input shape") else "right")
    for r in results:
        table.add_row(r.protocol, r.shape, f"{r.reads_per_s:,.0f}", f"{1e6 / r.reads_per_s:.2f}")
    Console().print(table)
