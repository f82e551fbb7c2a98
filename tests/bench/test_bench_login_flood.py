"""``tagtrail bench login-flood`` (small): officers' route lookups and a login flood through a
real two-worker API; every answer is counted and none is a 5xx. Correctness only: the figures
are measured by the full-size run (docs/performance.md, "Login flood")."""

from __future__ import annotations

import orjson
from testsupport import ADMIN_URL
from typer.testing import CliRunner

from tagtrail.cli import app


def test_login_flood_counts_every_answer_and_refuses_the_flood_with_429_not_5xx() -> None:
    args = ["bench", "login-flood", "--clients", "8", "--officers", "2", "--seconds", "4"]
    # The latency target is the full-size run's; a smoke run on a shared machine only checks
    # that the command runs, counts and judges.
    args += ["--hours", "0.25", "--p99-target-s", "120", "--admin-url", ADMIN_URL, "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.stdout)
    assert doc["options"]["api_workers"] == 2
    assert doc["server_errors"] == 0
    assert doc["failed_requests"] == 0
    assert doc["route"]["answers"] > 0
    assert doc["logins_429"] > 0  # six clients posting without pause outrun two hash slots
    assert set(doc["login_statuses"]) <= {"200", "401", "429"}
    assert sum(doc["statuses"].values()) == sum(doc["login_statuses"].values()) + sum(
        doc["officer_statuses"].values()
    )
    assert doc["passed"] is True
