"""Route preferences every rider shares: which roads feel cheaper or dearer than their length.

Real riders do not take the shortest path: they prefer cycleways and lanes, have an opinion
about main roads, all cross the river on the same pleasant bridge and avoid a few busy
junctions. :class:`RoutePreferences` holds those tastes as multipliers of an edge's length;
:func:`edge_factors` turns them into one factor per directed edge of a city, which
:class:`simulators.routing.Router` applies to every rider variant (vans keep their own costs).
Everything here is a pure function of the city, so every run on that city shares it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from citymap.network import City

# Bridge edges within this distance of the favoured one are the same bridge (OSM splits a
# bridge into several ways).
_SAME_BRIDGE_M = 80.0


@dataclass(frozen=True)
class RoutePreferences:
    """Edge-cost multipliers (1.0: neutral, below 1: preferred, above 1: avoided).

    ``lane`` applies to cycleways, paths and estate / campus lanes; ``arterial`` to main roads;
    ``favoured_bridge`` to the bridge nearest the city centre and ``other_bridges`` to every
    other bridge; ``busy_junction`` to every edge entering one of the ``busy_junctions``
    arterial crossings nearest the centre.
    """

    lane: float = 0.6
    arterial: float = 0.85
    favoured_bridge: float = 0.5
    other_bridges: float = 3.0
    busy_junction: float = 4.0
    busy_junctions: int = 3

    def __post_init__(self) -> None:
        factors = (self.lane, self.arterial, self.favoured_bridge, self.other_bridges,
                   self.busy_junction)  # fmt: skip
        if min(factors) <= 0 or self.busy_junctions < 0:
            raise ValueError("route preference factors must be > 0 and busy_junctions >= 0")


def _centre(city: City) -> NDArray[np.float64]:
    return np.asarray(city.node_xy_m.mean(axis=0), np.float64)


def favoured_bridge_edges(city: City) -> NDArray[np.int64]:
    """Edges of the favoured bridge: the bridge nearest the city centre (none without one)."""
    bridges = np.flatnonzero(city.edge_class == "bridge")
    if not len(bridges):
        return bridges.astype(np.int64)
    mid = (city.node_xy_m[city.edge_src[bridges]] + city.node_xy_m[city.edge_dst[bridges]]) / 2
    best = mid[np.argmin(np.hypot(*(mid - _centre(city)).T))]
    same: NDArray[np.int64] = bridges[np.hypot(*(mid - best).T) <= _SAME_BRIDGE_M]
    return same.astype(np.int64)


def busy_junctions(city: City, count: int) -> NDArray[np.int64]:
    """The ``count`` nodes where main roads cross (4+ arterial edge ends) nearest the centre,
    but not at the ends of the favoured bridge (the two tastes would cancel out)."""
    art = city.edge_class == "arterial"
    ends = np.bincount(city.edge_src[art], minlength=city.n_nodes) + np.bincount(
        city.edge_dst[art], minlength=city.n_nodes
    )
    ends[city.edge_src[favoured_bridge_edges(city)]] = 0
    crossings = np.flatnonzero(ends >= 4)
    d = np.hypot(*(city.node_xy_m[crossings] - _centre(city)).T)
    return crossings[np.argsort(d, kind="stable")[:count]].astype(np.int64)


def edge_factors(city: City, prefs: RoutePreferences) -> NDArray[np.float64]:
    """One cost multiplier per directed edge of ``city`` (multiply the length by it)."""
    cls = city.edge_class
    factor = np.select(
        [cls == "lane", cls == "arterial", cls == "bridge"],
        [prefs.lane, prefs.arterial, prefs.other_bridges],
        default=1.0,
    ).astype(np.float64)
    factor[favoured_bridge_edges(city)] = prefs.favoured_bridge
    busy = np.isin(city.edge_dst, busy_junctions(city, prefs.busy_junctions))
    factor[busy] *= prefs.busy_junction
    return factor
