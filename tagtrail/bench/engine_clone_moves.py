"""What a movement-based clone detector has to work with (issue #17, "what bounds it").

For every tag, its passages are grouped into sightings exactly as route building groups them
(:func:`track_engine.places.group_sightings`) and every move between consecutive sightings
is described: the clone test's lower-bound speed (:func:`track_engine.places.move_speeds`),
the time between the read windows, the straight-line distance, and how silent the way was —
the best (least negative) miss log-likelihood over the engine's candidate ways between the two
readers, i.e. how unlikely it is that the bike rode from one to the other unheard by every
reader it passed. Each move is labelled from the simulator's truth: ``honest`` (a tag with one
bike), ``same`` (a cloned tag, the same bike at both ends) or ``switch`` (a cloned tag, the two
ends heard on different bikes — the only moves that can expose a clone).

Summary per cloned tag (``clone_tags``): its kind (rode together with its original, or only
after it parked), whether tagtrail flagged it, its fastest switch and its most silent switch;
and over honest tags the fastest move and the most silent one, which any threshold must stay
beyond to keep 0 honest flags.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tagtrail.bench.engine_scenario import Scenario
from track_engine.path_candidates import PathCandidates
from track_engine.places import PlaceModel, group_sightings, move_speeds
from track_engine.roads import NoPathError, RoadGraph
from track_engine.route_result import Route

__all__ = ["clone_move_figures", "tag_moves"]

_MATCH_US = 15_000_000


def tag_moves(
    ps: pd.DataFrame,
    graph: RoadGraph,
    reader_nodes: dict[str, int],
    candidates: PathCandidates,
    model: PlaceModel | None = None,
) -> pd.DataFrame:
    """One row per move between consecutive sightings of one tag's passages: from/to reader
    (the sightings' representatives), at_us (closest approach of each), gap_s (between the
    read windows), distance_m (straight line between the readers' nodes), speed_mps (the
    clone test's lower bound) and silence_nats (best candidate way's miss log-likelihood)."""
    model = model or PlaceModel()
    ps = ps.sort_values(["closest_at_us", "reader_id"], kind="mergesort")
    readers = ps["reader_id"].astype(str).tolist()
    xy = {r: graph.node_xy_m[reader_nodes[r]] for r in set(readers)}
    rssi = ps["peak_rssi_dbm"].to_numpy(np.float64)
    loud = [(-np.inf if np.isnan(p) else float(p), int(c))
            for p, c in zip(rssi, ps["read_count"].to_numpy(np.int64), strict=True)]  # fmt: skip
    s = group_sightings(
        readers, ps["first_at_us"].to_numpy(np.int64), ps["last_at_us"].to_numpy(np.int64),
        loud, xy, model,
    )  # fmt: skip
    speeds = move_speeds(s, readers, xy, model)
    closest = ps["closest_at_us"].to_numpy(np.int64)
    rows = []
    for k, v in enumerate(speeds):
        a, b = readers[int(s.rep[k])], readers[int(s.rep[k + 1])]
        try:
            cands = candidates.candidates(a, b) if a != b else ()
        except NoPathError:
            cands = ()
        rows.append({
            "from": a, "to": b,
            "from_us": int(closest[s.rep[k]]), "to_us": int(closest[s.rep[k + 1]]),
            "gap_s": max(0, int(s.first_us[k + 1]) - int(s.last_us[k])) / 1e6,
            "distance_m": float(np.hypot(*(xy[a] - xy[b]))),
            "speed_mps": v,
            "silence_nats": max((c.miss_loglik for c in cands), default=0.0),
        })  # fmt: skip
    return pd.DataFrame(rows)


def _bike_at(true_heard: pd.DataFrame, tag: str, reader: str, at_us: int) -> int | None:
    """The bike whose true passage of ``tag`` at ``reader`` is nearest ``at_us`` (15 s)."""
    t = true_heard[(true_heard["tag_id"] == tag) & (true_heard["reader_id"] == reader)]
    if t.empty:
        return None
    off = (t["closest_at_us"].to_numpy(np.int64) - at_us).__abs__()
    k = int(np.argmin(off))
    return int(t["bike_id"].iloc[k]) if off[k] <= _MATCH_US else None


def clone_move_figures(
    sc: Scenario, graph: RoadGraph, routes: dict[str, Route], candidates: PathCandidates
) -> dict[str, Any]:
    """Per cloned tag and over honest tags, the moves a clone detector could use (module
    docstring). ``routes``: tagtrail's, for which tags it flagged."""
    reader_nodes = {r.reader_id: r.node for r in sc.readers}
    tp = sc.true_passages
    heard = tp[tp["heard"].astype(bool) & (tp["reads"] > 0)]
    heard = heard.assign(
        tag_id=heard["tag_id"].astype(str), reader_id=heard["reader_id"].astype(str)
    )
    cloned = sc.truth.cloned_tags
    honest_speed: list[float] = []
    honest_silence: list[float] = []
    per_clone: list[dict[str, Any]] = []
    for tag, ps in sc.passages.groupby("tag_id", sort=True):
        tag = str(tag)
        moves = tag_moves(ps, graph, reader_nodes, candidates)
        if tag not in cloned:
            honest_speed += moves["speed_mps"].tolist() if len(moves) else []
            honest_silence += moves["silence_nats"].tolist() if len(moves) else []
            continue
        bikes = [
            (
                _bike_at(heard, tag, m["from"], m["from_us"]),
                _bike_at(heard, tag, m["to"], m["to_us"]),
            )
            for m in moves.to_dict("records")
        ]
        switch = [a is not None and b is not None and a != b for a, b in bikes]
        sw = moves[np.asarray(switch, bool)] if len(moves) else moves
        per_clone.append({
            "tag": tag,
            "kind": "together" if tag in sc.truth.cloned_riding_together else "parked",
            "heard_both": tag in sc.truth.cloned_heard_both,
            "flagged": bool(tag in routes and routes[tag].clone_suspected),
            "switches": len(sw),
            "max_switch_speed_mps": round(float(sw["speed_mps"].max()), 2) if len(sw) else None,
            "min_switch_gap_s": round(float(sw["gap_s"].min()), 1) if len(sw) else None,
            "max_switch_distance_m": round(float(sw["distance_m"].max()), 0) if len(sw) else None,
            "min_switch_silence_nats": round(float(sw["silence_nats"].min()), 2)
            if len(sw) else None,
        })  # fmt: skip
    hs = np.asarray(honest_speed)
    hn = np.asarray(honest_silence)
    return {
        "clone_tags": per_clone,
        "honest_moves": int(hs.size),
        "honest_max_speed_mps": round(float(hs.max()), 2) if hs.size else None,
        "honest_speed_p999_mps": round(float(np.quantile(hs, 0.999)), 2) if hs.size else None,
        "honest_min_silence_nats": round(float(hn.min()), 2) if hn.size else None,
        "honest_silence_p001_nats": round(float(np.quantile(hn, 0.001)), 2) if hn.size else None,
    }
