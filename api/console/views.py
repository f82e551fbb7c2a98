"""The web console: one HTML page per desk, and the little configuration its scripts need.

The pages are static shells; their scripts (``/static/*.js``, plain ES modules) call the API
with the bearer token kept in the tab's session storage. The map works offline: its base
layer is our own road network; ``tile_url`` only adds an optional background.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from api.deps import AnyUserDep, ConfigDep

router = APIRouter(include_in_schema=False)
config_router = APIRouter(prefix="/api/v1/console", tags=["console"])

# URL path -> page file. The route page keeps its address (/routes/{plate}) for `make demo`.
PAGES = {
    "/": "index.html",
    "/officer": "officer.html",
    "/desk": "desk.html",
    "/registration": "registration.html",
    "/resident": "resident.html",
    "/operator": "operator.html",
    "/audit": "audit.html",
    "/check": "check.html",
    "/notices": "notices.html",
}


def _page(name: str) -> str:
    return resources.files("api").joinpath("static", name).read_text(encoding="utf-8")


def _serve(name: str) -> HTMLResponse:
    # Pages are tiny and change with the release: no caching keeps a deploy visible at once.
    return HTMLResponse(_page(name), headers={"Cache-Control": "no-cache"})


def _add_page(path: str, name: str) -> None:
    def page() -> HTMLResponse:
        return _serve(name)

    page.__name__ = f"page_{name.removesuffix('.html')}"
    page.__doc__ = f"The console page {name}."
    router.add_api_route(path, page, methods=["GET"], response_class=HTMLResponse)


for _path, _name in PAGES.items():
    _add_page(_path, _name)


@router.get("/routes/{plate}", response_class=HTMLResponse)
def route_page(plate: str) -> HTMLResponse:
    """A bike's case view: route map, passages, replay, last seen, next readers, cameras."""
    del plate  # the page reads it from its own URL
    return _serve("route.html")


class ConsoleConfig(BaseModel):
    """What the console's scripts need to know about this deployment."""

    tile_url: str | None = Field(
        description="optional background tiles ({z}/{x}/{y}); the base map is our road network"
    )
    live_poll_s: float = Field(description="how often live streams look for news")


@config_router.get("/config")
def console_config(principal: AnyUserDep, config: ConfigDep) -> ConsoleConfig:
    """Settings the console needs (optional tile server). Roles: any."""
    del principal
    return ConsoleConfig(tile_url=config.tile_url, live_poll_s=config.live_poll_s)
