"""Alerts: reads of watched tags, screened for repeats — state and reads in, new state and
the alerts to raise out. Storage gives each raised alert its id (:meth:`insert_alerts`)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from track_engine.core.coding import Coding
from track_engine.core.state import AlertDraft, EngineState
from track_engine.memory import OpenReads


def watch_hits(reads: OpenReads, coding: Coding) -> pd.DataFrame:
    """Reads of watched tags: the first per (watch, reader) in this micro-batch."""
    watched = coding.watches
    if not len(watched.codes):
        return pd.DataFrame()
    hit = np.isin(reads.tag, watched.codes)
    if not hit.any():
        return pd.DataFrame()
    frame = pd.DataFrame(
        {
            "tag_code": reads.tag[hit],
            "reader_code": reads.reader[hit],
            "read_at_us": reads.read_at_us[hit],
        }
    ).merge(watched.frame, on="tag_code")
    # The first read of a watched tag at a reader is the news; later reads of the same
    # visit (within the passage gap) would only repeat it.
    return frame.sort_values("read_at_us", kind="stable").drop_duplicates(
        ["watch_id", "reader_code"]
    )


def screen_alerts(
    state: EngineState, hits: pd.DataFrame, coding: Coding, *, gap_us: int
) -> tuple[EngineState, list[AlertDraft]]:
    """The alerts ``hits`` raise: a hit within one gap after the last one of its watch at
    its reader repeats it. Every hit moves that de-duplication time on."""
    if hits.empty:
        return state, []
    last = dict(state.last_alert_us)
    drafts: list[AlertDraft] = []
    for hit in hits.to_dict("records"):
        watch_id, reader_code = int(hit["watch_id"]), int(hit["reader_code"])
        read_at_us = int(hit["read_at_us"])
        previous = last.get((watch_id, reader_code))
        last[(watch_id, reader_code)] = read_at_us
        if previous is not None and 0 <= read_at_us - previous <= gap_us:
            continue
        drafts.append(
            AlertDraft(
                watch_id=watch_id,
                bike_id=int(hit["bike_id"]),
                kind=str(hit["kind"]),
                tag_id=str(hit["tag_id"]),
                reader_id=coding.readers.name(reader_code),
                read_at_us=read_at_us,
            )
        )
    return replace(state, last_alert_us=last), drafts
