"""Score reconstructed routes against ground truth (used by ``tagtrail bench accuracy``).

Pure functions over frames, so that any source of truth (the simulator, a GPS-logged test
ride) can be scored the same way. Each true trip is scored over its *observable span*: from
the first to the last reader that actually heard the tag on that trip. Before the first and
after the last sighting no method can know anything, so including them would only add the
same constant error to every method.

* **Recall / precision** are length-weighted over directed road edges: the true edges of the
  span that the drawn route also contains, over all true edges; the drawn edges that are
  true, over all drawn edges. Route segments count for a trip when both their passages fall
  inside the trip (a parked bike's between-trip stretch belongs to no trip).
* **Passage time error**: each estimated passage against the true closest approach of the
  same tag at the same reader (nearest within ``match_s``).
* **Position-at-time error**: the route's per-second point against the true position at the
  same second, wherever the route has a point inside the span.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from track_engine.roads import RoadGraph
from track_engine.routes import Route

_US_PER_S = 1_000_000
# A segment may start or end this much outside the true span (passage time error).
_SPAN_SLACK_US = 5 * _US_PER_S


@dataclass(frozen=True)
class Scores:
    """The accuracy figures of one method on one run."""

    recall: float
    precision: float
    time_error_median_s: float
    time_error_p95_s: float
    position_error_median_m: float
    position_error_p95_m: float
    trips: int
    clone_hits: int
    clone_tags: int
    clone_false_alarms: int


def passage_time_errors_s(
    estimated: pd.DataFrame, truth: pd.DataFrame, *, match_s: float = 15.0
) -> np.ndarray:
    """|estimated - true| closest-approach time in seconds, per estimated passage matched.

    ``estimated``: tag_id, reader_id, closest_at_us. ``truth``: the same columns (heard
    passages only).
    """
    est = estimated[["tag_id", "reader_id", "closest_at_us"]].astype({"closest_at_us": np.int64})
    tru = truth[["tag_id", "reader_id", "closest_at_us"]].astype({"closest_at_us": np.int64})
    est = est.assign(tag_id=est["tag_id"].astype(str), reader_id=est["reader_id"].astype(str))
    tru = tru.assign(tag_id=tru["tag_id"].astype(str), reader_id=tru["reader_id"].astype(str))
    tru = tru.rename(columns={"closest_at_us": "true_us"}).sort_values("true_us")
    est = est.sort_values("closest_at_us")
    merged = pd.merge_asof(
        est,
        tru,
        left_on="closest_at_us",
        right_on="true_us",
        by=["tag_id", "reader_id"],
        direction="nearest",
        tolerance=round(match_s * _US_PER_S),
    ).dropna(subset=["true_us"])
    diff = merged["closest_at_us"].to_numpy(np.int64) - merged["true_us"].to_numpy(np.int64)
    errors: np.ndarray = np.abs(diff) / _US_PER_S
    return errors


def drawn_edges(route: Route, spans: pd.DataFrame) -> pd.DataFrame:
    """Directed edges (trip_id, src, dst) of the route's drawn segments, per true trip span.

    ``spans``: trip_id, start_us, end_us for this route's tag.
    """
    rows: list[tuple[int, int, int]] = []
    starts = spans["start_us"].to_numpy(np.int64) - _SPAN_SLACK_US
    ends = spans["end_us"].to_numpy(np.int64) + _SPAN_SLACK_US
    trip_ids = spans["trip_id"].to_numpy(np.int64)
    for seg in route.segments:
        if not seg.drawn or len(seg.nodes) < 2:
            continue
        inside = np.flatnonzero((starts <= seg.start_us) & (seg.end_us <= ends))
        if inside.size == 0:
            continue
        trip = int(trip_ids[inside[0]])
        rows += [(trip, s, d) for s, d in zip(seg.nodes[:-1], seg.nodes[1:], strict=True)]
    return pd.DataFrame(rows, columns=["trip_id", "src", "dst"])


def score_routes(
    routes: Mapping[str, Route],
    *,
    graph: RoadGraph,
    estimated_passages: pd.DataFrame,
    truth_passages: pd.DataFrame,
    spans: pd.DataFrame,
    true_edges: pd.DataFrame,
    true_positions: pd.DataFrame,
    cloned_tags: Iterable[str] = (),
) -> Scores:
    """Score one method's routes.

    ``spans``: trip_id, tag_id, start_us, end_us (observable spans of the scored trips).
    ``true_edges``: trip_id, src, dst (edges ridden inside each span). ``true_positions``:
    trip_id, tag_id, t_us, x_m, y_m (whole seconds inside each span). ``truth_passages``:
    heard true passages (tag_id, reader_id, closest_at_us).
    """
    lengths = pd.DataFrame(
        {"src": graph.edge_src, "dst": graph.edge_dst, "length_m": graph.edge_length_m}
    )
    by_tag = {str(t): g for t, g in spans.groupby("tag_id", sort=False)}
    drawn_parts = [drawn_edges(routes[t], g) for t, g in by_tag.items() if t in routes]
    drawn = pd.concat(drawn_parts, ignore_index=True) if drawn_parts else true_edges.iloc[0:0]
    drawn = drawn.drop_duplicates().merge(lengths, on=["src", "dst"], how="left")
    truth = true_edges.drop_duplicates().merge(lengths, on=["src", "dst"], how="left")
    hit = truth.merge(drawn[["trip_id", "src", "dst"]], on=["trip_id", "src", "dst"])
    true_len = float(truth["length_m"].sum())
    drawn_len = float(drawn["length_m"].sum())
    hit_len = float(hit["length_m"].sum())

    point_parts = [
        routes[t].points[["t_us", "x_m", "y_m"]].assign(tag_id=t) for t in by_tag if t in routes
    ]
    if point_parts:
        points = pd.concat(point_parts, ignore_index=True)
        pos = true_positions.merge(points, on=["tag_id", "t_us"], suffixes=("", "_est"))
        pos_err = np.hypot(
            pos["x_m"].to_numpy() - pos["x_m_est"].to_numpy(),
            pos["y_m"].to_numpy() - pos["y_m_est"].to_numpy(),
        )
    else:
        pos_err = np.empty(0)

    scored_tags = set(by_tag)
    time_err = passage_time_errors_s(
        estimated_passages[estimated_passages["tag_id"].astype(str).isin(scored_tags)],
        truth_passages,
    )
    clones = {str(t) for t in cloned_tags}
    flagged = {t for t, r in routes.items() if r.clone_suspected}
    return Scores(
        recall=hit_len / true_len if true_len else float("nan"),
        precision=hit_len / drawn_len if drawn_len else float("nan"),
        time_error_median_s=_quantile(time_err, 0.5),
        time_error_p95_s=_quantile(time_err, 0.95),
        position_error_median_m=_quantile(pos_err, 0.5),
        position_error_p95_m=_quantile(pos_err, 0.95),
        trips=len(spans),
        clone_hits=len(flagged & clones),
        clone_tags=len(clones),
        clone_false_alarms=len(flagged - clones),
    )


def _quantile(values: np.ndarray, q: float) -> float:
    return float(np.quantile(values, q)) if values.size else float("nan")
