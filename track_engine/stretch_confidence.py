"""How sure each stretch of a route is: the chosen way's posterior and its plausible rivals.

Between two sightings the path model (:mod:`track_engine.path_model`) scores a handful of candidate
ways; the posterior of each is its share of the evidence: the candidates' log-likelihoods
(with the direction seen at the readers at both ends, from the forward-backward pass over the
route) normalised to sum to 1 over the candidates kept. A stretch states

* ``probability`` — the posterior of the way drawn (1 when only one way is possible);
* ``alternatives`` — the other ways with a posterior of at least ``MIN_PROBABILITY``, most
  probable first, at most ``MAX_ALTERNATIVES`` of them: what an officer should also look at.

Pure code over arrays: no storage, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "MAX_ALTERNATIVES",
    "MIN_PROBABILITY",
    "Alternative",
    "StretchConfidence",
    "normalise",
    "stretch_confidence",
]

# A way the evidence gives less than 1 in 20 is not worth a patrol's look.
MIN_PROBABILITY = 0.05
# More than a handful of faint lines is noise on a map.
MAX_ALTERNATIVES = 4


@dataclass(frozen=True)
class Alternative:
    """A plausible way other than the chosen one: its road nodes and posterior probability."""

    nodes: tuple[int, ...]
    probability: float


@dataclass(frozen=True)
class StretchConfidence:
    """The posterior of the way drawn for one stretch and the plausible alternatives."""

    probability: float
    alternatives: tuple[Alternative, ...] = ()


def normalise(loglik: NDArray[np.float64]) -> NDArray[np.float64]:
    """Posterior probabilities (summing to 1) from log-likelihoods; all ``-inf``: uniform.

    Raises ValueError for no candidates.
    """
    x = np.asarray(loglik, dtype=np.float64)
    if x.size == 0:
        raise ValueError("a posterior needs at least one candidate")
    top = float(np.max(x))
    if not np.isfinite(top):
        return np.full(x.size, 1.0 / x.size)
    w = np.exp(x - top)
    out: NDArray[np.float64] = w / w.sum()
    return out


def stretch_confidence(
    ways: Sequence[tuple[int, ...]],
    probability: NDArray[np.float64],
    chosen: tuple[int, ...],
    *,
    min_probability: float = MIN_PROBABILITY,
    max_alternatives: int = MAX_ALTERNATIVES,
) -> StretchConfidence:
    """The confidence of a stretch whose candidate ``ways`` have posteriors ``probability``.

    ``chosen`` is the way drawn (the route decoding may pick it jointly with its neighbours,
    so it need not be the most probable one alone); a way not among ``ways`` has probability 0.
    Raises ValueError when ``ways`` and ``probability`` differ in length.
    """
    if len(ways) != len(probability):
        raise ValueError(f"{len(ways)} ways but {len(probability)} probabilities")
    p = [float(x) for x in probability]
    mine = next((p[k] for k, w in enumerate(ways) if w == chosen), 0.0)
    others = sorted(
        (
            Alternative(w, p[k])
            for k, w in enumerate(ways)
            if w != chosen and p[k] >= min_probability
        ),
        key=lambda a: (-a.probability, len(a.nodes), a.nodes),
    )
    return StretchConfidence(probability=mine, alternatives=tuple(others[:max_alternatives]))
