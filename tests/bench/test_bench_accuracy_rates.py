"""``tagtrail bench accuracy`` with learned miss rates and deaf readers, on a small city."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tagtrail.bench.engine_accuracy import run_accuracy
from tagtrail.bench.engine_scenario import AccuracyOptions
from tagtrail.cli import app


def test_each_rate_source_is_scored_and_says_how_wrong_its_rates_were() -> None:
    options = AccuracyOptions(
        seed=3, bikes=40, hours=0.5, size_m=1500.0, coverages=(0.5,), miss_rates=(0.3,),
        clones=0, thefts=1, hmm=False, route_oracle=False,
        reader_rates=("registry", "learned", "oracle"),
        deaf_readers=0.2, history_bikes=60, history_hours=1.0,
    )  # fmt: skip
    rows = {(r["method"], r["reader_rates"]): r for r in run_accuracy(options)}
    assert set(rows) == {
        ("tagtrail", "registry"), ("tagtrail", "learned"), ("tagtrail", "oracle"),
        ("shortest_path", None),
    }  # fmt: skip
    for row in rows.values():
        assert row["deaf_readers"] == 0.2
        assert 0.0 < row["recall"] <= 1.0
        assert row["trips"] > 0
    # The registry does not know which readers went deaf; the oracle does.
    assert rows[("tagtrail", "registry")]["rate_error_mean"] > 0.05
    assert rows[("tagtrail", "oracle")]["rate_error_mean"] == 0.0
    assert rows[("tagtrail", "learned")]["rate_error_mean"] is not None
    assert rows[("shortest_path", None)]["rate_error_mean"] is None
    # Only learning takes time to learn, from the other day's passages.
    learned = rows[("tagtrail", "learned")]
    assert learned["learn_seconds"] > 0
    assert learned["learn_passages"] > 0
    assert rows[("tagtrail", "oracle")]["learn_seconds"] is None


def test_unknown_rate_sources_and_shares_are_refused() -> None:
    with pytest.raises(ValueError, match="reader rates"):
        AccuracyOptions(reader_rates=("surveyed",))
    with pytest.raises(ValueError, match="deaf_readers"):
        AccuracyOptions(deaf_readers=1.5)
    result = CliRunner().invoke(app, ["bench", "accuracy", "--reader-rates", "guessed"])
    assert result.exit_code == 2
    assert "Invalid value: reader rates must be among" in result.output
