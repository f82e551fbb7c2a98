"""``python -m tagtrail.bench.engine_diagnosis --diagnose``: where the recall of the
tagtrail method is lost, segment by segment, on one accuracy scenario
(:mod:`tagtrail.bench.engine_accuracy`)."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from tagtrail.bench.engine_accuracy import reconstruct
from tagtrail.bench.engine_scenario import (
    AccuracyOptions,
    Scenario,
    build_scenario,
    simulate_city,
)
from tagtrail.bench.engine_scores import score_scenario
from track_engine.path_model import score
from track_engine.paths import NegativeEvidenceChooser
from track_engine.roads import RoadGraph
from track_engine.route_result import Route

_US_PER_S = 1_000_000

# Causes a lost true edge is charged to, in the order they are tested (see ``diagnose``).
LOSS_CAUSES = (
    "trip start/end inside the span",
    "between segments (dropped or misplaced passage)",
    "passage order / passage not on the trip",
    "segment not drawn (impossible / no path)",
    "true path not a candidate",
    "wrong choice: true path crosses a missed reader",
    "wrong choice: no reader between (near-equal ways)",
)
# "Similar time": an alternative within this many meters of the true path's length (10 s at
# the population's 4.5 m/s).
_SIMILAR_M = 45.0
_LOCATE_S = 30.0


def diagnose(
    sc: Scenario,
    population: Any,
    graph: RoadGraph,
    routes: dict[str, Route],
    chooser: NegativeEvidenceChooser,
) -> pd.DataFrame:
    """One row per scored trip's route segment (and per uncovered stretch of its span).

    Each segment of a tag's route that belongs to a scored trip is located on the trip's true
    node sequence (its passages' readers at their times), and its true sub-path compared with
    the drawn path. Columns: trip_id, cause (a ``LOSS_CAUSES`` entry, or ``"exact"`` /
    ``"drawn true"``), true_m (true length of the stretch), lost_m (true length not drawn),
    false_m (drawn length not true), similar (candidates within ``_SIMILAR_M`` of the true
    length, the true one included), dscore (segment log-likelihood of the true path minus the
    chosen one, direction and own speed aside; NaN unless both are candidates), stop (the
    rider stopped inside the segment), oneway (the true path uses a one-way street the chosen
    path does not), missed (readers on the true path that missed the tag).
    """
    length = {
        (int(s), int(d)): float(m)
        for s, d, m in zip(graph.edge_src, graph.edge_dst, graph.edge_length_m, strict=True)
    }
    oneway = _oneway_edges(graph)
    visits = population.visits
    spans = sc.truth.spans
    cands = chooser.candidates_for(sc.reader_paths)
    rows: list[dict[str, Any]] = []
    trip: Any
    for trip in spans.itertuples(index=False):
        route = routes.get(str(trip.tag_id))
        v = visits[visits["trip_id"] == trip.trip_id].sort_values("seq")
        seq_lo, seq_hi = int(trip.seq_lo), int(trip.seq_hi)
        nodes = v["node"].to_numpy(np.int64)
        arrive = v["arrive_us"].to_numpy(np.int64)
        depart = v["depart_us"].to_numpy(np.int64)
        covered = np.zeros(len(nodes), bool)  # covered[k]: true edge nodes[k-1] -> nodes[k]
        lo_t = int(trip.trip_start_us) - 5 * _US_PER_S
        hi_t = int(trip.trip_end_us) + 5 * _US_PER_S
        segments = [] if route is None else [
            s for s in route.segments if lo_t <= s.start_us and s.end_us <= hi_t
        ]  # fmt: skip
        for seg in segments:
            a = _locate(nodes, arrive, depart, sc.reader_paths.reader_node[seg.from_reader],
                        seg.start_us)  # fmt: skip
            b = _locate(nodes, arrive, depart, sc.reader_paths.reader_node[seg.to_reader],
                        seg.end_us)  # fmt: skip
            drawn = list(seg.nodes) if seg.drawn else []
            drawn_m = _path_m(drawn, length)
            if a is None or b is None or b < a:
                rows.append(_row(trip, LOSS_CAUSES[2], 0.0, 0.0, drawn_m))
                continue
            true_nodes = [int(n) for n in nodes[a : b + 1]]
            true_m = _path_m(true_nodes, length)
            hit = _hit_m(true_nodes, drawn, length)
            covered[a + 1 : b + 1] = True
            row = _row(trip, "exact", true_m, true_m - hit, drawn_m - hit)
            row["stop"] = bool(np.any(depart[a + 1 : b] > arrive[a + 1 : b]))
            row["missed"] = sum(1 for n in true_nodes[1:-1] if cands.node_nats[n] > 0.0)
            rows.append(row)
            if row["lost_m"] <= 1e-6 and row["false_m"] <= 1e-6:
                continue
            if not seg.drawn or len(drawn) < 2:
                row["cause"] = LOSS_CAUSES[3]
                continue
            row["oneway"] = any(
                e in oneway and e not in set(itertools.pairwise(drawn))
                for e in itertools.pairwise(true_nodes)
            )
            options = cands.candidates(seg.from_reader, seg.to_reader)
            row["similar"] = sum(1 for c in options if abs(c.length_m - true_m) <= _SIMILAR_M)
            by_nodes = {c.nodes: c for c in options}
            true_c = by_nodes.get(tuple(true_nodes))
            if true_c is None:
                row["cause"] = LOSS_CAUSES[4]
                continue
            chosen_c = by_nodes.get(tuple(drawn))
            if chosen_c is not None:
                dt = (seg.end_us - seg.start_us) / _US_PER_S
                shortest = options[0].length_m
                row["dscore"] = score(
                    true_c, shortest_m=shortest, dt_s=dt, model=chooser.model
                ) - score(chosen_c, shortest_m=shortest, dt_s=dt, model=chooser.model)
            row["cause"] = LOSS_CAUSES[5] if row["missed"] else LOSS_CAUSES[6]
        # True edges of the span no segment accounts for.
        first = np.flatnonzero(covered[seq_lo + 1 : seq_hi + 1])
        for k in range(seq_lo + 1, seq_hi + 1):
            if covered[k]:
                continue
            e_m = length[(int(nodes[k - 1]), int(nodes[k]))]
            inside = first.size and first[0] + seq_lo + 1 < k < first[-1] + seq_lo + 1
            cause = LOSS_CAUSES[1] if inside else LOSS_CAUSES[0]
            rows.append(_row(trip, cause, e_m, e_m, 0.0))
    out = pd.DataFrame(rows)
    for col, default in (("similar", np.nan), ("dscore", np.nan), ("stop", False),
                         ("oneway", False), ("missed", 0)):  # fmt: skip
        if col not in out:
            out[col] = default
    return out


def diagnosis_table(diag: pd.DataFrame, recall: float) -> list[dict[str, Any]]:
    """Lost recall per cause (share of the true length), with the segments' attributes."""
    true_m = float(diag["true_m"].sum())
    out: list[dict[str, Any]] = []
    for cause in LOSS_CAUSES:
        d = diag[diag["cause"] == cause]
        out.append({
            "cause": cause,
            "rows": len(d),
            "lost_m": round(float(d["lost_m"].sum()), 0),
            "recall_lost": round(float(d["lost_m"].sum()) / true_m, 4) if true_m else None,
            "precision_false_m": round(float(d["false_m"].sum()), 0),
            "median_similar": None if d["similar"].isna().all()
            else float(d["similar"].median()),
            "with_stop": int(d["stop"].sum()),
            "oneway": int(d["oneway"].sum()),
            "evidence_prefers_wrong": int((d["dscore"] < 0).sum()),
        })  # fmt: skip
    exact = diag[diag["cause"] == "exact"]
    out.append({
        "cause": "exact (chosen path = true path)",
        "rows": len(exact),
        "lost_m": 0.0,
        "recall_lost": 0.0,
        "true_share": round(float(exact["true_m"].sum()) / true_m, 4) if true_m else None,
        "recall_scored": recall,
        "recall_attributed": round(1.0 - float(diag["lost_m"].sum()) / true_m, 4)
        if true_m else None,
    })  # fmt: skip
    return out


def _locate(
    nodes: np.ndarray, arrive: np.ndarray, depart: np.ndarray, node: int, at_us: int
) -> int | None:
    """The visit index of ``node`` nearest in time to ``at_us`` (None beyond ``_LOCATE_S``)."""
    idx = np.flatnonzero(nodes == node)
    if idx.size == 0:
        return None
    off = np.maximum(np.maximum(arrive[idx] - at_us, at_us - depart[idx]), 0)
    k = int(np.argmin(off))
    return int(idx[k]) if off[k] <= _LOCATE_S * _US_PER_S else None


def _path_m(nodes: list[int], length: dict[tuple[int, int], float]) -> float:
    return sum(length[(a, b)] for a, b in itertools.pairwise(nodes))


def _hit_m(true_nodes: list[int], drawn: list[int], length: dict[tuple[int, int], float]) -> float:
    """Length of the directed edges both paths use, counted with multiplicity."""
    t = Counter(itertools.pairwise(true_nodes))
    d = Counter(itertools.pairwise(drawn))
    return sum(length[e] * min(n, d[e]) for e, n in t.items() if e in d)


def _oneway_edges(graph: RoadGraph) -> set[tuple[int, int]]:
    pairs = set(zip(graph.edge_src.tolist(), graph.edge_dst.tolist(), strict=True))
    return {(a, b) for a, b in pairs if (b, a) not in pairs}


def _row(trip: Any, cause: str, true_m: float, lost_m: float, false_m: float) -> dict[str, Any]:
    return {"trip_id": int(trip.trip_id), "cause": cause, "true_m": true_m,
            "lost_m": lost_m, "false_m": false_m}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """``python -m tagtrail.bench.engine_diagnosis --diagnose``: the recall-loss breakdown."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--diagnose", action="store_true", required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--bikes", type=int, default=200)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--coverage", type=float, default=0.5)
    parser.add_argument("--miss-rate", type=float, default=0.3)
    args = parser.parse_args(argv)
    options = AccuracyOptions(seed=args.seed, bikes=args.bikes, hours=args.hours, hmm=False)
    city, population, traj, graph = simulate_city(options)
    sc = build_scenario(city, population, traj, graph, args.seed, args.coverage, args.miss_rate)
    chooser = NegativeEvidenceChooser()
    routes = reconstruct("tagtrail", sc.passages, graph, sc.reader_paths, sc.readers, None)
    scores = score_scenario(routes, sc, graph)
    diag = diagnose(sc, population, graph, routes, chooser)
    table = diagnosis_table(diag, round(scores.recall, 4))
    print(
        json.dumps(
            {
                "seed": args.seed,
                "coverage": args.coverage,
                "miss_rate": args.miss_rate,
                "breakdown": table,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
