"""Direction of travel at two-antenna readers, as evidence about the path on either side.

A reader on a main road has two antennas facing opposite ways along it; the passage's
``direction`` (``"<first>-><last>"``, see :func:`track_engine.passages.fold_passages`) says
the tag was first on the side one antenna faces and last on the side the other faces, so it
moved towards the heading of the *last* one. Labels are compass points (``"N"``, ``"SW"``,
``"NNE"``) or headings in degrees clockwise from north (``"12.5"``).

For a path through the reader's node ``n`` that arrives from node ``p`` and leaves to node
``q``, the movement along that heading's unit vector ``u`` is
``c = (unit(q - n) - unit(p - n)) · u`` in ``[-2, 2]``: 2 for straight through along ``u``, about
1 for a turn onto or off the axis, negative when the path would have moved the other way. The
observation is modelled as ``P(direction | c) = floor + (1 - floor) · sigmoid(k · c)``: a path
that contradicts the antennas is not ruled out (a stray read, a bike walked on the pavement)
but costs about ``ln(floor)``. This is what fixes the first and last edge of the paths on each
side of a reader — exactly where near-equal alternatives diverge.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

_POINTS = ("N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE",
           "S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW")  # fmt: skip
_COMPASS = {name: 22.5 * i for i, name in enumerate(_POINTS)}


def parse_heading(label: str) -> float | None:
    """Heading in degrees of a compass point or a number; None when it is neither."""
    label = label.strip().upper()
    if label in _COMPASS:
        return _COMPASS[label]
    try:
        value = float(label)
    except ValueError:
        return None
    return value % 360.0 if math.isfinite(value) else None


def travel_heading(direction: str) -> float | None:
    """The heading a passage's ``direction`` says the tag moved towards; None when unknown."""
    if "->" not in direction:
        return None
    return parse_heading(direction.rsplit("->", 1)[1])


def direction_loglik(
    xy_m: NDArray[np.float64],
    node: int,
    heading_deg: float,
    came_from: NDArray[np.int64],
    goes_to: NDArray[np.int64],
    *,
    steepness: float = 4.0,
    floor: float = 0.05,
) -> NDArray[np.float64]:
    """Log-likelihood of the observed direction for every (came_from[i], goes_to[j]) pair.

    ``came_from`` / ``goes_to`` are the neighbouring nodes of ``node`` on the paths before and
    after it; -1 means unknown (no path on that side, or a zero-length one), which counts as
    that side's half of the movement being along the axis neither way. Shape
    ``(len(came_from), len(goes_to))``.
    """
    rad = math.radians(heading_deg)
    axis = np.array([math.sin(rad), math.cos(rad)])  # x east, y north
    here = xy_m[node]

    def along(others: NDArray[np.int64]) -> NDArray[np.float64]:
        vec = xy_m[np.maximum(others, 0)] - here
        norm = np.hypot(vec[:, 0], vec[:, 1])
        proj = (vec @ axis) / np.maximum(norm, 1e-9)
        return np.where((others >= 0) & (norm > 0), proj, 0.0)

    c = along(goes_to)[None, :] - along(came_from)[:, None]
    p = floor + (1.0 - floor) / (1.0 + np.exp(-steepness * c))
    out: NDArray[np.float64] = np.log(p)
    return out
