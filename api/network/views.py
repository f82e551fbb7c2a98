"""GET /api/v1/network: the base map drawn from TagTrail's own road network."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import ConnDep, NetworkDep, OperatorDep
from api.network.service import network_geojson

router = APIRouter(prefix="/api/v1/network", tags=["network"])


@router.get("")
def get_network(conn: ConnDep, network: NetworkDep, principal: OperatorDep) -> dict[str, Any]:
    """Roads and readers of the active network as GeoJSON. Where every reader stands is for
    the staff whose pages draw the map (officer's case view, operator), not for anyone.
    Roles: admin, officer, operator."""
    del principal
    return network_geojson(network.get(conn))
