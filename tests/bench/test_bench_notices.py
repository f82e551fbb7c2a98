"""``tagtrail bench notices`` runs end to end on a small load: every queued notice is sent and
each latency sample arrives (figures are reported, never asserted)."""

from __future__ import annotations

import math

from tagtrail.bench.notices import NoticeBenchOptions, report_rows, run_notices


def test_bench_notices_small(pg_admin_url: str) -> None:
    doc = run_notices(
        NoticeBenchOptions(alerts=4, subscribers=2, latency_samples=3, admin_url=pg_admin_url)
    )
    assert doc["notices_queued"] == 8
    assert doc["notices_sent"] == 8
    assert doc["latency_samples"] == 3
    assert not math.isnan(doc["alert_to_webhook_ms"]["p50_ms"])
    assert report_rows(doc)[0] == ("alerts × subscribers", "4 × 2")
