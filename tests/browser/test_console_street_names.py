"""Street names in the console, in real Chromium against the real API and PostgreSQL: the
case view names readers by where they stand ("R2 · 3rd Street × Jiefang Road"), the map
labels its streets once zoomed in, and the search box finds a street by any part of its name
and fits the map to it (route page and operator page)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psycopg
import pytest
from browser_support import add_user, ride, wait
from scenarios import LAT0, LON0, SPACING_M
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from test_console import login, rows, stolen_bike
from testsupport import create_database, drop_database

from api.registry import loaders as registry
from track_engine.db.migrate import migrate

M_PER_DEG_LAT = 111_320.0


def named_city(url: str) -> None:
    """Jiefang Road: readers R0..R5 ``SPACING_M`` apart west to east; 3rd Street crosses it
    at R2 (nodes 6 south and 7 north of it)."""
    x = np.array([*(np.arange(6) * SPACING_M), 2 * SPACING_M, 2 * SPACING_M])
    y = np.array([0.0] * 6 + [-300.0, 300.0])
    lon = LON0 + x / (M_PER_DEG_LAT * np.cos(np.radians(LAT0)))
    lat = LAT0 + y / M_PER_DEG_LAT
    nodes = pd.DataFrame(
        {"node_id": range(8), "lon": lon, "lat": lat, "x_m": x, "y_m": y, "kind": "junction"}
    )
    pairs = [(i, i + 1, "Jiefang Road") for i in range(5)] + [
        (6, 2, "3rd Street"),
        (2, 7, "3rd Street"),
    ]
    src = [a for a, b, _ in pairs] + [b for a, b, _ in pairs]
    dst = [b for a, b, _ in pairs] + [a for a, b, _ in pairs]
    names = [n for *_, n in pairs] * 2
    length = np.hypot(x[dst] - x[src], y[dst] - y[src])
    edges = pd.DataFrame(
        {"edge_id": range(len(src)), "src": src, "dst": dst, "length_m": length,
         "road_class": "street", "oneway": False, "name": names}
    )  # fmt: skip
    readers = pd.DataFrame(
        {
            "reader_id": [f"R{i}" for i in range(6)],
            "protocol": "r2000",
            "lon": lon[:6],
            "lat": lat[:6],
            "x_m": x[:6],
            "y_m": y[:6],
            "node_id": range(6),
            "antennas": 1,
            "antenna_headings": [[90.0]] * 6,
            "clock_offset_ms": 0.0,
            "miss_rate": 0.1,
        }
    )
    with psycopg.connect(url) as conn:
        network_id = registry.store_road_network(
            conn, name="named", source="test:named", origin_lat=LAT0, origin_lon=LON0,
            nodes=nodes, edges=edges,
        )  # fmt: skip
        registry.upsert_readers(conn, readers, network_id=network_id)


@pytest.fixture(scope="module")
def console_db(pg_admin_url: str) -> Iterator[str]:
    """A migrated database with the named city and one account per desk (overrides the
    suite's line city, which has no names)."""
    name, url = create_database(pg_admin_url)
    try:
        migrate(url)
        named_city(url)
        for role in ("officer", "registrar", "admin", "operator"):
            add_user(url, f"the-{role}", role)
        yield url
    finally:
        drop_database(pg_admin_url, name)


def _search(browser: WebDriver, text: str) -> None:
    box = browser.find_element(By.CSS_SELECTOR, ".street-search input")
    box.clear()
    box.send_keys(text)


def _fitted_to(browser: WebDriver, colour: str) -> dict[str, float]:
    """The highlighted street's box as a share of the map's box, and whether it lies inside."""
    return browser.execute_script(  # type: ignore[no-any-return]
        """const map = document.getElementById("map").getBoundingClientRect();
           const path = document.querySelector(`#map path[stroke='${arguments[0]}']`);
           if (!path) return null;
           const r = path.getBoundingClientRect();
           return {inside: r.left >= map.left - 1 && r.right <= map.right + 1
                     && r.top >= map.top - 1 && r.bottom <= map.bottom + 1,
                   width: r.width / map.width, height: r.height / map.height};""",
        colour,
    )


def test_case_view_names_readers_and_the_map_its_streets(
    browser: WebDriver, server: str, api: httpx.Client, console_db: str, screenshot: Any
) -> None:
    body = stolen_bike(api, console_db, 141, "HZ-STREET-1")
    ride(
        console_db,
        body["tag_id"],
        datetime.now(UTC) - timedelta(minutes=4),
        ["R0", "R1", "R2"],
        batch_seq=1,
    )
    login(browser, server, "the-officer", "/officer")
    browser.get(f"{server}/routes/{body['plate']}?case_number=HZ-STREET-1")
    wait(browser, lambda b: len(rows(b, "passages")) == 3)
    passages = browser.find_element(By.ID, "passages").text
    assert "R2 · 3rd Street × Jiefang Road" in passages
    assert "R0 · Jiefang Road" in passages
    wait(
        browser,
        lambda b: "R2 · 3rd Street × Jiefang Road" in b.find_element(By.ID, "last-seen").text,
    )
    wait(browser, lambda b: rows(b, "next"))
    assert "Jiefang Road" in browser.find_element(By.ID, "next").text

    # Search: any part of the name, any case; the result fits the map to the street.
    _search(browser, "3RD")
    results = wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, ".street-results button"))
    assert [r.text for r in results] == ["3rd Street"]
    results[0].click()
    fit = wait(browser, lambda b: _fitted_to(b, "#d4a72c"))
    assert fit["inside"], fit
    assert fit["height"] > 0.4, fit  # a north-south street fills the map's height
    # Zoomed in that far, the streets in view are labelled along the road.
    labels = wait(
        browser,
        lambda b: b.execute_script(
            "return [...document.querySelectorAll('.street-label')].map((e) => e.textContent)"
        ),
    )
    assert "3rd Street" in labels
    assert "Jiefang Road" in labels
    screenshot("street-names")

    _search(browser, "jiefang")
    box = browser.find_element(By.CSS_SELECTOR, ".street-search input")
    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, ".street-results button"))
    box.send_keys(Keys.ENTER)
    wait(browser, lambda b: (f := _fitted_to(b, "#d4a72c")) and f["width"] > 0.6)
    _search(browser, "no such road")
    wait(
        browser,
        lambda b: (
            "No street by that name" in b.find_element(By.CSS_SELECTOR, ".street-results").text
        ),
    )


def test_operator_map_finds_streets(browser: WebDriver, server: str) -> None:
    login(browser, server, "the-operator", "/operator")
    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, ".street-search input"))
    _search(browser, "street")
    results = wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, ".street-results button"))
    assert [r.text for r in results] == ["3rd Street"]
    results[0].click()
    fit = wait(browser, lambda b: _fitted_to(b, "#d4a72c"))
    assert fit["inside"], fit
    assert fit["height"] > 0.4, fit
