"""The path likelihood: how probable one candidate road path is for a gap between passages.

A candidate ``P`` of length ``L`` between two consecutive passages ``dt`` seconds apart scores
the sum of three log terms (the whole model is described in :mod:`track_engine.paths`):

* **negative evidence** — the candidate's own ``miss_loglik``, one ``log(miss_rate)`` per reader
  it passes silently (built by :mod:`track_engine.path_candidates`);
* **time consistency** — :meth:`PathModel.speed_loglik` of the implied speed ``L / dt``,
  around the population's or the rider's own typical speed;
* **a detour prior** — :meth:`PathModel.detour_loglik` of ``L`` against the shortest way.

Direction of travel at two-antenna readers couples neighbouring segments and is weighed in the
route decoding (:mod:`track_engine.path_decoding`), not here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from track_engine.path_candidates import Candidate

__all__ = ["PathModel", "score"]


@dataclass(frozen=True)
class PathModel:
    """Parameters of the path likelihood (see the module docstring)."""

    typical_speed_mps: float = 4.5  # ~16 km/h, the middle of commuter e-bike speeds
    speed_log_sigma: float = 0.45
    # Below this log-likelihood a speed is "unusual but explainable" (a stop, a van).
    speed_floor_loglik: float = -3.0
    max_speed_mps: float = 17.0
    # A rider's own speed varies much less than the population's; faster than one's own
    # usual speed is rarer than slower (slower is any stop).
    own_speed_log_sigma: float = 0.2
    own_speed_fast_floor_loglik: float = -6.0
    own_speed_min_segments: int = 2
    # Riders overwhelmingly take near-shortest ways, so a detour must be explained by the
    # readers it avoids, the time, or the direction seen at a reader.
    detour_scale_frac: float = 0.02
    detour_scale_min_m: float = 10.0
    # Meters a missed-reader nat costs, per reader-avoiding candidate search (0: shortest).
    penalties_m: tuple[float, ...] = (0.0, 60.0, 200.0, 600.0, 1e6)
    # Perturbed-graph candidates: how many copies and the spread of the edge-length factor.
    samples: int = 32
    sample_sigma: float = 0.25
    sample_seed: int = 0
    # Candidates per segment kept for the joint (Viterbi) decoding of a route.
    beam: int = 8
    direction_steepness: float = 4.0
    direction_floor: float = 0.05
    u_turn_loglik: float = -2.0
    # How a segment's path is picked from the decoding: "map" (the jointly most probable
    # candidates, Viterbi) or "overlap" (per segment, the candidate with the largest expected
    # length in common with the true path under the posterior marginals).
    decision: str = "map"

    def speed_loglik(
        self, length_m: float, dt_s: float, own_speed_mps: float | None = None
    ) -> float:
        """Log-likelihood of covering ``length_m`` in ``dt_s``; ``-inf`` when impossible.

        With ``own_speed_mps`` (the rider's estimated typical speed) the distribution is
        centred there and narrower, and being faster costs more than being slower.
        """
        if length_m <= 0.0:
            return 0.0
        if dt_s <= 0.0 or length_m / dt_s > self.max_speed_mps:
            return -math.inf
        v = math.log(length_m / dt_s)
        if own_speed_mps is None:
            z = (v - math.log(self.typical_speed_mps)) / self.speed_log_sigma
            return max(-0.5 * z * z, self.speed_floor_loglik)
        z = (v - math.log(own_speed_mps)) / self.own_speed_log_sigma
        floor = self.own_speed_fast_floor_loglik if z > 0 else self.speed_floor_loglik
        return max(-0.5 * z * z, floor)

    def detour_loglik(self, length_m: float, shortest_m: float) -> float:
        """Log prior of a path ``length_m`` long when the shortest is ``shortest_m``."""
        scale = max(self.detour_scale_frac * shortest_m, self.detour_scale_min_m)
        return -max(length_m - shortest_m, 0.0) / scale


def score(
    candidate: Candidate,
    *,
    shortest_m: float,
    dt_s: float,
    model: PathModel,
    own_speed_mps: float | None = None,
) -> float:
    """Log-likelihood of one candidate for a gap of ``dt_s`` seconds (direction aside)."""
    return (
        candidate.miss_loglik
        + model.speed_loglik(candidate.length_m, dt_s, own_speed_mps)
        + model.detour_loglik(candidate.length_m, shortest_m)
    )
