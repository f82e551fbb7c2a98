"""``tagtrail bench query --api-workers 2``: the API as two uvicorn worker processes answers
every endpoint (one officer token, signed once, verifies in either worker)."""

from __future__ import annotations

import orjson
from testsupport import ADMIN_URL
from typer.testing import CliRunner

from tagtrail.cli import app


def test_query_with_two_api_workers_answers_every_endpoint() -> None:
    args = ["bench", "query", "--stored-rows", "10000", "--seconds", "3", "--clients", "4"]
    args += ["--hours", "0.25", "--api-workers", "2", "--admin-url", ADMIN_URL, "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.stdout)
    assert doc["options"]["api_workers"] == 2
    for name in ("route", "last_seen", "next_readers"):
        assert doc[name]["requests"] > 0, name
