"""What kind each segment of a route is, from the implied speed along its chosen path.

Step 3 of :func:`track_engine.routes.build_route` (the rules are in that module's docstring):
``"stop"`` (zero length), ``"inferred"`` (a plausible speed), ``"gap"`` (too slow, or no road
path) or ``"impossible"`` (faster than an e-bike even allowing for measurement slack, the same
test :mod:`track_engine.route_outliers` drops misreads by).
"""

from __future__ import annotations

from track_engine.route_geometry import DRAWN_KINDS, PathShapes, RouteSegment

__all__ = ["SEGMENT_KINDS", "classify", "too_fast"]

SEGMENT_KINDS = ("inferred", "gap", "impossible", "stop")
_US_PER_S = 1_000_000
# Slack before a move is called impossible: closest-approach times are good to about a
# second, and a reader's pole stands a few meters from its road node at either end.
_IMPOSSIBLE_SLACK_S = 2.0
_IMPOSSIBLE_SLACK_M = 20.0


def too_fast(distance_m: float, dt_us: int, max_speed_mps: float) -> bool:
    """Whether ``distance_m`` in ``dt_us`` is beyond an e-bike, allowing for measurement slack."""
    return bool(
        max(distance_m - _IMPOSSIBLE_SLACK_M, 0.0)
        > max_speed_mps * (abs(dt_us) / _US_PER_S + _IMPOSSIBLE_SLACK_S)
    )


def classify(
    from_reader: str,
    to_reader: str,
    start_us: int,
    end_us: int,
    nodes: list[int] | None,
    shapes: PathShapes,
    *,
    max_speed_mps: float,
    min_speed_mps: float,
) -> RouteSegment:
    """Kind, distance and speed of one segment (see :mod:`track_engine.routes` for the rules)."""
    dt_s = (end_us - start_us) / _US_PER_S
    if nodes is None:
        return RouteSegment(
            from_reader, to_reader, start_us, end_us, float("nan"), float("nan"), "gap", ()
        )
    distance = shapes.length_m(nodes)
    if distance == 0.0:
        speed = 0.0
        kind = "stop"
    else:
        speed = distance / dt_s if dt_s > 0 else float("inf")
        if too_fast(distance, end_us - start_us, max_speed_mps):
            kind = "impossible"
        elif speed < min_speed_mps:
            kind = "gap"
        else:
            kind = "inferred"
    kept = tuple(nodes) if kind in DRAWN_KINDS else ()
    return RouteSegment(from_reader, to_reader, start_us, end_us, distance, speed, kind, kept)
