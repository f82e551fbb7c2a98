"""The case view's "where now" layer, in real Chromium: a faint heat of the 90% region on the
map, its area beside the reach circle's, and asked again (and audited) every 30 s while the
page is open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from browser_support import ride, wait
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from test_console import login, rows, stolen_bike


def _where_now_lookups(db: str) -> int:
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'bike.where_now'"
            " AND actor = 'the-officer'"
        ).fetchone()
    return int(row[0]) if row else 0


def _heat_cells(browser: WebDriver) -> int:
    count: int = browser.execute_script(
        """return document.querySelectorAll('#map path.where-now-cell').length"""
    )
    return count


def test_where_now_layer_shows_and_refreshes(
    browser: WebDriver, server: str, api: httpx.Client, console_db: str, screenshot: Any
) -> None:
    body = stolen_bike(api, console_db, 141, "HZ-WHERE-1")
    ride(
        console_db, body["tag_id"], datetime.now(UTC) - timedelta(minutes=4), ["R0", "R1", "R2"],
        batch_seq=1,
    )  # fmt: skip
    login(browser, server, "the-officer", "/officer")
    browser.get(f"{server}/routes/{body['plate']}?case_number=HZ-WHERE-1")
    wait(browser, lambda b: len(rows(b, "passages")) == 3)
    wait(browser, lambda b: "Where now" in b.find_element(By.ID, "where-now").text)
    note = browser.find_element(By.ID, "where-now").text
    assert "km²" in note
    wait(browser, lambda b: _heat_cells(b) > 0)
    screenshot("where-now")
    first = _where_now_lookups(console_db)
    assert first >= 1
    # Nothing is clicked: the page asks again on its own within 30 s (each lookup audited).
    wait(browser, lambda b: _where_now_lookups(console_db) > first, timeout=45)
    assert _heat_cells(browser) > 0
