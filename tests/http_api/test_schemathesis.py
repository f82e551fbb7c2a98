"""Property-based requests from the OpenAPI schema (schemathesis): whatever arrives, valid or
not, the answer is never a 5xx. Examples per operation are bounded to keep the suite quick."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scenarios import line_city
from schemathesis.generation import GenerationMode

MAX_EXAMPLES = 6


@pytest.fixture(scope="module", autouse=True)
def road_network(api_db: str) -> None:
    """A road network, so that routing operations have something to route on."""
    line_city(api_db)


@pytest.mark.parametrize(
    "role", ["admin", "officer", "registrar", "resident", "auditor", "operator"]
)
def test_no_server_errors_for_any_generated_request(
    client: TestClient, headers: dict[str, dict[str, str]], role: str
) -> None:
    app: Any = client.app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        # Streams end quickly under test; everything else is generated freely.
        query = {"max_seconds": 0.2} if operation.path.startswith("/api/v1/live/") else None
        strategy = st.one_of(
            operation.as_strategy(mode, query=query)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        )

        @given(case=strategy)
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            response = case.call(headers=headers[role])
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    f"{response.text[:300]}"
                )

        check()
    assert operations >= 40
    assert failures == [], "\n".join(failures)
