"""GET /api/v1/network: the base map drawn from TagTrail's own road network."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import ConnDep, NetworkDep, OperatorDep

router = APIRouter(prefix="/api/v1/network", tags=["network"])


@router.get("")
def get_network(conn: ConnDep, network: NetworkDep, principal: OperatorDep) -> dict[str, Any]:
    """Roads (named streets merged per name) and readers (with their addresses) of the active
    network as GeoJSON. Where every reader stands is for the staff whose pages draw the map
    (officer's case view, operator), not for anyone. Roles: admin, officer, operator."""
    del principal
    return network.get(conn).base_map
