"""The API matches requests against its routers in another order than it documents them
(officers' hot lookups first, api/routers.py): safe only while no path of one router is also a
path of another, which this checks for every operation."""

from __future__ import annotations

import re

from fastapi.routing import APIRoute
from starlette.routing import Match

from api.routers import MATCH_ORDER, ROUTERS


def _concrete(path: str) -> str:
    """The route's path with every parameter filled in."""
    return re.sub(r"\{[^}]+\}", "1", path)


def _scope(path: str, method: str) -> dict[str, object]:
    return {"type": "http", "path": path, "method": method, "root_path": ""}


def test_match_order_holds_every_router_once() -> None:
    assert sorted(map(id, MATCH_ORDER)) == sorted(map(id, ROUTERS))


def test_no_operation_of_one_router_is_matched_by_another_router() -> None:
    overlaps = []
    for router in ROUTERS:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            path = _concrete(route.path)
            for method in route.methods:
                for other in ROUTERS:
                    if other is router:
                        continue
                    for candidate in other.routes:
                        match, _ = candidate.matches(_scope(path, method))
                        if match == Match.FULL:
                            overlaps.append((method, route.path, getattr(candidate, "path", "")))
    assert overlaps == []


def test_the_hot_lookups_are_matched_first() -> None:
    paths = [r.path for r in MATCH_ORDER[0].routes if isinstance(r, APIRoute)]
    assert "/api/v1/routes/{plate}" in paths
    assert "/api/v1/bikes/{bike_id}/last-seen" in paths
    assert "/api/v1/bikes/{bike_id}/next-readers" in paths
