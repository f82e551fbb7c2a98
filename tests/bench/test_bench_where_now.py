"""``tagtrail bench accuracy --where-now``: the where-now and intercept columns on a small city."""

from __future__ import annotations

from typer.testing import CliRunner

from tagtrail.bench.engine_accuracy import run_accuracy
from tagtrail.bench.engine_priors import PriorOptions, run_priors
from tagtrail.bench.engine_scenario import AccuracyOptions
from tagtrail.cli import app


def test_where_now_and_intercept_are_scored_on_tagtrail_rows() -> None:
    options = AccuracyOptions(
        seed=3, bikes=40, hours=1.0, size_m=1500.0, coverages=(0.5,), miss_rates=(0.3,),
        clones=0, thefts=1, hmm=False, route_oracle=False, where_now=True,
    )  # fmt: skip
    rows = {r["method"]: r for r in run_accuracy(options)}
    assert "where_now_hit" not in rows["shortest_path"]
    row = rows["tagtrail"]
    assert set(row["where_now_hit"]) == {"5", "15", "30"}
    for minutes in ("5", "15", "30"):
        assert row["where_now_cases"][minutes] > 0
        assert 0.0 <= row["where_now_hit"][minutes] <= 1.0
        # The 90% region is far smaller than the reach circle it replaces.
        assert 0.0 < row["where_now_area_km2"][minutes] < row["reach_area_km2"][minutes]
    assert row["intercept_cases"] > 0
    for key in ("intercept_top3", "eta_window_hit", "nearest_top3", "model_top3", "history_top3"):
        assert 0.0 <= row[key] <= 1.0
    assert row["eta_window_median_s"] > 0  # reported, so a window cannot be trivially wide
    assert set(row["intercept_bounds"]) == {"reachable", "behind_missed", "oracle_step"}
    assert row["intercept_variants"]["api"] == row["intercept_top3"]


def test_intercept_is_scored_on_the_last_of_several_mornings() -> None:
    options = AccuracyOptions(
        seed=3, bikes=40, hours=1.0, size_m=1500.0, coverages=(0.5,), miss_rates=(0.3,),
        clones=0, thefts=1, hmm=False, route_oracle=False, where_now=True,
    )  # fmt: skip
    [row] = run_priors(options, PriorOptions(days=2, habits=True, priors=("none",)))
    assert row["intercept_cases"] > 0
    assert 0.0 <= row["intercept_top3"] <= 1.0
    # Every answer is scored on the same cases, the product's among them.
    assert "blend" in row["intercept_variants"]


def test_the_flag_prints_the_where_now_table() -> None:
    result = CliRunner().invoke(
        app,
        ["bench", "accuracy", "--bikes", "30", "--hours", "0.5", "--size-m", "1200",
         "--coverage", "0.5", "--miss-rate", "0.3", "--no-hmm", "--no-route-oracle",
         "--where-now"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Where now (90% region) and intercept" in result.output
