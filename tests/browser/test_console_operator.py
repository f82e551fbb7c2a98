"""The operator's desk in a real browser (headless Chromium through Selenium, the real API on
the real PostgreSQL): an operator lands on the readers' desk and is offered no desk that
shows bikes (asking for one by its address sends the operator back); readers nobody heard are
"never heard", not "offline"; once a gateway's statuses and reads arrive, each reader shows
what its gateway said, when it was last heard, and a reader not in the deployment appears
among the unknown readers with the reads held apart. Screenshots go to test-artifacts/screenshots/.

Helpers are this module's own (see test_console_audit.py on importing from conftest).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from browser_support import add_user, login, ride, wait
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec

from track_engine.reader_status import Heartbeat, record_heartbeats


def table(browser: WebDriver, table_id: str) -> list[list[str]]:
    """The cells' texts of a table's rows (the placeholder row of an empty table left out)."""
    found: list[list[str]] = browser.execute_script(
        """return [...document.querySelectorAll(`#${arguments[0]} tbody tr`)]
             .filter((tr) => !tr.querySelector("td.muted[colspan]"))
             .map((tr) => [...tr.cells].map((td) => td.innerText.trim()))""",
        table_id,
    )
    return found


@pytest.fixture(scope="module")
def operator(console_db: str) -> str:
    """An operator account."""
    add_user(console_db, "the-operator", "operator")
    return "the-operator"


def test_operator_desk(browser: WebDriver, server: str, operator: str, screenshot: Any) -> None:
    login(browser, server, operator)
    wait(browser, ec.url_contains("/operator"))
    wait(browser, lambda b: len(table(b, "readers")) == 6)
    nav = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#top nav a")]
    assert [h.rsplit("/", 1)[-1] for h in nav] == ["operator"]
    assert "operator" in browser.find_element(By.CSS_SELECTOR, "#top .who").text
    # Nothing has been heard from any reader here: "never heard", not "offline"; the last
    # heard column says so too.
    heads = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#readers thead th")]
    assert "Last heard" in heads
    column = heads.index("Last heard")
    rows = table(browser, "readers")
    assert {r[1] for r in rows} == {"never heard"}
    assert {r[column] for r in rows} == {"—"}
    assert browser.find_element(By.ID, "kpi-never_heard").text == "6"
    assert browser.find_element(By.ID, "kpi-offline").text == "0"
    screenshot("readers")
    assert table(browser, "unknown") == []
    # Desks that show bikes are not the operator's: their addresses lead back here.
    for page in ("/desk", "/officer", "/registration", "/resident"):
        browser.get(f"{server}{page}")
        wait(browser, ec.url_contains("/operator"))


def test_operator_sees_health_told_apart_and_unknown_readers(
    browser: WebDriver, server: str, console_db: str, operator: str, screenshot: Any
) -> None:
    now = datetime.now(UTC)
    # What the status recorder writes from the gateways' retained documents: R1 sends
    # heartbeats but no tag (silent), R3's port closed (offline).
    with psycopg.connect(console_db) as conn:
        record_heartbeats(
            conn,
            [
                Heartbeat("R1", now - timedelta(seconds=3), status="silent", status_at=now),
                Heartbeat("R3", now - timedelta(minutes=4), status="offline", status_at=now),
            ],
        )
    ride(console_db, "E2801160600002052800AB01", now - timedelta(minutes=2), ["R2"], batch_seq=91)
    ride(console_db, "E2801160600002052800AB02", now - timedelta(minutes=1), ["R-STRAY"],
         batch_seq=92)  # fmt: skip
    login(browser, server, operator)
    wait(browser, ec.url_contains("/operator"))
    wait(browser, lambda b: len(table(b, "unknown")) == 1)
    health = {r[0]: r[1] for r in table(browser, "readers")}
    assert health == {
        "R0": "never heard", "R1": "silent", "R2": "online", "R3": "offline",
        "R4": "never heard", "R5": "never heard",
    }  # fmt: skip
    [stray] = table(browser, "unknown")
    assert (stray[0], stray[1], stray[2], stray[4]) == ("R-STRAY", "11", "1", "gw-browser")
    assert "R-STRAY" not in health  # never a reader of the deployment
    screenshot("health")
    browser.execute_script("document.getElementById('unknown-title').scrollIntoView()")
    screenshot("unknown")
