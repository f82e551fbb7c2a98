"""The figures of one ``tagtrail bench accuracy`` row: a method's routes scored against the
scenario's truth (:func:`track_engine.scoring.score_routes`), their calibration, the readers'
spacing and how far the miss rates path choice used are from the real ones."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from simulators.readers import SimReader
from tagtrail.bench.engine_scenario import Scenario
from track_engine.calibration_scoring import score_calibration
from track_engine.roads import ReaderPaths, RoadGraph
from track_engine.route_result import Route
from track_engine.scoring import Scores, score_routes


def score_record(method: str, coverage: float, miss: float, s: Scores) -> dict[str, Any]:
    """The row of one (method, coverage, miss rate): its scores, rounded (None: not defined)."""

    def r(x: float, nd: int) -> float | None:
        return None if np.isnan(x) else round(float(x), nd)

    return {
        "method": method,
        "coverage": coverage,
        "miss_rate": miss,
        "recall": r(s.recall, 4),
        "precision": r(s.precision, 4),
        "time_error_median_s": r(s.time_error_median_s, 3),
        "time_error_p95_s": r(s.time_error_p95_s, 3),
        "position_error_median_m": r(s.position_error_median_m, 1),
        "position_error_p95_m": r(s.position_error_p95_m, 1),
        "trips": s.trips,
        "clone_hits": s.clone_hits,
        "clone_tags": s.clone_tags,
        "clone_false_alarms": s.clone_false_alarms,
    }


def score_scenario(routes: dict[str, Route], sc: Scenario, graph: RoadGraph) -> Scores:
    """Routes of one scenario against its truth."""
    return score_routes(
        routes,
        graph=graph,
        estimated_passages=sc.passages,
        truth_passages=sc.truth.heard,
        spans=sc.truth.spans,
        true_edges=sc.truth.edges,
        true_positions=sc.truth.positions,
        cloned_tags=sc.truth.cloned_tags,
    )


def calibration_record(routes: dict[str, Route], sc: Scenario, graph: RoadGraph) -> dict[str, Any]:
    """How well the stated stretch probabilities match the truth (None: the method states
    none): ``calibration_ece``, ``alternatives_coverage`` and the ``reliability`` table."""
    cal = score_calibration(routes, graph=graph, spans=sc.truth.spans, true_edges=sc.truth.edges)
    if cal.stretches == 0:
        return {"calibration_ece": None, "alternatives_coverage": None, "reliability": None,
                "calibrated_stretches": 0}  # fmt: skip
    return {
        "calibration_ece": round(cal.ece, 4),
        "alternatives_coverage": round(cal.alternatives_coverage, 4),
        "calibrated_stretches": cal.stretches,
        "reliability": [
            {
                "lo": round(b.lo, 2),
                "hi": round(b.hi, 2),
                "stretches": b.stretches,
                "stated": None if not b.stretches else round(b.stated, 4),
                "right": None if not b.stretches else round(b.right, 4),
            }
            for b in cal.bins
        ],
    }


def reader_spacing(readers: list[SimReader]) -> dict[str, Any]:
    """How many readers, and how far each stands from its nearest neighbour (median, 10th
    percentile, meters between surveyed positions): readers a few meters apart hear the same
    pass, which is what junction consolidation is for."""
    if len(readers) < 2:
        return {"readers": len(readers), "reader_spacing_median_m": None,
                "reader_spacing_p10_m": None}  # fmt: skip
    xy = np.array([[r.x_m, r.y_m] for r in readers])
    nearest = cKDTree(xy).query(xy, k=2)[0][:, 1]
    return {
        "readers": len(readers),
        "reader_spacing_median_m": round(float(np.median(nearest)), 1),
        "reader_spacing_p10_m": round(float(np.percentile(nearest, 10)), 1),
    }


def rate_error(reader_paths: ReaderPaths, true_rates: dict[str, float]) -> float:
    """Mean absolute difference between the miss rates path choice used and the real ones."""
    errors = [abs(reader_paths.miss_rate_of(r) - true) for r, true in true_rates.items()]
    return round(float(np.mean(errors)), 4) if errors else 0.0
