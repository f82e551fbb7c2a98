"""The duty desk's overview map in a real browser (headless Chromium through Selenium, the
real API on the real PostgreSQL, sightings from the real engine): a stolen bike's marker
stands at the reader that last heard it, labelled with its plate, case and an age; a stolen
bike never heard is listed beside the map as not seen yet; when the engine processes a new
ride while the desk is open, the marker moves to the new reader and flashes; its link opens
the bike's route. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from browser_support import bind_since, login, ride, token_headers, wait
from scenarios import registration
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

CASE = "HZ-MAP-7"


def _stolen(api: httpx.Client, console_db: str, n: int, officer: dict[str, str]) -> dict[str, Any]:
    body = registration(n)
    bike = api.post("/bikes", json=body, headers=token_headers(api, "the-registrar"))
    assert bike.status_code == 201, bike.text
    now = datetime.now(UTC)
    bind_since(console_db, bike.json()["bike_id"], now - timedelta(hours=1))
    theft = api.post(
        "/thefts",
        json={
            "bike_id": bike.json()["bike_id"],
            "stolen_at": (now - timedelta(minutes=30)).isoformat(),
        },
        headers=officer,
    )
    assert theft.status_code == 201, theft.text
    return {**body, "bike_id": bike.json()["bike_id"], "theft_id": theft.json()["theft_id"]}


@pytest.fixture(scope="module")
def scene(api: httpx.Client, console_db: str) -> dict[str, Any]:
    """A stolen bike under a case that passed R1 and R2 before any desk was open, and a
    stolen bike nobody has heard since."""
    officer = token_headers(api, "the-officer")
    seen = _stolen(api, console_db, 811, officer)
    confirmed = api.post(
        f"/thefts/{seen['theft_id']}/confirm", json={"case_number": CASE}, headers=officer
    )
    assert confirmed.status_code == 200, confirmed.text
    ride(console_db, seen["tag_id"], datetime.now(UTC) - timedelta(minutes=15), ["R1", "R2"],
         batch_seq=81)  # fmt: skip
    unseen = _stolen(api, console_db, 812, officer)
    return {"seen": seen, "unseen": unseen}


def _reader(console_db: str, reader_id: str) -> tuple[float, float]:
    with psycopg.connect(console_db) as conn:
        row = conn.execute(
            "SELECT lat, lon FROM readers WHERE reader_id = %s", (reader_id,)
        ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


def _marker(browser: WebDriver, bike_id: int) -> dict[str, Any] | None:
    """The map label of a bike's marker: its reader, position and text (None if absent)."""
    found: dict[str, Any] | None = browser.execute_script(
        """const el = document.querySelector(`#overview .theft-label[data-bike="${arguments[0]}"]`);
           return el && {reader: el.dataset.reader, lat: Number(el.dataset.lat),
                         lon: Number(el.dataset.lon), text: el.innerText,
                         flash: el.closest('.theft-tip').classList.contains('flash')};""",
        bike_id,
    )
    return found


def test_overview_map_follows_a_stolen_bike_live(
    browser: WebDriver, server: str, console_db: str, scene: dict[str, Any], screenshot: Any
) -> None:
    seen, unseen = scene["seen"], scene["unseen"]
    login(browser, server, "the-officer")
    browser.get(f"{server}/desk")

    # The stolen bike stands at R2, the last reader that heard it, with plate, case and age.
    wait(browser, lambda b: (_marker(b, seen["bike_id"]) or {}).get("reader") == "R2")
    marker = _marker(browser, seen["bike_id"])
    assert marker is not None
    assert (marker["lat"], marker["lon"]) == pytest.approx(_reader(console_db, "R2"))
    assert seen["plate"] in marker["text"]
    assert CASE in marker["text"]
    assert "ago" in marker["text"]
    # The bike never heard is beside the map, not on it.
    assert _marker(browser, unseen["bike_id"]) is None
    not_seen = browser.find_element(By.ID, "not-seen").text
    assert unseen["plate"] in not_seen
    assert seen["plate"] not in not_seen
    assert "2 open · 1 not seen yet" in browser.find_element(By.ID, "map-count").text
    screenshot("overview")

    # A new ride processed by the engine while the desk is open: the marker moves and flashes.
    wait(browser, lambda b: "live" in b.find_element(By.ID, "live").text)
    ride(console_db, seen["tag_id"], datetime.now(UTC) - timedelta(minutes=2), ["R4"],
         batch_seq=82)  # fmt: skip
    wait(browser, lambda b: (_marker(b, seen["bike_id"]) or {}).get("reader") == "R4")
    moved = _marker(browser, seen["bike_id"])
    assert moved is not None
    assert moved["flash"]
    assert (moved["lat"], moved["lon"]) == pytest.approx(_reader(console_db, "R4"))
    screenshot("moved")

    # Its label opens the bike's route under the case.
    browser.find_element(
        By.CSS_SELECTOR, f'#overview .theft-label[data-bike="{seen["bike_id"]}"] a'
    ).click()
    wait(browser, lambda b: "/routes/" in b.current_url and f"case_number={CASE}" in b.current_url)


def _where_now_cells(browser: WebDriver, bike_id: int) -> int:
    count: int = browser.execute_script(
        "return document.querySelectorAll(`#overview path.where-now-bike-${arguments[0]}`).length",
        bike_id,
    )
    return count


def _where_now_lookups(console_db: str, bike_id: int) -> list[str | None]:
    """The case numbers of the officer's where-now lookups of the bike, oldest first."""
    with psycopg.connect(console_db) as conn:
        rows = conn.execute(
            "SELECT case_number FROM audit_log WHERE action = 'bike.where_now'"
            " AND actor = 'the-officer' AND bike_id = %s ORDER BY audit_id",
            (bike_id,),
        ).fetchall()
    return [r[0] for r in rows]


def test_overview_map_shows_where_now_when_switched_on(
    browser: WebDriver, server: str, console_db: str, scene: dict[str, Any], screenshot: Any
) -> None:
    seen, unseen = scene["seen"], scene["unseen"]
    login(browser, server, "the-officer")
    browser.get(f"{server}/desk")
    wait(browser, lambda b: _marker(b, seen["bike_id"]) is not None)
    box = browser.find_element(By.ID, "map-where-now")
    assert not box.is_selected()  # off until switched on: each look is an audited lookup
    assert _where_now_cells(browser, seen["bike_id"]) == 0
    before = len(_where_now_lookups(console_db, seen["bike_id"]))

    # Switched on: the faint heat of where the seen bike can be now; none for the unseen one.
    box.click()
    wait(browser, lambda b: _where_now_cells(b, seen["bike_id"]) > 0)
    assert _where_now_cells(browser, unseen["bike_id"]) == 0
    wait(browser, lambda b: "shaded for 1 bike" in b.find_element(By.ID, "where-now-note").text)
    lookups = _where_now_lookups(console_db, seen["bike_id"])
    assert len(lookups) == before + 1
    assert lookups[-1] == CASE  # asked under the bike's case, and audited
    opacity = browser.execute_script(
        """return Math.max(...[...document.querySelectorAll('#overview path.where-now-cell')]
             .map((p) => Number(p.getAttribute('fill-opacity'))))"""
    )
    assert 0 < opacity <= 0.3  # faint: the markers stay readable
    screenshot("where-now")

    # Live: a new sighting moves the marker and asks again for that bike.
    wait(browser, lambda b: "live" in b.find_element(By.ID, "live").text)
    ride(console_db, seen["tag_id"], datetime.now(UTC) - timedelta(minutes=1), ["R1"],
         batch_seq=83)  # fmt: skip
    wait(browser, lambda b: (_marker(b, seen["bike_id"]) or {}).get("reader") == "R1")
    wait(browser, lambda b: len(_where_now_lookups(console_db, seen["bike_id"])) == before + 2)
    wait(browser, lambda b: _where_now_cells(b, seen["bike_id"]) > 0)

    # Left on, it is on again after a reload: one lookup per bike seen, not one per redraw.
    browser.refresh()
    wait(browser, lambda b: b.find_element(By.ID, "map-where-now").is_selected())
    wait(browser, lambda b: _where_now_cells(b, seen["bike_id"]) > 0)
    time.sleep(1.0)  # a second lookup, were there one, would be in by now
    assert len(_where_now_lookups(console_db, seen["bike_id"])) == before + 3

    # Switched off: the layer goes, and the choice is remembered in this browser.
    box = browser.find_element(By.ID, "map-where-now")
    box.click()
    wait(browser, lambda b: _where_now_cells(b, seen["bike_id"]) == 0)
    assert browser.execute_script("return localStorage.getItem('tagtrail.desk.whereNow')") == "off"
