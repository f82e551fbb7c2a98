"""Ground truth of a simulated day, prepared for scoring routes against it: the observable
span of every scorable trip, its true edges and per-second positions, and the cloned tags."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from citymap.network import City
from simulators.readers import SimReader
from track_engine.route_result import Route

_US_PER_S = 1_000_000


@dataclass(frozen=True)
class Truth:
    """Ground truth prepared for scoring."""

    heard: pd.DataFrame
    spans: pd.DataFrame
    edges: pd.DataFrame
    positions: pd.DataFrame
    cloned_tags: frozenset[str]
    # Cloned tags whose two bikes ride at the same time at least once (the rest: the copy
    # rides only while its original is parked).
    cloned_riding_together: frozenset[str] = frozenset()
    # Cloned tags heard on two bikes (a copy no reader heard cannot be told from none).
    cloned_heard_both: frozenset[str] = frozenset()


def prepare_truth(
    city: City,
    readers: list[SimReader],
    population: Any,
    traj: pd.DataFrame,
    true_passages: pd.DataFrame,
) -> Truth:
    """Observable spans, true edges and per-second positions of every scorable trip."""
    tag_of = pd.Series({b.bike_id: b.tag_id for b in population.bikes})
    counts = tag_of.value_counts()
    cloned = frozenset(str(t) for t in counts[counts > 1].index)
    node_of = {r.reader_id: r.node for r in readers}
    heard = true_passages[true_passages["heard"].astype(bool) & (true_passages["reads"] > 0)]
    heard = heard.assign(
        tag_id=heard["tag_id"].astype(str),
        reader_id=heard["reader_id"].astype(str),
        closest_at_us=heard["closest_at_us"].astype(np.int64),
        bike_id=heard["bike_id"].astype(np.int64),
    )
    trips = population.trips[["trip_id", "bike_id", "start_us", "end_us"]].astype(np.int64)
    on_trip = pd.merge_asof(
        heard.sort_values("closest_at_us"),
        trips.sort_values("start_us"),
        left_on="closest_at_us",
        right_on="start_us",
        by="bike_id",
        direction="backward",
    ).dropna(subset=["trip_id"])
    on_trip = on_trip[on_trip["closest_at_us"] <= on_trip["end_us"] + 5 * _US_PER_S]
    on_trip = on_trip.assign(
        trip_id=on_trip["trip_id"].astype(np.int64),
        node=on_trip["reader_id"].map(node_of).astype(np.int64),
    )
    visits = population.visits[["trip_id", "seq", "node", "arrive_us"]].astype(np.int64)
    located = pd.merge_asof(
        on_trip.sort_values("closest_at_us"),
        visits.sort_values("arrive_us"),
        left_on="closest_at_us",
        right_on="arrive_us",
        by=["trip_id", "node"],
        direction="nearest",
        tolerance=60 * _US_PER_S,
    ).dropna(subset=["seq"])
    span = located.groupby("trip_id").agg(
        seq_lo=("seq", "min"),
        seq_hi=("seq", "max"),
        start_us=("closest_at_us", "min"),
        end_us=("closest_at_us", "max"),
        bike_id=("bike_id", "first"),
    )
    span = span[span["seq_hi"] > span["seq_lo"]].reset_index()
    span["tag_id"] = span["bike_id"].map(tag_of).astype(str)
    span = span[~span["tag_id"].isin(cloned)].reset_index(drop=True)
    whole = trips.rename(columns={"start_us": "trip_start_us", "end_us": "trip_end_us"})
    span = span.merge(whole[["trip_id", "trip_start_us", "trip_end_us"]], on="trip_id")

    v = visits.sort_values(["trip_id", "seq"])
    v = v.assign(src=v.groupby("trip_id")["node"].shift(1))
    v = v.merge(span[["trip_id", "seq_lo", "seq_hi"]], on="trip_id")
    inside = (v["seq"] > v["seq_lo"]) & (v["seq"] <= v["seq_hi"]) & v["src"].notna()
    edges = v.loc[inside, ["trip_id", "src", "node"]].rename(columns={"node": "dst"})
    edges = edges.astype({"src": np.int64, "dst": np.int64})

    t = traj[["trip_id", "t_us", "x_m", "y_m"]].astype({"trip_id": np.int64, "t_us": np.int64})
    t = t[t["t_us"] % _US_PER_S == 0].merge(span[["trip_id", "tag_id", "start_us", "end_us"]])
    positions = t[(t["t_us"] >= t["start_us"]) & (t["t_us"] <= t["end_us"])]
    positions = positions[["trip_id", "tag_id", "t_us", "x_m", "y_m"]].reset_index(drop=True)
    return Truth(
        heard=heard[["tag_id", "reader_id", "closest_at_us"]],
        spans=span[
            [
                "trip_id",
                "tag_id",
                "start_us",
                "end_us",
                "trip_start_us",
                "trip_end_us",
                "seq_lo",
                "seq_hi",
            ]
        ].astype({"seq_lo": np.int64, "seq_hi": np.int64}),
        edges=edges.reset_index(drop=True),
        positions=positions,
        cloned_tags=cloned,
        cloned_riding_together=_riding_together(population, cloned),
        cloned_heard_both=frozenset(
            str(t) for t, n in heard.groupby("tag_id")["bike_id"].nunique().items() if n > 1
        )
        & cloned,
    )


def _riding_together(population: Any, cloned: frozenset[str]) -> frozenset[str]:
    """Cloned tags two of whose bikes are on a trip at the same moment at least once."""
    trips = population.trips
    out = set()
    for tag in cloned:
        bikes = [b.bike_id for b in population.bikes if b.tag_id == tag]
        mine = trips[trips["bike_id"].isin(bikes)]
        spans = sorted(zip(mine["start_us"], mine["end_us"], mine["bike_id"], strict=True))
        if any(a[2] != b[2] and b[0] < a[1] for i, a in enumerate(spans) for b in spans[i + 1 :]):
            out.add(tag)
    return frozenset(out)


def clone_kinds(routes: dict[str, Route], truth: Truth) -> dict[str, int]:
    """Clone hits split by whether the copy rode at the same time as its original."""
    together = truth.cloned_riding_together
    parked = truth.cloned_tags - together
    flagged = {t for t in truth.cloned_tags if t in routes and routes[t].clone_suspected}
    both = truth.cloned_heard_both
    return {
        "clone_tags_heard_both": len(both),
        "clone_hits_heard_both": len(flagged & both),
        "clone_tags_together": len(together),
        "clone_hits_together": len(flagged & together),
        "clone_tags_parked": len(parked),
        "clone_hits_parked": len(flagged & parked),
    }
