"""How strong the simulator's habits are: ``tagtrail bench habits``.

Two figures, both from ground truth (no reads needed): how often riders take their usual path
to work over a run of working days, with habits and without; and how the shared route
preferences move the ridden kilometres (arterials, lanes, the favoured bridge, the busy
junctions), with habits on, preferences on and off.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from citymap.network import City
from citymap.network_files import load_roads
from simulators.city import generate_city
from simulators.habits import Habits
from simulators.preferences import RoutePreferences, busy_junctions, favoured_bridge_edges
from simulators.riders import Population, generate_population
from simulators.scenario import DEFAULT_START


def usual_path_shares(pop: Population) -> list[float]:
    """Per rider with 3+ home-to-work trips: the share of them on the rider's most ridden
    path."""
    paths = pop.visits.groupby("trip_id")["node"].apply(tuple)
    commutes = pop.trips[pop.trips["kind"] == "commute"]
    shares = []
    for _, mine in commutes.groupby("bike_id"):
        bike = pop.bikes[int(mine["bike_id"].iloc[0])]
        out = mine[(mine["from_node"] == bike.home_node) & (mine["to_node"] == bike.work_node)]
        if len(out) >= 3:
            counts = pd.Series(paths.loc[out["trip_id"]].tolist()).value_counts()
            shares.append(float(counts.iloc[0]) / len(out))
    return shares


def ridden_shares(city: City, pop: Population, prefs: RoutePreferences) -> dict[str, float]:
    """Share of ridden km on arterials and lanes, share of river crossings on the favoured
    bridge, and entries into the busy junctions per 100 km (riders' trips only)."""
    riders = pop.trips.loc[pop.trips["kind"].isin(["commute", "errand"]), "trip_id"]
    v = pop.visits[pop.visits["trip_id"].isin(riders) & (pop.visits["edge_in"] >= 0)]
    edges = v["edge_in"].to_numpy()
    length = city.edge_length_m[edges]
    cls = city.edge_class[edges]
    km = float(length.sum()) / 1000.0
    bridges = edges[cls == "bridge"]
    busy = np.isin(city.edge_dst[edges], busy_junctions(city, prefs.busy_junctions))
    return {
        "km": round(km, 1),
        "arterial_km_share": round(float(length[cls == "arterial"].sum()) / 1000.0 / km, 3),
        "lane_km_share": round(float(length[cls == "lane"].sum()) / 1000.0 / km, 3),
        "favoured_bridge_share": round(
            float(np.isin(bridges, favoured_bridge_edges(city)).mean()) if len(bridges) else 0.0,
            3,
        ),
        "busy_junction_entries_per_100km": round(100.0 * float(busy.sum()) / km, 2),
    }


def measure(
    *, seed: int, bikes: int, days: int, size_m: float, roads: str | None = None
) -> dict[str, Any]:
    """The habit figures of ``days`` working days (from a Monday) on a generated city, or on
    the ``roads`` file (``.npz``, ``.osm``, ``.osm.pbf``)."""
    city = load_roads(roads) if roads else generate_city(seed=seed, size_m=size_m)
    common: dict[str, Any] = {"seed": seed + 2, "bikes": bikes, "start": DEFAULT_START,
                              "hours": 24.0 * days, "thefts": 0}  # fmt: skip
    prefs = RoutePreferences()
    habits = generate_population(city, **common, habits=Habits(preferences=prefs))
    no_prefs = generate_population(city, **common, habits=Habits(preferences=None))
    plain = generate_population(city, **common)
    with_habits, without = usual_path_shares(habits), usual_path_shares(plain)
    return {
        "seed": seed, "bikes": bikes, "days": days, "size_m": None if roads else size_m,
        "roads": roads,
        "first_day": (DEFAULT_START + timedelta(hours=8)).date().isoformat(),
        "riders_measured": len(with_habits),
        "usual_path_share": round(float(np.mean(with_habits)), 3),
        "usual_path_share_without_habits": round(float(np.mean(without)), 3),
        "with_preferences": ridden_shares(city, habits, prefs),
        "without_preferences": ridden_shares(city, no_prefs, prefs),
    }  # fmt: skip
