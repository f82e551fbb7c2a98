"""Where now and where to intercept, scored against the simulator's ground truth.

**Where now.** A case is a passage the engine stored (the bike's "last sighting") followed by
at least ``minutes`` of silence from every reader (its next passage later, or none). The map
of :func:`track_engine.where_now.where_now` at ``minutes`` after the sighting, with every other
reader silent at its registry miss rate, is asked whether its 90% region holds the bike's true
position then (the simulator's trajectory; a parked bike stays where its last trip ended). The
baseline is the reach circle an officer would draw (radius: top e-bike speed x time).

**Intercept** is scored by :mod:`tagtrail.bench.engine_intercept`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tagtrail.bench.engine_intercept import first_steps, score_intercept
from track_engine.roads import ReaderPaths, RoadGraph
from track_engine.where_now import SpeedModel, silent_readers, where_now

MINUTES = (5, 15, 30)
MASS = 0.9
_US = 1_000_000


def score_where_now(
    graph: RoadGraph,
    reader_paths: ReaderPaths,
    passages: pd.DataFrame,
    positions: pd.DataFrame,
    *,
    stolen_tags: frozenset[str],
    skip_tags: frozenset[str],
    seed: int,
    cases: int = 150,
    speeds: SpeedModel | None = None,
) -> dict[str, Any]:
    """Hit rate and mean area of the 90% region (and of the reach circle), by minutes after
    the last sighting. ``positions``: tag_id, t_us, x_m, y_m of every tag's bike over the day
    (sorted by t_us); ``stolen_tags`` are all scored, the others sampled to ``cases``."""
    ordered = passages[~passages["tag_id"].isin(skip_tags)].sort_values(["tag_id", "closest_at_us"])
    nxt = ordered.groupby("tag_id")["closest_at_us"].shift(-1)
    gap_s = ((nxt - ordered["closest_at_us"]) / _US).fillna(np.inf)
    by_tag = {str(t): g for t, g in positions.groupby("tag_id", sort=False)}
    silent = {r: silent_readers(reader_paths, r) for r in reader_paths.reader_ids}
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {k: {} for k in ("where_now_hit", "where_now_area_km2")}
    out |= {"reach_area_km2": {}, "where_now_cases": {}, "where_now_stolen_hit": {}}
    out["where_now_stolen_cases"] = {}
    for minutes in MINUTES:
        pool = ordered[gap_s.to_numpy() > minutes * 60]
        pool = pool[pool["reader_id"].isin(reader_paths.reader_node)]
        stolen = pool[pool["tag_id"].isin(stolen_tags)]
        others = pool[~pool["tag_id"].isin(stolen_tags)]
        pick = rng.choice(len(others), min(cases, len(others)), replace=False)
        chosen = pd.concat([stolen.assign(stolen=True), others.iloc[pick].assign(stolen=False)])
        hits, areas, reach, stolen_hits = [], [], [], []
        for tag, reader, at_us, is_stolen in zip(
            chosen["tag_id"].astype(str), chosen["reader_id"].astype(str),
            chosen["closest_at_us"].astype(np.int64), chosen["stolen"], strict=True,
        ):  # fmt: skip
            true_xy = _position(by_tag.get(tag), int(at_us) + minutes * 60 * _US)
            if true_xy is None:
                continue
            found = where_now(
                graph,
                reader_paths.reader_node[reader],
                minutes * 60.0,
                silent[reader],
                speeds=speeds,
            )
            hit = found.contains(*true_xy, mass=MASS)
            hits.append(hit)
            areas.append(found.region_area_km2(MASS))
            reach.append(found.reach_area_km2())
            if is_stolen:
                stolen_hits.append(hit)
        key = str(minutes)
        out["where_now_hit"][key] = _mean(hits, 3)
        out["where_now_area_km2"][key] = _mean(areas, 3)
        out["reach_area_km2"][key] = _mean(reach, 3)
        out["where_now_cases"][key] = len(hits)
        out["where_now_stolen_hit"][key] = _mean(stolen_hits, 3)
        out["where_now_stolen_cases"][key] = len(stolen_hits)
    return out


def _position(track: pd.DataFrame | None, t_us: int) -> tuple[float, float] | None:
    """The bike's true position at ``t_us``: its last trajectory sample at or before then
    (a parked bike stays where its last trip ended); None before its first trip."""
    if track is None:
        return None
    times = track["t_us"].to_numpy()
    i = int(np.searchsorted(times, t_us, side="right")) - 1
    if i < 0:
        return None
    return float(track["x_m"].iloc[i]), float(track["y_m"].iloc[i])


def _mean(values: list[bool] | list[float], digits: int) -> float | None:
    return round(float(np.mean(values)), digits) if values else None


def tag_positions(population: Any, traj: pd.DataFrame) -> pd.DataFrame:
    """Every bike's true position once a second over the day, by its tag (tag_id, t_us, x_m,
    y_m, sorted by time)."""
    bike_of = population.trips.set_index("trip_id")["bike_id"]
    tag_of = {b.bike_id: str(b.tag_id) for b in population.bikes}
    t = traj[traj["t_us"] % _US == 0][["trip_id", "t_us", "x_m", "y_m"]]
    tags = t["trip_id"].map(bike_of).map(tag_of)
    out = t.assign(tag_id=tags).dropna(subset=["tag_id"])
    return out[["tag_id", "t_us", "x_m", "y_m"]].sort_values("t_us", kind="mergesort")


def where_now_columns(
    graph: RoadGraph,
    reader_paths: ReaderPaths,
    passages: pd.DataFrame,
    heard: pd.DataFrame,
    positions: pd.DataFrame,
    population: Any,
    *,
    cloned_tags: frozenset[str],
    seed: int,
    history: pd.DataFrame | None = None,
    true_passages: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The where-now and intercept columns of one ``tagtrail`` row of the accuracy bench;
    ``history``: stored passages of the history day(s) the intercept answer may use."""
    tag_of = {b.bike_id: str(b.tag_id) for b in population.bikes}
    stolen = frozenset(tag_of[t.bike_id] for t in population.thefts) - cloned_tags
    scored = score_where_now(
        graph, reader_paths, passages, positions, stolen_tags=stolen, skip_tags=cloned_tags,
        seed=seed,
    )  # fmt: skip
    steps = first_steps(population, heard, reader_paths.reader_node)
    return scored | score_intercept(
        reader_paths, passages, heard, skip_tags=cloned_tags, seed=seed, history=history,
        true_passages=true_passages, first_steps=steps,
    )  # fmt: skip
