"""Where to intercept, scored against the simulator's ground truth (issue #18 item 3).

A *case* is two consecutive true sightings of one tag at different readers (heard, within
30 minutes; 300 sampled). Every answer is given the first sighting, the bike's previous one
(another reader within 30 minutes before, when there is one) and the history a deployment
would hold at that moment: the transitions of the stored passages of the history days (another
day, or the earlier mornings of a ``--days`` run) and of the scored day before the sighting.
Scored: whether the true next reader is in the answer's top 3, and whether its true passage
time falls inside the ETA window (with the window's median width, so that a window cannot be
made trivially wide).

Answers, all on the same cases (``intercept_variants``):

* ``nearest``   — the nearest readers by road (the baseline);
* ``history``   — the earlier API answer: the reader's departures when it has 5 or more, the
  nearest readers by road after them;
* ``road``      — the road model (:mod:`track_engine.intercept`) without the heading;
* ``heading``   — the road model given the way the bike came;
* ``fleet``, ``fleet+heading``, ``blend`` — :func:`track_engine.next_readers.blend_next_readers`
  with the fleet's departures from the reader, then also those of tags that came the same way,
  then also the tag's own;
* ``api`` — :func:`api.tracking.prediction.predict_next_readers`, the product's answer
  (``intercept_top3``), with its ETA window (``eta_window_hit``).

Bounds (``intercept_bounds``): how often the true next reader is within the road model's
horizon at all (``reachable``), how often the first reader the bike really passed missed it
(``behind_missed``: the true next reader is then a second-ring one), and the road model given
the true first step from the sighting (``oracle_step``: the bound a way-guess can reach).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from api.tracking.prediction import predict_next_readers
from api.tracking.values import LastSeen
from tagtrail.bench.engine_intercept_variants import (
    BLEND,
    BLENDS,
    HEADINGS,
    HORIZONS,
    WINDOW,
    WINDOWS,
)
from track_engine.intercept import (
    Heading,
    came_from_node,
    next_readers_by_model,
    other_readers,
)
from track_engine.next_readers import Departures, TravelTimes, blend_next_readers
from track_engine.roads import ReaderPaths

TRANSITION_MAX_S = 30 * 60  # the store's "went next within 30 minutes"
HORIZON_M = 1000.0
_US = 1_000_000


@dataclass(frozen=True)
class _Net:
    """What :func:`predict_next_readers` reads from a loaded network."""

    reader_paths: ReaderPaths


def transitions(passages: pd.DataFrame, max_gap_s: float = TRANSITION_MAX_S) -> pd.DataFrame:
    """Each tag's departures: tag_id, prev_reader (the reader before, within ``max_gap_s``,
    else ""), reader_id, closest_at_us, next_reader and next_at_us (the next other reader
    within ``max_gap_s``). Repeated passages at one reader are folded into the last."""
    f = passages.sort_values(["tag_id", "closest_at_us"], kind="mergesort")
    f = f[["tag_id", "reader_id", "closest_at_us"]].astype({"tag_id": str, "reader_id": str})
    same = (f["tag_id"] == f["tag_id"].shift(-1)) & (f["reader_id"] == f["reader_id"].shift(-1))
    f = f[~same.to_numpy()]
    g = f.groupby("tag_id", sort=False)
    at = f["closest_at_us"].astype(np.int64)
    prev_at, next_at = g["closest_at_us"].shift(1), g["closest_at_us"].shift(-1)
    prev_ok = (at - prev_at) <= max_gap_s * _US
    next_ok = (next_at - at) <= max_gap_s * _US
    return f.assign(
        prev_reader=g["reader_id"].shift(1).where(prev_ok, "").fillna(""),
        next_reader=g["reader_id"].shift(-1).where(next_ok, ""),
        next_at_us=next_at.where(next_ok, -1).fillna(-1).astype(np.int64),
    )


def departures(rows: pd.DataFrame, prev_reader: str, tag: str) -> Departures:
    """The :class:`Departures` of one reader from its ``rows`` of :func:`transitions`, for a
    bike of ``tag`` that came from ``prev_reader``."""
    rows = rows[rows["next_reader"] != ""]
    if rows.empty:
        return Departures(previous_reader=prev_reader)
    nxt = rows["next_reader"].astype(str).tolist()
    travel = ((rows["next_at_us"] - rows["closest_at_us"]) / _US).tolist()
    prev = rows["prev_reader"].astype(str).tolist()
    tags = rows["tag_id"].astype(str).tolist()
    fleet: dict[str, int] = {}
    heading: dict[str, int] = {}
    own: dict[str, int] = {}
    times: dict[str, list[float]] = {}
    for r, t, p, g in zip(nxt, travel, prev, tags, strict=True):
        fleet[r] = fleet.get(r, 0) + 1
        times.setdefault(r, []).append(t)
        if prev_reader and p == prev_reader:
            heading[r] = heading.get(r, 0) + 1
        if g == tag:
            own[r] = own.get(r, 0) + 1
    q = {r: np.quantile(v, [0.1, 0.5, 0.9]).tolist() for r, v in times.items()}
    return Departures(
        previous_reader=prev_reader, fleet=fleet, heading=heading, own=own,
        travel={r: TravelTimes(fleet[r], *q[r]) for r in fleet},
    )  # fmt: skip


def score_intercept(
    reader_paths: ReaderPaths,
    passages: pd.DataFrame,
    heard: pd.DataFrame,
    *,
    skip_tags: frozenset[str],
    seed: int,
    history: pd.DataFrame | None = None,
    true_passages: pd.DataFrame | None = None,
    first_steps: Mapping[tuple[str, int], int] | None = None,
    cases: int = 300,
) -> dict[str, Any]:
    """The intercept columns of one ``tagtrail`` row (see the module docstring).
    ``history``: stored passages of the history days (earlier than the scored day);
    ``true_passages``: every true pass (heard or not), for the ``behind_missed`` bound;
    ``first_steps``: (tag, sighting time µs) -> the node the bike really rode to next."""
    steps = transitions(heard[~heard["tag_id"].isin(skip_tags)])
    steps = steps[steps["next_reader"] != ""]
    known = steps["reader_id"].isin(reader_paths.reader_node)
    steps = steps[known & steps["next_reader"].isin(reader_paths.reader_node)]
    if steps.empty:
        return {"intercept_top3": None, "eta_window_hit": None, "nearest_top3": None,
                "intercept_cases": 0, "model_top3": None}  # fmt: skip
    rng = np.random.default_rng(seed)
    steps = steps.iloc[rng.choice(len(steps), min(cases, len(steps)), replace=False)]
    fleet = transitions(passages)
    if history is not None and not history.empty:
        fleet = pd.concat([transitions(history), fleet], ignore_index=True)
    by_reader = {str(r): g for r, g in fleet.groupby("reader_id", sort=False)}
    missed_first = _missed_first(true_passages) if true_passages is not None else None
    hits: dict[str, list[bool]] = {}
    windows: dict[str, list[tuple[bool, float]]] = {name: [] for name in WINDOWS}
    bounds: dict[str, list[bool]] = {"reachable": [], "behind_missed": [], "oracle_step": []}
    rates = {r: reader_paths.miss_rate_of(r) for r in reader_paths.reader_ids}
    net = _Net(reader_paths)
    for tag, reader, prev, at_us, true_next, next_us in zip(
        steps["tag_id"].astype(str).tolist(), steps["reader_id"].astype(str).tolist(),
        steps["prev_reader"].astype(str).tolist(), steps["closest_at_us"].astype(np.int64).tolist(),
        steps["next_reader"].astype(str).tolist(), steps["next_at_us"].astype(np.int64).tolist(),
        strict=True,
    ):  # fmt: skip
        travel_s = (next_us - at_us) / _US
        mine = by_reader.get(reader)
        if mine is not None:
            mine = mine[(mine["next_at_us"] < at_us) & (mine["next_at_us"] >= 0)]
        past = departures(mine, prev, tag) if mine is not None else Departures(previous_reader=prev)
        elsewhere = other_readers(reader_paths, reader)
        start = reader_paths.reader_node[reader]
        came = came_from_node(reader_paths, prev, reader)
        road = next_readers_by_model(
            reader_paths.graph, start, elsewhere, rates, horizon_m=HORIZON_M, limit=None
        )
        turns = {
            name: next_readers_by_model(
                reader_paths.graph, start, elsewhere, rates, horizon_m=HORIZON_M, limit=None,
                heading=Heading(came_from=came, back=back, straight=straight),
            ) if came is not None else road
            for name, (back, straight) in HEADINGS.items()
        }  # fmt: skip
        heading = turns["heading"]
        dist = {r: reader_paths.distance_m(reader, r) for r in past.fleet}
        for far in HORIZONS:
            found = next_readers_by_model(
                reader_paths.graph, start, elsewhere, rates, horizon_m=far, limit=None,
                heading=Heading(came_from=came) if came is not None else None,
            )  # fmt: skip
            hits.setdefault(f"horizon_{far:g}", []).append(
                true_next in [i.reader_id for i in found[:3]]
            )
            mixed = blend_next_readers(found, past, dist, blend=BLEND, limit=3)
            hits.setdefault(f"blend_horizon_{far:g}", []).append(
                true_next in [p.reader_id for p in mixed]
            )
        seen = LastSeen(tag_id=tag, reader_id=reader, at=datetime.fromtimestamp(at_us / _US, UTC),
                        lon=None, lat=None, source="passage")  # fmt: skip
        product = predict_next_readers(net, seen, past, 3)
        answers = {
            "nearest": _nearest(reader_paths, reader, [], 3),
            "history": _nearest(reader_paths, reader, _old_history(past), 3),
            "road": [i.reader_id for i in road[:3]],
        }
        answers |= {name: [i.reader_id for i in found[:3]] for name, found in turns.items()}
        levels = {
            "fleet": Departures(fleet=past.fleet),
            "fleet+heading": Departures(fleet=past.fleet, heading=past.heading),
            "blend": past,
        }
        for name, given in levels.items():
            answer = blend_next_readers(heading, given, dist, blend=BLEND, limit=3)
            answers[name] = [p.reader_id for p in answer]
        for name, mix in BLENDS.items():
            answer = blend_next_readers(heading, past, dist, blend=mix, limit=3)
            answers[name] = [p.reader_id for p in answer]
        answers["blend_no_heading_road"] = [
            p.reader_id for p in blend_next_readers(road, past, dist, blend=BLEND, limit=3)
        ]
        answers["api"] = [p.reader_id for p in product]
        for name, ids in answers.items():
            hits.setdefault(name, []).append(true_next in ids)
        d = reader_paths.distance_m(reader, true_next)
        for name, win in WINDOWS.items():
            lo, hi = win.window_s(d, past.travel.get(true_next))
            windows[name].append((lo <= travel_s <= hi, hi - lo))
        lo, hi = WINDOW.window_s(d, past.travel.get(true_next))  # the product's window
        windows.setdefault("api", []).append((lo <= travel_s <= hi, hi - lo))
        bounds["reachable"].append(any(i.reader_id == true_next for i in road))
        if missed_first is not None:
            bounds["behind_missed"].append(missed_first.get((tag, at_us), False))
        step = (first_steps or {}).get((tag, at_us))
        if step is not None:
            oracle = next_readers_by_model(
                reader_paths.graph, start, elsewhere, rates, horizon_m=HORIZON_M, limit=3,
                heading=Heading(came_from=came, only_step=step),
            )  # fmt: skip
            bounds["oracle_step"].append(true_next in [i.reader_id for i in oracle])
    chosen = windows["api"]
    speed = windows["speed_10_32"]
    return {
        "intercept_top3": _mean(hits["api"]),
        "eta_window_hit": _mean([h for h, _ in chosen]),
        "eta_window_median_s": _median([w for _, w in chosen]),
        "nearest_top3": _mean(hits["nearest"]),
        "history_top3": _mean(hits["history"]),
        "model_top3": _mean(hits["road"]),
        "speed_window_hit": _mean([h for h, _ in speed]),
        "speed_window_median_s": _median([w for _, w in speed]),
        "intercept_cases": len(hits["blend"]),
        "intercept_with_previous": _mean([bool(p) for p in steps["prev_reader"].tolist()]),
        "intercept_variants": {k: _mean(v) for k, v in hits.items()},
        "eta_variants": {
            k: {"hit": _mean([h for h, _ in v]), "median_s": _median([w for _, w in v])}
            for k, v in windows.items()
        },
        "intercept_bounds": {k: _mean(v) for k, v in bounds.items()},
        "intercept_bound_cases": {k: len(v) for k, v in bounds.items()},
    }


def _old_history(past: Departures) -> list[str]:
    """The earlier API's history answer: the reader's next readers, most departures first
    (then the shortest median travel), when it has 5 departures or more."""
    if sum(past.fleet.values()) < 5:
        return []
    return sorted(past.fleet, key=lambda r: (-past.fleet[r], past.travel[r].p50_s))


def _nearest(paths: ReaderPaths, reader: str, first: list[str], limit: int) -> list[str]:
    """``first`` (up to ``limit``), then the nearest other readers by road."""
    out = first[:limit]
    row = paths.distance_matrix_m[paths.reader_ids.index(reader)]
    for j in np.argsort(row, kind="stable").tolist():
        if len(out) >= limit or not np.isfinite(row[j]):
            break
        r = paths.reader_ids[j]
        if row[j] > 0 and r != reader and r not in out:
            out.append(r)
    return out


def _missed_first(true_passages: pd.DataFrame) -> dict[tuple[str, int], bool]:
    """(tag, heard passage time) -> whether the tag's next true pass at another reader (within
    30 minutes) was missed."""
    f = true_passages.sort_values(["tag_id", "closest_at_us"], kind="mergesort")
    f = f.assign(tag_id=f["tag_id"].astype(str), reader_id=f["reader_id"].astype(str))
    f = f[(f["tag_id"] != f["tag_id"].shift(-1)) | (f["reader_id"] != f["reader_id"].shift(-1))]
    g = f.groupby("tag_id", sort=False)
    nxt_heard = g["heard"].shift(-1)
    gap = g["closest_at_us"].shift(-1) - f["closest_at_us"]
    ok = f["heard"].astype(bool) & nxt_heard.notna() & (gap <= TRANSITION_MAX_S * _US)
    sel = f[ok.to_numpy()]
    missed = ~nxt_heard[ok.to_numpy()].astype(bool)
    return {
        (t, int(a)): bool(m)
        for t, a, m in zip(sel["tag_id"], sel["closest_at_us"], missed, strict=True)
    }


def first_steps(
    population: Any, heard: pd.DataFrame, reader_node: Mapping[str, int]
) -> dict[tuple[str, int], int]:
    """(tag, heard passage time µs) -> the node the bike rode to next from the reader's node
    (the simulator's trip paths; for the ``oracle_step`` bound)."""
    v = population.visits[["trip_id", "bike_id", "seq", "node", "arrive_us"]].copy()
    v = v.sort_values(["trip_id", "seq"], kind="mergesort")
    v["next_node"] = v.groupby("trip_id")["node"].shift(-1)
    v = v.dropna(subset=["next_node"]).astype(
        {"next_node": np.int64, "arrive_us": np.int64, "bike_id": np.int64, "node": np.int64}
    )
    bike_of = {str(b.tag_id): b.bike_id for b in population.bikes}  # a cloned tag: one of them
    h = heard.assign(node=heard["reader_id"].map(reader_node), bike_id=heard["tag_id"].map(bike_of))
    h = h.dropna(subset=["node", "bike_id"])
    h = h.assign(node=h["node"].astype(np.int64), bike_id=h["bike_id"].astype(np.int64))
    found = pd.merge_asof(
        h.sort_values("closest_at_us"), v.sort_values("arrive_us"), left_on="closest_at_us",
        right_on="arrive_us", by=["bike_id", "node"], direction="nearest", tolerance=60 * _US,
    ).dropna(subset=["next_node"])  # fmt: skip
    return {
        (str(t), int(a)): int(n)
        for t, a, n in zip(found["tag_id"], found["closest_at_us"], found["next_node"], strict=True)
    }


def _mean(values: list[bool]) -> float | None:
    return round(float(np.mean(values)), 3) if values else None


def _median(values: list[float]) -> float | None:
    finite = [v for v in values if np.isfinite(v)]
    return round(float(np.median(finite)), 1) if finite else None
