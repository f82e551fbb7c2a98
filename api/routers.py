"""Every domain's routers: in the order they appear in the OpenAPI document (``ROUTERS``) and
in the order requests are matched against them (``MATCH_ORDER``)."""

from __future__ import annotations

from fastapi import APIRouter

from api.alerts.views import router as alerts_router
from api.audit.views import router as audit_router
from api.bikes.views import router as bikes_router
from api.cameras.views import router as cameras_router
from api.console.views import config_router as console_config_router
from api.console.views import router as console_router
from api.events.views import router as events_router
from api.live.views import router as live_router
from api.network.views import router as network_router
from api.notifications.views import router as notifications_router
from api.photos.views import router as photos_router
from api.public.views import router as public_router
from api.readers.views import router as readers_router
from api.stats.views import router as stats_router
from api.thefts.views import router as thefts_router
from api.tracking.views import router as routes_router
from api.unknown_readers.views import router as unknown_readers_router
from api.users.views import auth_router
from api.users.views import router as users_router

ROUTERS: tuple[APIRouter, ...] = (
    auth_router,
    users_router,
    events_router,
    bikes_router,
    photos_router,
    thefts_router,
    notifications_router,
    routes_router,
    live_router,
    alerts_router,
    cameras_router,
    readers_router,
    unknown_readers_router,
    audit_router,
    stats_router,
    network_router,
    public_router,
    console_config_router,
    console_router,
)

# Starlette tries a request's path against every route in turn, so the officers' hot lookups
# (route, last seen, next readers: ~60 routes are behind them in document order) come first.
# No path of one router matches another's, so the order changes nothing but the time it takes
# (tests/http_api/test_route_matching_order.py).
MATCH_ORDER: tuple[APIRouter, ...] = (
    routes_router,
    *(router for router in ROUTERS if router is not routes_router),
)
