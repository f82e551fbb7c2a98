"""How sure each stretch is, in real Chromium: on a square block the two equal ways between
readers at opposite corners are a coin toss, so the route view draws the likely way faded and
the other way faintly beside it, each with its share in a tooltip."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from browser_support import add_user, ride, wait
from scenarios import square_city
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from test_console import login, rows, stolen_bike
from testsupport import create_database, drop_database

from track_engine.db.migrate import migrate


@pytest.fixture(scope="module")
def console_db(pg_admin_url: str) -> Iterator[str]:
    """This module's city is a square block (readers S0 and S3), not the line."""
    name, url = create_database(pg_admin_url)
    try:
        migrate(url)
        square_city(url)
        for role in ("officer", "registrar", "admin"):
            add_user(url, f"the-{role}", role)
        yield url
    finally:
        drop_database(pg_admin_url, name)


def _hover_shows(browser: WebDriver, selector: str, text: str) -> None:
    """Point at a line (its bounding box's centre may lie off an L-shaped line, so the
    pointer's arrival is sent to the line itself) and wait for its tooltip."""
    browser.execute_script(
        """const path = document.querySelector(arguments[0]);
           const r = path.getBoundingClientRect();
           for (const type of ["mouseover", "mousemove"]) {
             path.dispatchEvent(new MouseEvent(type, {bubbles: true, clientX: r.left + 1,
                                                      clientY: r.top + 1}));
           }""",
        selector,
    )
    wait(
        browser,
        lambda b: any(text in t.text for t in b.find_elements(By.CSS_SELECTOR, ".leaflet-tooltip")),
    )


def test_the_route_shows_how_sure_each_stretch_is_and_the_other_way(
    browser: WebDriver, server: str, api: httpx.Client, console_db: str, screenshot: Any
) -> None:
    body = stolen_bike(api, console_db, 181, "HZ-COIN-18")
    ride(
        console_db,
        body["tag_id"],
        datetime.now(UTC) - timedelta(minutes=10),
        ["S0", "S3", "S0"],
        batch_seq=1,
    )
    login(browser, server, "the-officer", "/officer")
    browser.get(f"{server}/routes/{body['plate']}?case_number=HZ-COIN-18")
    wait(browser, lambda b: len(rows(b, "passages")) == 3)
    # One other way per stretch, faint.
    alternatives = wait(
        browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#map path.route-alternative")
    )
    assert len(alternatives) == 2
    opacities = [float(p.get_attribute("stroke-opacity")) for p in alternatives]
    assert all(0.3 < o < 0.7 for o in opacities), opacities  # about half the evidence each
    # The likely way is drawn fainter than a sure one (observed stretches stay 0.9).
    faded = browser.find_elements(By.CSS_SELECTOR, "#map path.route-unsure")
    assert len(faded) >= 2
    assert all(float(p.get_attribute("stroke-opacity")) < 0.7 for p in faded)
    screenshot("coin-toss")
    _hover_shows(browser, "#map path.route-alternative", "other possible way · ")
    _hover_shows(browser, "#map path.route-unsure", "likely way · ")

    # Replayed to the first passage, no stretch has begun: no other way is shown yet; at the
    # end both are back.
    def replay_to(value: str) -> None:
        browser.execute_script(
            """const s = document.getElementById("slider");
               s.value = arguments[0] === "max" ? s.max : arguments[0];
               s.dispatchEvent(new Event("input"));""",
            value,
        )

    replay_to("0")
    wait(browser, lambda b: not b.find_elements(By.CSS_SELECTOR, "#map path.route-alternative"))
    replay_to("max")
    wait(
        browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, "#map path.route-alternative")) == 2
    )
