"""API commands: ``tagtrail api`` (alias ``serve``) and ``tagtrail users create``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from tagtrail.runtime import database_services, err, exit_if_ports_taken
from tagtrail.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from api.config import ApiConfig

users_app = typer.Typer(help="API accounts.", no_args_is_help=True)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add the API's commands and benchmarks."""
    del bench  # no API benchmark yet
    app.command()(serve)
    app.command(name="api")(serve)
    app.add_typer(users_app, name="users")
    users_app.command(name="create")(create_user)


def api_config(settings: Settings, database_url: str) -> ApiConfig:
    """The API's configuration with every key resolved from the settings."""
    from api.config import ApiConfig

    return ApiConfig(
        database_url=database_url,
        tile_url=settings.tile_url,
        jwt_secret=settings.resolve_jwt_secret(),
        id_hash_key=settings.resolve_id_hash_key(),
        id_enc_key=settings.resolve_id_enc_key(),
        trusted_proxies=tuple(settings.trusted_proxies),
        max_body_bytes=settings.api_max_body_bytes,
        notify_allow_private_targets=settings.notify_allow_private_targets,
        notify_apprise_schemes=tuple(settings.notify_apprise_schemes),
        desk_shift_hours=settings.desk_shift_hours,
        desk_shift_first_hour_utc=settings.desk_shift_first_hour_utc,
    )


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes (uvicorn). Each has its own connection pool, road-network "
            "cache, login rate limiter and live-stream listener.",
        ),
    ] = 1,
) -> None:
    """Serve the API and web console (uvicorn), and deliver notices (unless
    TAGTRAIL_NOTIFY_ENABLED=false: then run `tagtrail notify` elsewhere)."""
    import uvicorn

    from api.app import create_app
    from tagtrail.notices import running_notice_sender
    from track_engine.db.migrate import migrate

    settings = Settings()
    exit_if_ports_taken(settings, api_port=port, api_host=host, need_broker=False)
    with database_services(settings) as svc:
        migrate(svc.database_url)
        # Resolved here, before any worker starts: keys kept as files in the data directory
        # are created once, and every worker then reads the same ones (a token signed by one
        # worker must verify in the others).
        config = api_config(settings, svc.database_url)
        # One sender in this process, however many workers serve requests.
        with running_notice_sender(settings, svc.database_url):
            if workers == 1:
                uvicorn.run(
                    create_app(config),
                    host=host or settings.api_host,
                    port=port or settings.api_port,
                    log_level="info",
                    proxy_headers=False,  # the app applies settings.trusted_proxies itself
                )
                return
            # uvicorn starts the workers as fresh processes that import the app factory by
            # name; they find the database (embedded or not) through the environment.
            settings.model_copy(update={"database_url": svc.database_url}).export_to_children(
                "database_url"
            )
            uvicorn.run(
                f"{__name__}:worker_app",
                factory=True,
                workers=workers,
                host=host or settings.api_host,
                port=port or settings.api_port,
                log_level="info",
                proxy_headers=False,  # the app applies settings.trusted_proxies itself
            )


def worker_app() -> FastAPI:
    """The app of one ``tagtrail api --workers N`` worker process (a uvicorn app factory)."""
    from api.app import create_app

    settings = Settings()
    if settings.database_url is None:  # set by serve() before the workers start
        raise RuntimeError("TAGTRAIL_DATABASE_URL is not set for the API worker")
    return create_app(api_config(settings, settings.database_url))


def create_user(
    username: Annotated[str, typer.Option(help="Login name (3-64 of A-Z a-z 0-9 _ . @ -).")],
    password: Annotated[str, typer.Option(help="At least 10 characters, not a common password.")],
    role: Annotated[
        str, typer.Option(help="admin, officer, registrar, resident, auditor or operator.")
    ],
) -> None:
    """Create an API account (the first admin, or accounts for scripts)."""
    import psycopg
    from pydantic import ValidationError

    from api.errors import ApiError
    from api.users.schemas import UserIn
    from api.users.service import create_user as create
    from track_engine.db.migrate import migrate

    try:
        UserIn(username=username, password=password, role=role)
    except ValidationError as exc:
        err.print(f"[red]invalid account:[/] {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")
        raise typer.Exit(2) from exc
    settings = Settings()
    with database_services(settings) as svc:
        migrate(svc.database_url)
        with psycopg.connect(svc.database_url) as conn:
            try:
                user = create(
                    conn,
                    username=username,
                    password=password,
                    role=role,
                    actor="system:cli",
                    actor_role="system",
                )
            except ApiError as exc:
                err.print(f"[red]{exc}[/]")
                raise typer.Exit(1) from exc
    typer.echo(f"created {user.role} {user.username} (user {user.user_id})")
