"""Companions: tags that pass the same readers as a target tag, together, more than once.

A van carrying several stolen bikes, or a thief riding beside the stolen bike on his own
tagged one, shows up as other tags passing the same readers within seconds of the target, at
more than one reader. On a busy road many tags pass within seconds of the target by chance,
so each candidate is scored against chance:

Under the null hypothesis "tag X moves independently of the target", X's passages at reader
``r`` fall uniformly over the period looked at, so the chance that one of them lands within
``±window_s`` of a given target passage at ``r`` is ``n_X(r) · 2·window_s / duration``. Summed
over the target's passages this is the number of co-occurrences *expected by chance*,
``E_X``; the observed count ``k`` is scored by the Poisson tail ``P(K >= k | E_X)``, reported as
``score = -log10(p)``. A tag that passes the target's readers often (a neighbour on the same
commute) has a large ``E_X`` and needs many more shared passages to score as high as a tag
seen only when the target was.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import poisson

COMPANION_COLUMNS = ["tag_id", "shared", "readers", "expected", "score"]
SHARED_COLUMNS = ["tag_id", "reader_id", "target_at_us", "companion_at_us"]


def score_companions(
    co: pd.DataFrame,
    passage_counts: pd.DataFrame,
    target: pd.DataFrame,
    *,
    window_s: float,
    duration_s: float,
    min_shared: int = 2,
) -> pd.DataFrame:
    """Score candidate companions; most significant first (``COMPANION_COLUMNS``).

    ``co``: co-occurrences (``SHARED_COLUMNS``: companion tag, reader, target and companion
    closest-approach times). ``passage_counts``: tag_id, reader_id, passages — each
    candidate's passages at the target's readers over the period. ``target``: the target's
    passages (reader_id). ``shared`` counts distinct target passages shared, so a companion
    is never counted twice for one passage; at least ``min_shared`` are needed.
    """
    if co.empty or duration_s <= 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COMPANION_COLUMNS})
    shared = co.groupby("tag_id").agg(
        shared=("target_at_us", "nunique"), readers=("reader_id", "nunique")
    )
    shared = shared[shared["shared"] >= min_shared]
    # How often the target passed each reader: a companion's passages there are each a chance.
    visits = target.groupby("reader_id").size().rename("target_passages").reset_index()
    counts = passage_counts.merge(visits, on="reader_id")
    p_hit = min(2.0 * window_s / duration_s, 1.0)
    counts["expected"] = counts["passages"] * counts["target_passages"] * p_hit
    expected = counts.groupby("tag_id")["expected"].sum()
    out = shared.join(expected, how="left").fillna({"expected": 0.0})
    # Floor at a tenth of a chance co-occurrence: a tag never seen elsewhere is still a tag.
    mu = np.maximum(out["expected"].to_numpy(np.float64), 0.1 * p_hit)
    p = poisson.sf(out["shared"].to_numpy(np.int64) - 1, mu)
    out["score"] = -np.log10(np.maximum(p, 1e-300))
    out = out.reset_index().sort_values(["score", "shared"], ascending=False, kind="mergesort")
    return out[COMPANION_COLUMNS].reset_index(drop=True)
