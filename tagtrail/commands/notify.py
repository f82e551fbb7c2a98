"""``tagtrail notify``: deliver notices (e-mail, webhooks, apprise) without serving the API."""

from __future__ import annotations

import threading

import typer

from tagtrail.runtime import database_services
from tagtrail.settings import Settings


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add the notice sender's command."""
    del bench
    app.command(name="notify")(notify)


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
