"""OpenAPI additions: the bearer scheme, the roles of each operation (``x-roles``, read from
its :func:`api.deps.require` dependency) and problem+json error responses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from api.deps import allowed_roles_of

_PROBLEM = {
    "application/problem+json": {
        "schema": {
            "type": "object",
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
            },
        },
        "example": {
            "type": "https://tagtrail.example/problems/forbidden",
            "title": "Forbidden",
            "status": 403,
            "detail": "a resident may not do this; allowed: officer",
        },
    }
}


# The answers every location lookup (route, exports, cameras, last seen, next readers,
# companions, live streams) may give besides 200: declared once, on their routers, so an
# integrator's generated client knows them. Their bodies are problem+json (install_openapi).
LOOKUP_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "Bad request: a time without a zone, since after until, "
        "a window over 31 days"
    },
    403: {"description": "Role not allowed"},
    404: {
        "description": "Not found: no such plate, bike, theft or case, or never seen "
        "(the lookup is audited all the same)"
    },
    422: {
        "description": "Invalid request: a parameter out of range, no case number nor a reason "
        "that says something, or a closed case"
    },
}


def route_roles(route: APIRoute) -> frozenset[str] | None:
    """The roles the route admits, or None for an open route."""

    def walk(dep: Dependant) -> frozenset[str] | None:
        if dep.call is not None:
            roles = allowed_roles_of(dep.call)
            if roles is not None:
                return roles
        for sub in dep.dependencies:
            found = walk(sub)
            if found is not None:
                return found
        return None

    return walk(route.dependant)


def api_routes(routers: Iterable[APIRouter]) -> list[APIRoute]:
    """Every operation of the routers (their paths carry the routers' prefixes)."""
    return [r for router in routers for r in router.routes if isinstance(r, APIRoute)]


def install_openapi(app: FastAPI, routers: Iterable[APIRouter]) -> None:
    """Generate the schema once, with roles and error responses on every operation.

    The routes are kept on ``app.state.api_routes`` for the role × endpoint test.
    """
    routes = api_routes(routers)
    app.state.api_routes = routes

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        # From the routers in document order (the app matches requests in another order).
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=routes
        )
        for route in routes:
            if not route.include_in_schema:
                continue
            roles = route_roles(route)
            for method in route.methods or ():
                op = schema["paths"][route.path_format].get(method.lower())
                if op is None:
                    continue
                responses = op.setdefault("responses", {})
                if roles is not None:
                    op["x-roles"] = sorted(roles)
                    op["security"] = [{"OAuth2PasswordBearer": []}]
                    responses.setdefault("401", {"description": "Not authenticated"})
                    responses.setdefault("403", {"description": "Role not allowed"})
                for code, response in responses.items():
                    if code.startswith(("4", "5")):
                        response.setdefault("description", "Problem")
                        response["content"] = _PROBLEM
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
