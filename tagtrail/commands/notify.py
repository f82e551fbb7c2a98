"""``tagtrail notify``: deliver notices (e-mail, webhooks, apprise) without serving the API."""

from __future__ import annotations

import threading
from typing import Annotated

import typer

from tagtrail.runtime import database_services
from tagtrail.settings import Settings


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add the notice sender's command and its benchmark."""
    app.command(name="notify")(notify)
    bench.command("notices")(bench_notices)


def notify() -> None:
    """Deliver queued notices until Ctrl-C, retrying with backoff (docs/operations.md,
    "Notices"). `tagtrail api` and `tagtrail demo` run the same sender themselves unless
    TAGTRAIL_NOTIFY_ENABLED=false; several senders share the queue safely."""
    from tagtrail.notices import notice_sender
    from track_engine.db.migrate import migrate

    settings = Settings()
    with database_services(settings) as svc:
        migrate(svc.database_url)
        stop = threading.Event()
        try:
            notice_sender(settings, svc.database_url).run(stop)
        except KeyboardInterrupt:
            stop.set()


def bench_notices(
    alerts: Annotated[int, typer.Option(min=1, help="Alerts per phase.")] = 100,
    subscribers: Annotated[int, typer.Option(min=1, help="Desk webhook subscriptions.")] = 5,
    samples: Annotated[int, typer.Option(min=1, help="Alert-to-webhook latency samples.")] = 30,
    admin_url: Annotated[
        str,
        typer.Option(
            "--admin-url",
            envvar="TAGTRAIL_BENCH_ADMIN_URL",
            help="PostgreSQL admin URL; the run creates (and drops) a database of its own.",
        ),
    ] = "postgresql://postgres@127.0.0.1:5432/postgres",
    json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """The notice outbox: alert commit cost with and without fan-out, one sender's notices/s
    to a loopback webhook receiver, and alert-to-webhook latency (docs/performance.md)."""
    from tagtrail.bench.common import print_report
    from tagtrail.bench.notices import NoticeBenchOptions, report_rows, run_notices

    doc = run_notices(
        NoticeBenchOptions(
            alerts=alerts, subscribers=subscribers, latency_samples=samples, admin_url=admin_url
        )
    )
    print_report(doc, report_rows(doc), json=json)
