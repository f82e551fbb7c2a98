"""``tagtrail bench accuracy --days N --habits --prior …``: the way priors on a small city."""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from tagtrail.bench.engine_priors import PriorOptions, working_mornings
from tagtrail.cli import app


def test_each_prior_is_scored_on_the_same_last_morning() -> None:
    result = CliRunner().invoke(
        app,
        ["bench", "accuracy", "--seed", "7", "--bikes", "60", "--hours", "2", "--days", "3",
         "--habits", "--coverage", "0.5", "--miss-rate", "0.3",
         "--prior", "none,fleet,personal,fleet+personal", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {r["prior"]: r for r in orjson.loads(result.stdout)["results"]}
    assert set(rows) == {"none", "fleet", "personal", "fleet+personal"}
    for row in rows.values():
        assert row["method"] == "tagtrail"
        assert (row["days"], row["habits"], row["bikes"]) == (3, True, 60)
        assert row["trips"] == rows["none"]["trips"] > 0  # one scored morning for all
        assert row["history_rides"] > 0
        assert row["stolen_trips"] >= 0
    assert rows["none"]["learn_seconds"] is None
    assert rows["fleet"]["learn_seconds"] > 0
    # Riders with habits ride as the fleet did before: the fleet prior does not lose recall.
    assert rows["fleet"]["recall"] >= rows["none"]["recall"]


def test_the_mornings_are_working_days_and_learned_priors_need_habits_and_history() -> None:
    mornings = working_mornings(5)
    assert len(mornings) == 5
    assert all((m.hour, m.minute) == (23, 0) for m in mornings)  # 07:00 local (UTC+8)
    assert [(m.day + 1) for m in mornings] == [3, 4, 5, 6, 9]  # Tue–Fri, then Monday (local)
    with pytest.raises(ValueError, match="habits"):
        PriorOptions(days=3, habits=False, priors=("none", "fleet"))
    with pytest.raises(ValueError, match="days"):
        PriorOptions(days=1, habits=True, priors=("fleet",))
    with pytest.raises(ValueError, match="priors"):
        PriorOptions(days=3, habits=True, priors=("popular",))
    PriorOptions(days=1, habits=False, priors=("none",))  # nothing learned: allowed
