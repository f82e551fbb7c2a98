"""HTML pages of the console. The map works offline: its base layer is our own road network."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)


def _page(name: str) -> str:
    return resources.files("api").joinpath("static", name).read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse)
def index() -> str:
    """Search page: type a plate, see its route."""
    return _page("index.html")


@router.get("/routes/{plate}", response_class=HTMLResponse)
def route_page(plate: str) -> str:
    """Map of one bike's route (the page fetches /api/v1/routes/{plate})."""
    del plate  # the page reads it from its own URL
    return _page("route.html")
