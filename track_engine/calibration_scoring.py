"""Score how well the stated stretch probabilities match ground truth (``bench accuracy``).

Each drawn stretch of a route (a segment whose path has at least one edge, inside a true
trip: the same membership rule as :func:`track_engine.scoring.drawn_edges`) states
``probability``, the posterior of the way drawn (:mod:`track_engine.stretch_confidence`). It
was *right* when every directed edge of that way was ridden on the trip. Then:

* **reliability table** — stretches binned by stated probability (``bins`` equal-width bins
  over [0, 1]): per bin, how many, their mean stated probability and the share right;
* **expected calibration error** — the stretch-weighted mean over bins of
  |mean stated − share right|;
* **alternatives coverage** — the true length of the scored trips lying on the drawn way or
  on an alternative of its stretch (each edge counted once per trip), over the true length:
  how much of where the bike really went the officer is shown at all.

Stops (zero-length stretches) state nothing about a way and are left out; so are stretches
without a stated probability (another path chooser).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from track_engine.roads import RoadGraph
from track_engine.route_result import Route

_SPAN_SLACK_US = 5 * 1_000_000  # as track_engine.scoring: passage time error while moving


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of the reliability table."""

    lo: float
    hi: float
    stretches: int
    stated: float  # mean stated probability (NaN for an empty bin)
    right: float  # share of those stretches whose drawn way was the true one


@dataclass(frozen=True)
class Calibration:
    """Calibration of one method's stretch probabilities on one run."""

    bins: tuple[ReliabilityBin, ...]
    ece: float
    alternatives_coverage: float
    stretches: int


@dataclass(frozen=True)
class _Stretch:
    trip: int
    stated: float
    edges: frozenset[tuple[int, int]]
    shown: frozenset[tuple[int, int]]  # the drawn way's edges and its alternatives'


def score_calibration(
    routes: Mapping[str, Route],
    *,
    graph: RoadGraph,
    spans: pd.DataFrame,
    true_edges: pd.DataFrame,
    bins: int = 10,
) -> Calibration:
    """Reliability table, ECE and alternatives coverage of ``routes`` (see module docstring).

    ``spans`` and ``true_edges`` as :func:`track_engine.scoring.score_routes` takes them.
    """
    stretches = [
        s
        for tag, g in spans.groupby("tag_id", sort=False)
        if str(tag) in routes
        for s in _stretches(routes[str(tag)], g)
    ]
    ridden: dict[int, set[tuple[int, int]]] = {}
    for trip, src, dst in true_edges[["trip_id", "src", "dst"]].itertuples(index=False):
        ridden.setdefault(int(trip), set()).add((int(src), int(dst)))
    stated = np.array([s.stated for s in stretches], np.float64)
    right = np.array([s.edges <= ridden.get(s.trip, set()) for s in stretches], np.float64)
    table = _bins(stated, right, bins)
    ece = sum(b.stretches * abs(b.stated - b.right) for b in table if b.stretches)
    return Calibration(
        bins=table,
        ece=ece / len(stretches) if stretches else float("nan"),
        alternatives_coverage=_coverage(stretches, ridden, graph),
        stretches=len(stretches),
    )


def _stretches(route: Route, spans: pd.DataFrame) -> list[_Stretch]:
    lo, hi = (
        ("trip_start_us", "trip_end_us") if "trip_start_us" in spans else ("start_us", "end_us")
    )
    starts = spans[lo].to_numpy(np.int64) - _SPAN_SLACK_US
    ends = spans[hi].to_numpy(np.int64) + _SPAN_SLACK_US
    trips = spans["trip_id"].to_numpy(np.int64)
    out = []
    for seg, conf in zip(route.segments, route.confidence, strict=False):
        if conf is None or not seg.drawn or len(seg.nodes) < 2:
            continue
        inside = np.flatnonzero((starts <= seg.start_us) & (seg.end_us <= ends))
        if inside.size == 0:
            continue
        edges = frozenset(zip(seg.nodes[:-1], seg.nodes[1:], strict=True))
        shown = set(edges)
        for alt in conf.alternatives:
            shown |= set(zip(alt.nodes[:-1], alt.nodes[1:], strict=True))
        out.append(_Stretch(int(trips[inside[0]]), conf.probability, edges, frozenset(shown)))
    return out


def _bins(stated: np.ndarray, right: np.ndarray, bins: int) -> tuple[ReliabilityBin, ...]:
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, stated, side="right") - 1, 0, bins - 1)
    out = []
    for b in range(bins):
        mask = which == b
        n = int(mask.sum())
        out.append(
            ReliabilityBin(
                lo=float(edges[b]),
                hi=float(edges[b + 1]),
                stretches=n,
                stated=float(stated[mask].mean()) if n else float("nan"),
                right=float(right[mask].mean()) if n else float("nan"),
            )
        )
    return tuple(out)


def _coverage(
    stretches: list[_Stretch], ridden: dict[int, set[tuple[int, int]]], graph: RoadGraph
) -> float:
    """True length (each ridden edge once per trip) on a shown way, over the true length."""
    length = {
        (int(s), int(d)): float(m)
        for s, d, m in zip(graph.edge_src, graph.edge_dst, graph.edge_length_m, strict=True)
    }
    shown: dict[int, set[tuple[int, int]]] = {}
    for s in stretches:
        shown.setdefault(s.trip, set()).update(s.shown)
    total = sum(length.get(e, 0.0) for edges in ridden.values() for e in edges)
    hit = sum(
        length.get(e, 0.0) for trip, edges in ridden.items() for e in edges & shown.get(trip, set())
    )
    return hit / total if total else float("nan")
