"""The officer's case view over time and on paper, in real Chromium: ages keep ticking while
the page is open, an ETA that has passed is marked missed, the page says how current the
stored reads are, and the printed sheet carries the case, the officer, the passage times with
each reader's address, and a map fitted to the route."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from browser_support import add_user, ride, wait
from scenarios import line_city
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from test_console import login, rows, stolen_bike
from testsupport import create_database, drop_database

from track_engine.db.migrate import migrate

STREET = "Jiefang Road"  # the line city's road, named here: every reader's address


@pytest.fixture(scope="module")
def console_db(pg_admin_url: str) -> Iterator[str]:
    """The suite's line city with its road named (the readers get an address), and one
    account per desk."""
    name, url = create_database(pg_admin_url)
    try:
        migrate(url)
        line_city(url, street=STREET)
        for role in ("officer", "registrar", "admin"):
            add_user(url, f"the-{role}", role)
        yield url
    finally:
        drop_database(pg_admin_url, name)


def _open_case(browser: WebDriver, server: str, plate: str, case: str) -> None:
    browser.get(f"{server}/routes/{plate}?case_number={case}")
    wait(browser, lambda b: len(rows(b, "passages")) == 3)


def _seconds_ago(browser: WebDriver) -> int:
    text = browser.find_element(By.CSS_SELECTOR, "#last-seen time[data-age]").text
    match = re.fullmatch(r"(\d+) s ago", text)
    assert match, text
    return int(match.group(1))


def test_ages_tick_and_the_page_says_how_current_it_is(
    browser: WebDriver, server: str, api: httpx.Client, console_db: str, screenshot: Any
) -> None:
    body = stolen_bike(api, console_db, 131, "HZ-FRESH-1")
    ride(
        console_db,
        body["tag_id"],
        datetime.now(UTC) - timedelta(seconds=175),
        ["R0", "R1", "R2"],
        batch_seq=1,
    )
    login(browser, server, "the-officer", "/officer")
    _open_case(browser, server, body["plate"], "HZ-FRESH-1")
    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#last-seen time[data-age]"))
    first = _seconds_ago(browser)
    # Nothing is reloaded: the same element counts on by itself.
    wait(browser, lambda b: _seconds_ago(b) >= first + 10, timeout=25)
    wait(browser, lambda b: "Newest stored read" in b.find_element(By.ID, "freshness").text)
    screenshot("ticking")


def test_a_passed_eta_is_missed_and_the_sheet_has_times_and_a_fitted_map(
    browser: WebDriver, server: str, api: httpx.Client, console_db: str, screenshot: Any
) -> None:
    body = stolen_bike(api, console_db, 132, "HZ-SHEET-B1")
    ride(
        console_db,
        body["tag_id"],
        datetime.now(UTC) - timedelta(minutes=20),
        ["R0", "R1", "R2"],
        batch_seq=1,
    )
    login(browser, server, "the-officer", "/officer")
    _open_case(browser, server, body["plate"], "HZ-SHEET-B1")
    wait(browser, lambda b: rows(b, "next"))
    missed = browser.find_elements(By.CSS_SELECTOR, "#next tbody tr.missed")
    assert missed, "an ETA twenty minutes past is marked missed"
    assert "missed" in missed[0].text
    screenshot("missed-eta")

    # Printing (from the browser's menu, which fires beforeprint) lays the map out at its
    # paper size, fits the route into it, and shows the passage times as text.
    browser.execute_script("window.dispatchEvent(new Event('beforeprint'))")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".print-head").is_displayed())
    meta = browser.find_element(By.ID, "sheet-meta").text
    assert "HZ-SHEET-B1" in meta
    assert "the-officer" in meta
    times = browser.find_elements(By.CSS_SELECTOR, "#passages button.link")
    assert len(times) == 3
    assert all(t.is_displayed() and re.search(r"\d\d:\d\d:\d\d", t.text) for t in times)
    # Each passage's reader by id and by where it stands, as on screen.
    printed = rows(browser, "passages")
    for reader, line in zip(["R0", "R1", "R2"], printed, strict=True):
        assert f"{reader} · {STREET}" in line, printed
    assert browser.find_element(By.ID, "passages").is_displayed()
    # The route's labels on the printed map name them the same way, beside the time.
    labels = browser.execute_script(
        "return [...document.querySelectorAll('#map .time-label')].map((e) => e.textContent)"
    )
    assert len(labels) == 3, labels
    for reader in ("R0", "R1", "R2"):
        assert any(f"· {reader} · {STREET}" in label for label in labels), labels
    fitted = browser.execute_script(
        """const map = document.getElementById("map").getBoundingClientRect();
           const line = [...document.querySelectorAll("#map path[stroke='#c62828']")]
             .map((p) => p.getBoundingClientRect()).filter((r) => r.width > 0);
           return line.length > 0 && line.every((r) => r.left >= map.left && r.right <= map.right
             && r.top >= map.top && r.bottom <= map.bottom) && map.width > 600;"""
    )
    assert fitted, "the route lies inside the printed map"
    screenshot("print-sheet")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    browser.execute_script("window.dispatchEvent(new Event('afterprint'))")
    assert "printing" not in browser.find_element(By.TAG_NAME, "body").get_attribute("class")
