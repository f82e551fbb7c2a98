"""``tagtrail demo``: the simulated city live, served with the API and console until Ctrl-C
(:func:`run_live`): the stolen bike is ridden after the banner (:func:`tagtrail.demo.simulate`
with ``live=True``)."""

from __future__ import annotations

import os
import secrets
import threading
import time
from datetime import timedelta

import psycopg
from rich.console import Console

from api.registry import cases
from simulators.emit import reader_messages
from tagtrail.demo import (
    DEMO_CASE_PREFIX,
    DemoOptions,
    last_ridden,
    load_registry,
    network_source,
    running_pipeline,
    simulate,
    simulator_emitter,
    utc_now,
)
from tagtrail.embedded import SigtermAsInterrupt
from tagtrail.settings import Settings
from track_engine.db.migrate import migrate

DEMO_OFFICER = "duty-officer"


def ensure_demo_officer(conn: psycopg.Connection, settings: Settings) -> str:
    """Make sure the demo's officer account exists; returns its password.

    The password is random, kept in ``data_dir/demo-officer.password`` (mode 0600) and
    re-applied on every start, so a reused database and a new data directory still agree.
    """
    from api.security import hash_password, verify_password
    from api.users import store as accounts

    path = settings.data_dir / "demo-officer.password"
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(12))
    password = path.read_text().strip()
    user = accounts.user_by_name(conn, DEMO_OFFICER)
    if user is None:
        accounts.create_user(
            conn, username=DEMO_OFFICER, password_hash=hash_password(password), role="officer"
        )
    elif not verify_password(user.password_hash, password):
        # a new data directory's password: a change like any other, so older tokens stop
        accounts.change_password(conn, user_id=user.user_id, password_hash=hash_password(password))
    return password


def run_live(
    settings: Settings,
    options: DemoOptions,
    *,
    database_url: str,
    mqtt_url: str,
    console: Console,
) -> None:
    """Run the city live: the first ``lead_minutes`` replay at once, the rest in real time.

    Serves the API and console until Ctrl-C or SIGTERM, then stops every thread and closes
    every connection (the caller stops the embedded services).
    """
    sigterm = SigtermAsInterrupt()  # a no-op under the embedded services, which installed one
    sigterm.install()
    try:
        _run_live(settings, options, database_url=database_url, mqtt_url=mqtt_url, console=console)
    finally:
        sigterm.restore()


def _run_live(
    settings: Settings,
    options: DemoOptions,
    *,
    database_url: str,
    mqtt_url: str,
    console: Console,
) -> None:
    import uvicorn

    from api.app import create_app
    from tagtrail.commands.api import api_config
    from tagtrail.notices import running_notice_sender

    migrate(database_url)
    # Faster than real time, the simulated clock starts far enough in the past never to run
    # ahead of the real one: the engine rightly holds reads "from the future" (a reader whose
    # clock is wrong) and would not close their passages.
    live_min = options.hours * 60 - options.lead_minutes
    sim_now = utc_now() - timedelta(minutes=live_min * (1 - 1 / options.speedup))
    start = sim_now - timedelta(minutes=options.lead_minutes)
    with psycopg.connect(database_url) as conn:
        run_index = cases.count_cases_with_prefix(conn, DEMO_CASE_PREFIX)
    sim = simulate(options, start=start, run_index=run_index, live=True)
    with psycopg.connect(database_url) as conn:
        case_number = load_registry(
            conn, sim, source=network_source(options), id_hash_key=settings.resolve_id_hash_key()
        )
        password = ensure_demo_officer(conn, settings)
    protocols = {r.reader_id: r.protocol for r in sim.readers}
    plate = sim.stolen_bike.plate
    url = f"http://{settings.api_host}:{settings.api_port}/routes/{plate}?case_number={case_number}"
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(api_config(settings, database_url)),
            host=settings.api_host,
            port=settings.api_port,
            log_level="warning",
        )
    )
    with running_pipeline(
        settings,
        database_url=database_url,
        mqtt_url=mqtt_url,
        simulated_s=options.hours * 3600,
    ) as pipe:
        emitter = simulator_emitter(settings, mqtt_url)
        feeder = threading.Thread(
            target=emitter.replay,
            args=(reader_messages(sim.reads, protocols),),
            kwargs={
                "stop": pipe.stop,
                "speedup": options.speedup,
                "wall_start": time.time() - options.lead_minutes * 60 / options.speedup,
                "sim_start_us": int(start.timestamp() * 1e6),
            },
            name="simulator",
            daemon=True,
        )
        # From the moment "Press Ctrl-C" may be on screen, Ctrl-C or SIGTERM stops cleanly,
        # also when it comes before uvicorn has taken over the signals.
        try:
            feeder.start()
            console.print(
                f"Simulating {options.bikes} bikes and {len(sim.readers)} readers; "
                f"bike [bold]{plate}[/] was stolen at {sim.theft.stolen_at:%H:%M:%S} UTC "
                f"(case {case_number}) and the thief is riding it now: its route grows until "
                f"about {last_ridden(sim):%H:%M} UTC (simulated time)."
            )
            console.print(f"Its route, live: [link={url}]{url}[/]")
            console.print(f"Log in as [bold]{DEMO_OFFICER}[/] with password [bold]{password}[/]")
            if options.speedup != 1:
                console.print(
                    f"Simulated time runs {options.speedup:g}x real time; it is now "
                    f"{sim_now:%H:%M:%S} UTC there."
                )
            console.print("Press Ctrl-C to stop.")
            # Returns on Ctrl-C or SIGTERM; uvicorn then re-raises the signal, which
            # SigtermAsInterrupt turns into the KeyboardInterrupt that Ctrl-C gives.
            with running_notice_sender(settings, database_url):  # e-mail/webhook notices
                server.run()
        except KeyboardInterrupt:
            pass
        finally:
            pipe.stop.set()
            if feeder.is_alive():
                feeder.join(5)
            emitter.close()
    console.print("stopped cleanly")
