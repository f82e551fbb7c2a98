"""Where now and where to intercept, scored against the simulator's ground truth.

**Where now.** A case is a passage the engine stored (the bike's "last sighting") followed by
at least ``minutes`` of silence from every reader (its next passage later, or none). The map
of :func:`track_engine.where_now.where_now` at ``minutes`` after the sighting, with every other
reader silent at its registry miss rate, is asked whether its 90% region holds the bike's true
position then (the simulator's trajectory; a parked bike stays where its last trip ended). The
baseline is the reach circle an officer would draw (radius: top e-bike speed x time).

**Intercept.** A case is two consecutive sightings (different readers) of one tag in truth;
:func:`api.tracking.prediction.predict_next_readers` is given the first and the transitions of
the *other* tags' stored passages before it (what the store's 30-day history holds), and
scored on whether the true next reader is in its top 3, and whether the true passage time is
inside the ETA window: the road distance at the same e-bike speeds as the map (10–32 km/h).
The baseline ranks the nearest readers by road.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from api.tracking.prediction import predict_next_readers
from api.tracking.values import LastSeen, Transitions
from track_engine.intercept import next_readers_by_model
from track_engine.roads import ReaderPaths, RoadGraph
from track_engine.where_now import SpeedModel, silent_readers, where_now

MINUTES = (5, 15, 30)
MASS = 0.9
TRANSITION_MAX_S = 30 * 60  # the store's "went next within 30 minutes"
_US = 1_000_000


@dataclass(frozen=True)
class _Net:
    """What :func:`predict_next_readers` reads from a loaded network."""

    reader_paths: ReaderPaths


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


def score_intercept(
    reader_paths: ReaderPaths,
    passages: pd.DataFrame,
    heard: pd.DataFrame,
    *,
    skip_tags: frozenset[str],
    seed: int,
    cases: int = 300,
) -> dict[str, Any]:
    """How often the true next reader is in the top 3 of the next-readers answer (and of the
    nearest-readers baseline), and its passage inside the ETA window."""
    steps = _next_steps(heard[~heard["tag_id"].isin(skip_tags)], TRANSITION_MAX_S)
    steps = steps[steps["reader_id"].isin(reader_paths.reader_node)]
    steps = steps[steps["next_reader"].isin(reader_paths.reader_node)]
    if steps.empty:
        return {"intercept_top3": None, "eta_window_hit": None, "nearest_top3": None,
                "intercept_cases": 0, "intercept_from_history": None,
                "model_top3": None}  # fmt: skip
    rng = np.random.default_rng(seed)
    steps = steps.iloc[rng.choice(len(steps), min(cases, len(steps)), replace=False)]
    fleet = _next_steps(passages, TRANSITION_MAX_S)
    speeds = SpeedModel()
    net = _Net(reader_paths)
    top3: list[bool] = []
    window: list[bool] = []
    nearest: list[bool] = []
    from_history: list[bool] = []
    by_model: list[bool] = []
    for tag, reader, at_us, next_reader, next_us in zip(
        steps["tag_id"].astype(str).tolist(), steps["reader_id"].astype(str).tolist(),
        steps["closest_at_us"].astype(np.int64).tolist(),
        steps["next_reader"].astype(str).tolist(), steps["next_at_us"].tolist(), strict=True,
    ):  # fmt: skip
        seen = LastSeen(
            tag_id=tag, reader_id=reader, at=datetime.fromtimestamp(at_us / _US, UTC),
            lon=None, lat=None, source="passage",
        )  # fmt: skip
        answer = predict_next_readers(net, seen, _history(fleet, reader, at_us, tag), 3)
        top3.append(next_reader in [n.reader_id for n in answer])
        from_history.append(bool(answer) and answer[0].source == "history")
        d = reader_paths.distance_m(reader, next_reader)
        travel = (next_us - at_us) / _US
        window.append(bool(d / (speeds.max_kmh / 3.6) <= travel <= d / (speeds.min_kmh / 3.6)))
        model = next_readers_by_model(
            reader_paths.graph, reader_paths.reader_node[reader], _elsewhere(reader_paths, reader),
            {r: reader_paths.miss_rate_of(r) for r in reader_paths.reader_ids},
        )  # fmt: skip
        by_model.append(next_reader in [i.reader_id for i in model])
        base = predict_next_readers(net, seen, [], 3)
        nearest.append(next_reader in [n.reader_id for n in base])
    return {
        "intercept_top3": _mean(top3, 3),
        "eta_window_hit": _mean(window, 3),
        "nearest_top3": _mean(nearest, 3),
        "intercept_cases": len(top3),
        "intercept_from_history": _mean(from_history, 3),
        "model_top3": _mean(by_model, 3),
    }


def _elsewhere(paths: ReaderPaths, seen: str, place_m: float = 40.0) -> dict[str, int]:
    """Reader -> node of every reader but those of ``seen``'s own place."""
    i = paths.reader_ids.index(seen)
    row, col = paths.distance_matrix_m[i], paths.distance_matrix_m[:, i]
    return {
        r: paths.reader_node[r]
        for j, r in enumerate(paths.reader_ids)
        if min(row[j], col[j]) > place_m
    }


def _next_steps(frame: pd.DataFrame, max_gap_s: float) -> pd.DataFrame:
    """Each sighting with the tag's next sighting at another reader within ``max_gap_s``."""
    f = frame.sort_values(["tag_id", "closest_at_us"])[["tag_id", "reader_id", "closest_at_us"]]
    grouped = f.groupby("tag_id")
    f = f.assign(
        next_reader=grouped["reader_id"].shift(-1), next_at_us=grouped["closest_at_us"].shift(-1)
    ).dropna(subset=["next_reader"])
    f = f[(f["next_reader"] != f["reader_id"])]
    return f[(f["next_at_us"] - f["closest_at_us"]) <= max_gap_s * _US].astype(
        {"next_at_us": np.int64}
    )


def _history(fleet: pd.DataFrame, reader: str, before_us: int, tag: str) -> Transitions:
    """The store's transitions of ``reader`` before ``before_us``, other tags only."""
    mine = fleet[
        (fleet["reader_id"] == reader)
        & (fleet["next_at_us"] < before_us)
        & (fleet["tag_id"] != tag)
    ]
    if mine.empty:
        return []
    travel = (mine["next_at_us"] - mine["closest_at_us"]) / _US
    agg = travel.groupby(mine["next_reader"]).agg(["size", "median"]).reset_index()
    agg = agg.sort_values(["size", "median"], ascending=[False, True])
    return [(str(r), int(n), float(s)) for r, n, s in agg.itertuples(index=False)]


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
) -> dict[str, Any]:
    """The where-now and intercept columns of one ``tagtrail`` row of the accuracy bench."""
    tag_of = {b.bike_id: str(b.tag_id) for b in population.bikes}
    stolen = frozenset(tag_of[t.bike_id] for t in population.thefts) - cloned_tags
    scored = score_where_now(
        graph, reader_paths, passages, positions, stolen_tags=stolen, skip_tags=cloned_tags,
        seed=seed,
    )  # fmt: skip
    return scored | score_intercept(reader_paths, passages, heard, skip_tags=cloned_tags, seed=seed)
