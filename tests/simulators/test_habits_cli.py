"""``tagtrail simulate --days N --habits``: whole days to files, independent of chunking."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from simulators.fleet import LOCAL_UTC_OFFSET_H
from tagtrail.cli import app

ARGS = ["simulate", "--seed", "3", "--bikes", "150", "--size-m", "1500", "--coverage", "0.3",
        "--days", "3", "--habits", "--start-day", "2025-03-07"]  # fmt: skip


def test_three_days_to_files_whatever_the_chunking(tmp_path: Path) -> None:
    runner = CliRunner()
    runs = {"a": ["--chunk-bikes", "100", "--workers", "2"],
            "b": ["--chunk-bikes", "1000", "--workers", "1"]}  # fmt: skip
    for name, extra in runs.items():
        res = runner.invoke(app, [*ARGS, *extra, "--out", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
    a, b = (pd.read_parquet(tmp_path / n / "truth" / "trips.parquet") for n in runs)
    pd.testing.assert_frame_equal(a, b)
    day = (a["start_us"] + LOCAL_UTC_OFFSET_H * 3.6e9) // 86_400_000_000
    kinds = a.groupby(day - day.min())["kind"].agg(set)
    assert list(kinds.index) == [0, 1, 2]  # Friday, Saturday, Sunday
    assert "commute" in kinds[0]
    assert "commute" not in kinds[1] | kinds[2]


def test_a_bad_start_day_is_refused(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, [*ARGS[:-1], "2025-13-40", "--out", str(tmp_path)])
    assert res.exit_code != 0
    assert "YYYY-MM-DD" in res.output


def test_bench_habits_reports_both_figures() -> None:
    res = CliRunner().invoke(app, ["bench", "habits", "--bikes", "60", "--days", "3",
                                   "--size-m", "1500", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    figures = json.loads(res.stdout)
    assert figures["riders_measured"] > 20
    assert 0.0 < figures["usual_path_share_without_habits"] < figures["usual_path_share"] <= 1.0
    with_p, without = figures["with_preferences"], figures["without_preferences"]
    assert with_p["arterial_km_share"] > without["arterial_km_share"]
