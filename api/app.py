"""The FastAPI application factory. Nothing is built at import time."""

from __future__ import annotations

import gc
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

import psycopg
import xstatic.pkg.leaflet as xleaflet
from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from starlette.concurrency import run_in_threadpool
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api.body_limit import BodyLimitMiddleware
from api.config import ApiConfig
from api.deps import Keys
from api.docs_pages import install_docs_pages
from api.errors import UnavailableError, install_error_handlers
from api.live.listener import LiveHub
from api.login_gate import LoginBusyMiddleware
from api.network.service import NetworkCache
from api.openapi import install_openapi
from api.routers import MATCH_ORDER, ROUTERS
from api.security import HashGate, IdCipher, LoginLimiter, hash_executor
from api.tracking import store as tracking
from track_engine.route_choice import warm_path_choice

log = logging.getLogger(__name__)
# A login form is a username (64) and a password (256), form-encoded: well under this.
LOGIN_MAX_BODY_BYTES = 16_384

DESCRIPTION = """Find stolen e-bikes from RFID reads.

Log in at `POST /api/v1/auth/token` (OAuth2 password flow) and send the token as
`Authorization: Bearer <token>`. Each operation lists the roles that may call it
(`x-roles`). Errors are `application/problem+json`. Route, live and last-seen lookups need a
case number or a reason and are written to the audit log.
"""


def _keys(config: ApiConfig) -> Keys:
    missing = [
        name
        for name, value in (
            ("jwt_secret", config.jwt_secret),
            ("id_hash_key", config.id_hash_key),
            ("id_enc_key", config.id_enc_key),
        )
        if value is None
    ]
    if missing:
        log.warning("no %s configured: using random keys for this process only", missing)
    return Keys(
        jwt_secret=config.jwt_secret or secrets.token_bytes(32),
        id_hash_key=config.id_hash_key or secrets.token_bytes(32),
        id_cipher=IdCipher(config.id_enc_key or secrets.token_bytes(32)),
    )


def _warm_network(pool: ConnectionPool, network: NetworkCache) -> None:
    with pool.connection() as conn:
        loaded = network.get(conn)
    started = time.perf_counter()
    warmed = warm_path_choice(loaded.reader_paths)
    log.info("path choice warm from %d readers in %.2f s", warmed, time.perf_counter() - started)


def create_app(config: ApiConfig) -> FastAPI:
    """Build the API and console for one database."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = ConnectionPool(
            config.database_url, min_size=1, max_size=config.pool_max_size, open=False
        )
        pool.open(wait=True, timeout=30)
        app.state.pool = pool
        # The route, last-seen and next-readers views run on the event loop with connections
        # of their own (session settings for short lookups: no JIT, no parallel workers).
        lookup_pool = AsyncConnectionPool(
            config.database_url,
            min_size=config.lookup_pool_min_size,
            max_size=config.pool_max_size,
            open=False,
            configure=tracking.configure_lookup_connection,
        )
        await lookup_pool.open(wait=True, timeout=30)
        app.state.lookup_pool = lookup_pool
        # Load the road network (every path between readers, and the path-choice trees from
        # every reader) before the first request instead of in it; a database without a
        # network yet loads it on first use.
        try:
            await run_in_threadpool(_warm_network, pool, app.state.network)
        except (UnavailableError, psycopg.Error) as exc:
            log.info("road network not loaded at start: %s", exc)
        live = LiveHub(
            config.database_url,
            listen=config.live_listen,
            poll_s=config.live_poll_s,
            fallback_poll_s=config.live_fallback_poll_s,
        )
        await live.start()
        app.state.live_hub = live
        hashing = hash_executor(config.login_hash_slots)
        app.state.hash_executor = hashing
        # Everything loaded so far (modules, the network, the path trees) lives as long as the
        # process: out of the cyclic collector's sight, a full collection scans ~15k objects
        # instead of ~200k (95-110 ms, every ~2.5 s under load: a stall of every request in
        # the worker, the p99 of a one-worker API) and takes 2-6 ms.
        gc.freeze()
        try:
            yield
        finally:
            hashing.shutdown(wait=False, cancel_futures=True)
            await live.stop()
            await lookup_pool.close()
            pool.close()

    # /docs and /redoc are served from packaged assets (api/docs_pages.py), not from a CDN.
    app = FastAPI(
        title="TagTrail",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.config = config
    app.state.network = NetworkCache()
    app.state.keys = _keys(config)
    app.state.login_limiter = LoginLimiter(
        max_failures=config.login_max_failures,
        max_failures_per_address=config.login_max_failures_per_address,
        max_failures_per_user=config.login_max_failures_per_user,
        window_s=config.login_window_s,
    )
    app.state.hash_gate = HashGate(config.login_hash_slots)
    install_error_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=config.max_body_bytes,
        path_limits={"/api/v1/auth/token": LOGIN_MAX_BODY_BYTES},
    )
    app.add_middleware(
        LoginBusyMiddleware,
        gate=app.state.hash_gate,
        path="/api/v1/auth/token",
        delay_s=config.login_refusal_delay_s,
    )
    if config.trusted_proxies:
        # Added last, so it runs first: every later step (the login limits, the audit log)
        # sees the forwarded address. uvicorn's own handling is off (tagtrail api), since it
        # trusts X-Forwarded-For from 127.0.0.1 by default.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(config.trusted_proxies))
    health = APIRouter(tags=["health"])

    @health.get("/api/v1/health")
    def get_health() -> dict[str, str]:
        """Liveness: the process answers. Open to all."""
        return {"status": "ok"}

    for router in (*MATCH_ORDER[:1], health, *MATCH_ORDER[1:]):
        app.include_router(router)
    install_openapi(app, (health, *ROUTERS))
    install_docs_pages(app)
    app.mount("/static/leaflet", StaticFiles(directory=xleaflet.BASE_DIR), name="leaflet")
    app.mount(
        "/static",
        StaticFiles(directory=str(resources.files("api").joinpath("static"))),
        name="static",
    )
    return app
