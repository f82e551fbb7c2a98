"""Simulator commands: ``tagtrail simulate``, ``roads import``, ``readers import`` and
``tagtrail bench simulate`` (``readers learn-miss-rates`` lives in
:mod:`tagtrail.commands.readers`).

The simulator itself never touches the database (import-linter keeps ``simulators`` away from
the engine); storing an imported network or deployment is this composition root's job.
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tagtrail.commands import readers as readers_commands
from tagtrail.runtime import err, services
from tagtrail.settings import Settings

T = TypeVar("T")
roads_app = typer.Typer(help="Road networks: import OpenStreetMap data.", no_args_is_help=True)
readers_app = typer.Typer(
    help="Reader deployments: import CSV / GeoJSON, learn miss rates.", no_args_is_help=True
)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add ``simulate``, the ``roads`` and ``readers`` sub-apps, and ``bench simulate``."""
    app.command()(simulate)
    app.add_typer(roads_app, name="roads")
    app.add_typer(readers_app, name="readers")
    readers_commands.register_readers(readers_app)
    bench.command("simulate")(bench_simulate)
    bench.command("habits")(bench_habits)


def simulate(
    out: Annotated[
        Path | None, typer.Option(help="Write emitted bytes and ground truth here.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed: same seed and options, same files.")] = 1,
    bikes: Annotated[int, typer.Option(min=1, help="Registered bikes.")] = 300,
    readers: Annotated[
        int | None, typer.Option(min=0, help="Reader count (default: coverage).")
    ] = None,
    hours: Annotated[float, typer.Option(min=0.01, max=168, help="Simulated hours.")] = 2.0,
    days: Annotated[
        int | None, typer.Option(min=1, max=28, help="Whole days instead of --hours.")
    ] = None,
    habits: Annotated[
        bool, typer.Option(help="Riders keep personal routes and shared preferences.")
    ] = False,
    start_day: Annotated[
        str | None, typer.Option(help="First local day, YYYY-MM-DD (default 2025-03-03).")
    ] = None,
    size_m: Annotated[
        float, typer.Option(min=500, max=30000, help="Generated city size.")
    ] = 3000.0,
    roads: Annotated[Path | None, typer.Option(help="Road network (.npz, .osm, .osm.pbf).")] = None,
    readers_file: Annotated[Path | None, typer.Option(help="Deployment CSV / GeoJSON.")] = None,
    coverage: Annotated[float, typer.Option(min=0, max=1, help="Share of junctions read.")] = 0.3,
    miss_rate: Annotated[
        float | None, typer.Option(min=0, max=0.99, help="Mean miss rate.")
    ] = None,
    active_fraction: Annotated[float, typer.Option(min=0, max=1, help="Active-tag share.")] = 0.2,
    thefts: Annotated[int, typer.Option(min=0, help="Thefts in the window.")] = 2,
    garbage_prob: Annotated[
        float, typer.Option(min=0, max=1, help="Serial noise per frame.")
    ] = 0.001,
    live: Annotated[bool, typer.Option(help="Emit live: serial to ptys, JSON to MQTT.")] = False,
    speedup: Annotated[
        float | None, typer.Option(min=0.01, help="Live pace ×N (default: ASAP).")
    ] = None,
    chunk_bikes: Annotated[
        int, typer.Option(min=100, help="Bikes per chunk (memory, not output).")
    ] = 2000,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default: one per core).")
    ] = None,
) -> None:
    """Simulate a city: readers' real bytes to files (--out) and/or live (--live), plus truth."""
    from simulators.emit import reader_messages
    from simulators.habits import Habits
    from simulators.output import summary
    from simulators.scenario import DEFAULT_START, SimOptions, local_midnight, run

    if out is None and not live:
        raise typer.BadParameter("give --out DIR, --live, or both")
    try:
        start = local_midnight(start_day) if start_day else DEFAULT_START
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--start-day") from exc
    options = SimOptions(
        seed=seed, bikes=bikes, hours=hours, size_m=size_m, readers=readers,
        coverage=coverage, roads=str(roads) if roads else None,
        readers_file=str(readers_file) if readers_file else None, miss_rate=miss_rate,
        active_fraction=active_fraction, thefts=thefts, chunk_bikes=chunk_bikes, days=days,
        habits=Habits() if habits else None,
        start=start,
    )  # fmt: skip
    started = time.monotonic()
    if out is not None:
        data = _generate(options, out, garbage_prob, workers)
    if live:  # live runs are paced to real time, so small: simulated again, in memory
        result = _with_progress(lambda progress: run(options, progress=progress))
        protocols = {r.reader_id: r.protocol for r in result.readers}
        messages = reader_messages(result.reads, protocols, seed=seed, garbage_prob=garbage_prob)
        data = summary(result, _emit_live(result, messages, speedup))
    _print_summary(data, time.monotonic() - started, out)


def _with_progress(work: Callable[[Callable[[str, float], None]], T]) -> T:
    """Run ``work(progress)`` under a rich progress bar."""
    columns = (TextColumn("{task.description:<8}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task("roads", total=1.0)

        def progress(stage: str, done: float) -> None:
            bar.update(task, description=stage, completed=done)

        return work(progress)


def _generate(options: Any, out: Path, garbage_prob: float, workers: int | None) -> dict[str, Any]:
    """Write the run's files (streamed, on ``workers`` processes); returns the summary."""
    from simulators.run_files import write_run

    processes = workers or os.cpu_count() or 1
    return _with_progress(
        lambda progress: write_run(
            options, out, garbage_prob=garbage_prob, workers=processes, progress=progress
        )
    )


def _emit_live(result: Any, messages: Any, speedup: float | None) -> Counter[str]:
    """Serial readers to ptys and LLRP readers on loopback TCP (paths and ports printed
    first), networked readers' JSON to MQTT."""
    from simulators.emit import MqttEmitter
    from simulators.llrp_readers import LlrpReaderServers
    from simulators.ptys import PtyPorts, paced
    from simulators.readers import SERIAL_PROTOCOLS
    from simulators.riders import to_us

    settings = Settings()
    serial = [r.reader_id for r in result.readers if r.protocol in SERIAL_PROTOCOLS]
    ports = PtyPorts(serial)
    # LLRP readers listen on loopback TCP: the gateway's [[llrp]] entries connect to them.
    llrp = LlrpReaderServers([r.reader_id for r in result.readers if r.protocol == "llrp"])
    table = Table("reader", "protocol", "device")
    for r in result.readers:
        if r.reader_id in ports.paths:
            table.add_row(r.reader_id, r.protocol, ports.paths[r.reader_id])
        elif r.reader_id in llrp.endpoints:
            host, port = llrp.endpoints[r.reader_id]
            table.add_row(r.reader_id, r.protocol, f"{host}:{port}")
    err.print(table)
    counts: Counter[str] = Counter()
    stop = threading.Event()
    with services(settings) as svc:
        mqtt = MqttEmitter(svc.mqtt_url, topic_prefix=settings.topic_prefix,
                           client_id=f"tagtrail-sim-{uuid.uuid4().hex[:10]}")  # fmt: skip

        def send(message: Any) -> None:
            counts[message.protocol] += 1
            if message.protocol in SERIAL_PROTOCOLS:
                ports.write(message)
            elif message.protocol == "llrp":
                llrp.write(message)  # waits for the gateway to start the reader's ROSpec
            else:
                mqtt.publish(message)

        try:
            paced(messages, send, stop=stop, speedup=speedup,
                  sim_start_us=to_us(result.options.start))  # fmt: skip
            mqtt.drain(60)
        except KeyboardInterrupt:
            stop.set()
        finally:
            mqtt.close()
            ports.close()
            llrp.close()
    return counts


def _print_summary(data: dict[str, Any], seconds: float, out: Path | None) -> None:
    per_protocol = data["messages_per_protocol"]
    table = Table("protocol", "reads", "messages", title=f"simulated in {seconds:.1f} s")
    for proto in sorted(set(data["reads_per_protocol"]) | set(per_protocol)):
        table.add_row(proto, f"{data['reads_per_protocol'].get(proto, 0):,}",
                      f"{per_protocol.get(proto, 0):,}")  # fmt: skip
    err.print(table)
    err.print(
        f"{data['bikes']:,} bikes, {data['readers']:,} readers, {data['trips']:,} trips, "
        f"{data['thefts']} thefts ({data['thefts_by_van']} by van), {data['passages']:,} "
        f"passages ({data['passages_heard']:,} heard), {data['outages']} outages"
        + (f"; files in {out}" if out else "")
    )


@roads_app.command("import")
def roads_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help=".osm / .osm.pbf")],
    name: Annotated[str | None, typer.Option(help="Network name (default: file name).")] = None,
    save: Annotated[Path | None, typer.Option(help="Also write the network file (.npz).")] = None,
    junction_tolerance_m: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Merge the OSM nodes of one junction within this many meters into one "
            "(osmnx's consolidate_intersections); 0 keeps every node.",
        ),
    ] = 10.0,
) -> None:
    """Import OpenStreetMap roads bikes use, store them as the active network.

    The several OSM nodes of one real junction become one node (readers go on junctions)."""
    from api.registry import loaders as registry
    from citymap.network_files import load_roads, save_city
    from track_engine.db.migrate import migrate

    city = load_roads(file, junction_tolerance_m=junction_tolerance_m)
    if save is not None:
        save_city(city, save)
    import pandas as pd
    import psycopg

    with services(Settings()) as svc:
        migrate(svc.database_url)
        with psycopg.connect(svc.database_url) as conn:
            network_id = registry.store_road_network(
                conn, name=name or file.name, source=f"osm:{file.name}",
                origin_lat=city.origin_lat, origin_lon=city.origin_lon,
                nodes=pd.DataFrame({
                    "node_id": np.arange(city.n_nodes), "lon": city.node_lonlat[:, 0],
                    "lat": city.node_lonlat[:, 1], "x_m": city.node_xy_m[:, 0],
                    "y_m": city.node_xy_m[:, 1], "kind": city.node_kind,
                }),
                edges=pd.DataFrame({
                    "edge_id": np.arange(city.n_edges), "src": city.edge_src,
                    "dst": city.edge_dst, "length_m": city.edge_length_m,
                    "road_class": city.edge_class, "oneway": city.edge_oneway,
                    "name": city.edge_names(),
                }),
            )  # fmt: skip
    err.print(f"network {network_id}: {city.n_nodes:,} nodes, {city.n_edges:,} edges (active)")


@readers_app.command("import")
def readers_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or GeoJSON")],
) -> None:
    """Import a reader deployment onto the active network (snapped to the nearest junction)."""
    import psycopg

    from api.registry import loaders as registry
    from citymap.reader_files import (
        ReaderFileError,
        project,
        read_readers,
        snap_to_junctions,
    )
    from track_engine.db import network
    from track_engine.db.migrate import migrate

    table = read_readers(file)
    with services(Settings()) as svc:
        migrate(svc.database_url)
        with psycopg.connect(svc.database_url) as conn:
            net = network.load_network(conn)
            if net is None:
                err.print("no active road network: run `tagtrail roads import` first")
                raise typer.Exit(1)
            # The projection origin follows from any node's degrees and meters.
            lat0 = float(net.node_lonlat[0, 1] - np.degrees(net.node_xy_m[0, 1] / 6_371_008.8))
            lon0 = float(net.node_lonlat[0, 0] - np.degrees(
                net.node_xy_m[0, 0] / (6_371_008.8 * np.cos(np.radians(lat0)))))  # fmt: skip
            xy = project(table[["lon", "lat"]].to_numpy(), lat0, lon0)
            # Readers belong to junctions (consolidated at import), never to a bend point.
            kinds = np.array(
                [k for (k,) in conn.execute(
                    "SELECT kind FROM road_nodes WHERE network_id = %s ORDER BY node_id",
                    (net.network_id,),
                )],
                dtype=object,
            )  # fmt: skip
            try:
                nodes = snap_to_junctions(net.node_xy_m, kinds, xy)
            except ReaderFileError as exc:
                err.print(str(exc))
                raise typer.Exit(1) from None
            registry.upsert_readers(
                conn,
                table.assign(
                    x_m=xy[:, 0], y_m=xy[:, 1], node_id=nodes,
                    clock_offset_ms=table["clock_offset_s"] * 1000.0,
                ),
                network_id=net.network_id,
            )  # fmt: skip
    err.print(f"{len(table)} readers imported onto network {net.network_id}")


def bench_simulate(
    bikes: Annotated[int, typer.Option(help="Bikes.")] = 100_000,
    readers: Annotated[int, typer.Option(help="Readers.")] = 2_000,
    hours: Annotated[float, typer.Option(help="Simulated hours.")] = 24.0,
    size_m: Annotated[float, typer.Option(help="City size in meters.")] = 15_000.0,
    out: Annotated[
        Path | None, typer.Option(help="Output directory (default: a temp dir).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    chunk_bikes: Annotated[int, typer.Option(min=100, help="Bikes per chunk.")] = 2000,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes.")] = None,
) -> None:
    """Generate a day of a large city to files; report time, peak memory and counts."""
    from simulators.scenario import SimOptions

    options = SimOptions(seed=1, bikes=bikes, readers=readers, hours=hours, size_m=size_m,
                         chunk_bikes=chunk_bikes)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="tagtrail-bench-") as tmp:
        target = out or Path(tmp)
        started = time.monotonic()
        data = _generate(options, target, 0.001, workers)
        seconds = time.monotonic() - started
        written = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    # ru_maxrss is in KiB on Linux; for children it is the largest single worker.
    main_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    worker_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    figures = {
        "bikes": bikes, "readers": data["readers"], "hours": hours, "size_m": size_m,
        "chunk_bikes": chunk_bikes, "workers": workers or os.cpu_count() or 1,
        "seconds": round(seconds, 1), "positions": data["positions"], "reads": data["reads"],
        "messages": sum(data["messages_per_protocol"].values()), "trips": data["trips"],
        "passages": data["passages"], "bytes_written": written,
        "peak_rss_main_mib": round(main_kib / 1024),
        "peak_rss_worker_mib": round(worker_kib / 1024),
    }  # fmt: skip
    if json_out:
        typer.echo(json.dumps(figures))
    else:
        _print_summary(data, seconds, None)
        err.print(figures)


def bench_habits(
    seed: Annotated[int, typer.Option(help="Seed of the generated city and riders.")] = 1,
    bikes: Annotated[int, typer.Option(min=1, help="Bikes.")] = 300,
    days: Annotated[int, typer.Option(min=1, max=5, help="Working days from a Monday.")] = 5,
    size_m: Annotated[float, typer.Option(min=500, help="City size in meters.")] = 3000.0,
    roads: Annotated[Path | None, typer.Option(help="Road network (.npz, .osm, .osm.pbf).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """How strong riders' habits are: usual-path share, route preferences' effect on km."""
    from tagtrail.bench.sim_habits import measure

    figures = measure(seed=seed, bikes=bikes, days=days, size_m=size_m,
                      roads=str(roads) if roads else None)  # fmt: skip
    if json_out:
        typer.echo(json.dumps(figures))
    else:
        err.print(figures)
