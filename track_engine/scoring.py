"""Score reconstructed routes against ground truth (used by ``tagtrail bench accuracy``).

Pure functions over frames, so that any source of truth (the simulator, a GPS-logged test
ride) can be scored the same way. Each true trip is scored over its *observable span*: from
the first to the last reader that actually heard the tag on that trip. Before the first and
after the last sighting no method can know anything, so including them would only add the
same constant error to every method.

* **Recall / precision** are length-weighted over directed road edges, counted with
  multiplicity (an edge ridden once but drawn twice is one hit and one false edge): the true
  edges of the span that the drawn route also contains, over all true edges; the drawn edges
  that are true, over all drawn edges. Every drawn segment counts, whatever its kind: a
  ``"gap"`` stretch is drawn on the map as the most likely way, so it must be right to score;
  segments that are not drawn (``"impossible"``, no road path) add nothing drawn and so only
  lose recall. A route segment counts for a trip when both its passages fall inside the
  *trip's* time interval, ± ``_SPAN_SLACK_US`` (a parked bike's between-trip stretch belongs
  to no trip).

  Regression note: membership used to be tested against the observable *span* (the true
  closest approaches of the first and last heard passages) ± 5 s. When a rider stops at a
  reader (a red light), the closest approach is any instant of a flat RSSI curve, so the
  estimate is often more than 5 s from the truth's; the first or last segment of such a trip
  was then thrown out of the trip, and its true edges counted as missed *for every method*,
  even for a route drawn exactly along the truth (recall 0.962 at 50% coverage / 30% misses
  with the true paths drawn). The trip interval contains every passage of the trip, and trips
  of one bike are at least the parking time apart, so nothing is assigned to the wrong trip.
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
from track_engine.route_result import Route

_US_PER_S = 1_000_000
# A segment may start or end this much outside its trip (passage time error while moving).
_SPAN_SLACK_US = 5 * _US_PER_S
_SPAN_COLUMNS = ("start_us", "end_us")


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
    """Directed edges (trip_id, src, dst) of the route's drawn segments, per true trip.

    ``spans``: trip_id, start_us, end_us for this route's tag, and the whole trip's
    trip_start_us, trip_end_us (without them the span itself decides membership).
    """
    rows: list[tuple[int, int, int]] = []
    lo, hi = ("trip_start_us", "trip_end_us") if "trip_start_us" in spans else _SPAN_COLUMNS
    starts = spans[lo].to_numpy(np.int64) - _SPAN_SLACK_US
    ends = spans[hi].to_numpy(np.int64) + _SPAN_SLACK_US
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

    ``spans``: trip_id, tag_id, start_us, end_us (observable spans of the scored trips) and
    optionally trip_start_us, trip_end_us (the whole trips: which segments belong to which).
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
    drawn = _edge_counts(drawn).merge(lengths, on=["src", "dst"], how="left")
    truth = _edge_counts(true_edges).merge(lengths, on=["src", "dst"], how="left")
    hit = truth.merge(drawn[["trip_id", "src", "dst", "times"]], on=["trip_id", "src", "dst"])
    true_len = float((truth["length_m"] * truth["times"]).sum())
    drawn_len = float((drawn["length_m"] * drawn["times"]).sum())
    both = np.minimum(hit["times_x"].to_numpy(), hit["times_y"].to_numpy())
    hit_len = float((hit["length_m"].to_numpy() * both).sum())

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


def _edge_counts(edges: pd.DataFrame) -> pd.DataFrame:
    """(trip_id, src, dst, times): how often each directed edge occurs in each trip."""
    return (
        edges.groupby(["trip_id", "src", "dst"], as_index=False)
        .size()
        .rename(columns={"size": "times"})
    )


def _quantile(values: np.ndarray, q: float) -> float:
    return float(np.quantile(values, q)) if values.size else float("nan")
