"""Companion scoring: shared passages against what chance would give on a busy road."""

from __future__ import annotations

import pandas as pd
import pytest

from track_engine.companions import COMPANION_COLUMNS, score_companions


def co(tag: str, *times_s: int) -> list[tuple[str, str, int, int]]:
    return [(tag, f"R{i}", t * 1_000_000, t * 1_000_000 + 2_000_000) for i, t in enumerate(times_s)]


def test_rare_companion_outscores_a_busy_regular() -> None:
    target = pd.DataFrame({"reader_id": ["R0", "R1", "R2"]})
    shared = pd.DataFrame(
        co("VAN", 0, 60, 120) + co("BUSY", 0, 60, 120) + co("ONCE", 0),
        columns=["tag_id", "reader_id", "target_at_us", "companion_at_us"],
    )
    counts = pd.DataFrame(
        [("VAN", f"R{i}", 1) for i in range(3)] + [("BUSY", f"R{i}", 400) for i in range(3)],
        columns=["tag_id", "reader_id", "passages"],
    )
    out = score_companions(shared, counts, target, window_s=10, duration_s=7200)
    assert list(out.columns) == COMPANION_COLUMNS
    assert out["tag_id"].tolist() == ["VAN", "BUSY"]  # ONCE shared a single passage: not listed
    van, busy = out.iloc[0], out.iloc[1]
    assert van["shared"] == busy["shared"] == 3
    assert van["expected"] == pytest.approx(3 * 20 / 7200)
    assert busy["expected"] == pytest.approx(3 * 400 * 20 / 7200)
    assert van["score"] > 5.0 > busy["score"]


def test_nothing_shared_gives_an_empty_frame() -> None:
    empty = pd.DataFrame(columns=["tag_id", "reader_id", "target_at_us", "companion_at_us"])
    out = score_companions(
        empty, pd.DataFrame(columns=["tag_id", "reader_id", "passages"]),
        pd.DataFrame({"reader_id": ["R0"]}), window_s=10, duration_s=3600,
    )  # fmt: skip
    assert out.empty
    assert list(out.columns) == COMPANION_COLUMNS
