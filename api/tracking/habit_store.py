"""A bike's own way prior (its tags' rows of ``personal_way_priors``, migration 0160), as a
:class:`api.tracking.store.Lookup`: one statement by key, on a blocking or an asyncio
connection. The engine's job writes it (:mod:`track_engine.db.personal_priors`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from api.tracking.store import Lookup
from track_engine.db.personal_priors import LOAD_SQL, prior_of_rows
from track_engine.way_prior import WayPrior


def personal_prior(tag_ids: Sequence[str]) -> Lookup[tuple[WayPrior, datetime | None]]:
    """The summed prior of ``tag_ids`` (one bike's tags) and when it was learned."""
    return Lookup(LOAD_SQL, (sorted(set(tag_ids)),), prior_of_rows)
