"""The duty desk's memory in a real browser (headless Chromium through Selenium, the real API
on the real PostgreSQL, alerts raised by the real engine): alerts and a stolen-frame flag
raised while no desk was open are listed when it opens; an officer acknowledges one (the row
then says who and when, and the API agrees), the filters narrow the list, and a new alert
still arrives live on top. Screenshots go to test-artifacts/screenshots/.

Helpers are this module's own (see test_console_audit.py on importing from conftest).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from browser_support import bind_since, login, ride, token_headers, wait
from scenarios import registration
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

CASE = "HZ-DESK-7"
REASON = {"reason": "duty desk: alerts of this shift"}


def desk_rows(browser: WebDriver) -> list[dict[str, str]]:
    """The desk's rows, top to bottom: key ("alert:12") and the cells' texts."""
    found: list[dict[str, str]] = browser.execute_script(
        """return [...document.querySelectorAll('#alerts tbody tr[data-key]')].map((tr) => ({
             key: tr.dataset.key, what: tr.cells[1].innerText, bike: tr.cells[2].innerText,
             where: tr.cells[3].innerText, ack: tr.cells[5].innerText}))"""
    )
    return found


def show_list(browser: WebDriver) -> None:
    """Scroll the list into view (the overview map is above it) before a screenshot."""
    browser.execute_script("document.getElementById('filters').scrollIntoView()")


@pytest.fixture(scope="module")
def scene(api: httpx.Client, console_db: str) -> dict[str, Any]:
    """A stolen bike under a case passes R1 and R2, and its frame is presented at a desk
    again, all before any desk is open."""
    body = registration(801)
    registrar = token_headers(api, "the-registrar")
    bike = api.post("/bikes", json=body, headers=registrar)
    assert bike.status_code == 201, bike.text
    now = datetime.now(UTC)
    bind_since(console_db, bike.json()["bike_id"], now - timedelta(hours=1))
    officer = token_headers(api, "the-officer")
    theft = api.post(
        "/thefts",
        json={
            "bike_id": bike.json()["bike_id"],
            "stolen_at": (now - timedelta(minutes=30)).isoformat(),
        },
        headers=officer,
    )
    assert theft.status_code == 201, theft.text
    confirmed = api.post(
        f"/thefts/{theft.json()['theft_id']}/confirm", json={"case_number": CASE}, headers=officer
    )
    assert confirmed.status_code == 200, confirmed.text
    ride(console_db, body["tag_id"], now - timedelta(minutes=15), ["R1", "R2"], batch_seq=71)
    again = api.post(
        "/bikes", json=registration(802, frame_number=body["frame_number"]), headers=registrar
    )
    assert again.status_code < 500, again.text
    return {"body": body, "officer": officer}


def test_desk_shows_history_and_acknowledges(
    browser: WebDriver, server: str, api: httpx.Client, console_db: str, scene: dict[str, Any],
    screenshot: Any,
) -> None:  # fmt: skip
    body = scene["body"]
    login(browser, server, "the-officer")
    browser.get(f"{server}/desk")
    # What came while no desk was open: two alerts of the case's bike and the flag.
    wait(browser, lambda b: len(desk_rows(b)) == 3)
    rows = desk_rows(browser)
    assert sorted(r["key"].split(":")[0] for r in rows) == ["alert", "alert", "flag"]
    assert all(body["plate"] in r["bike"] and CASE in r["bike"] for r in rows)
    assert {r["where"] for r in rows if r["key"].startswith("alert")} == {"R1", "R2"}
    assert "3 waiting" in browser.find_element(By.ID, "count").text
    show_list(browser)
    screenshot("history")

    # Acknowledge the flag: the row says who and when; the API says the same.
    flag_key = next(r["key"] for r in rows if r["key"].startswith("flag"))
    browser.find_element(By.CSS_SELECTOR, f"button.ack[data-key='{flag_key}']").click()
    wait(browser, lambda b: any(r["key"] == flag_key and "the-officer" in r["ack"]
                                for r in desk_rows(b)))  # fmt: skip
    wait(browser, lambda b: "2 waiting" in b.find_element(By.ID, "count").text)
    page = api.get("/alerts", params={**REASON, "acknowledged": "true"}, headers=scene["officer"])
    assert page.status_code == 200, page.text
    assert [(f"{i['source']}:{i['id']}", i["acknowledged_by"]) for i in page.json()["items"]] == [
        (flag_key, "the-officer")
    ]
    show_list(browser)
    screenshot("acknowledged")

    # Filters: only what waits; only flags (none waits now).
    Select(browser.find_element(By.ID, "f-ack")).select_by_value("false")
    wait(browser, lambda b: [r["key"] for r in desk_rows(b)] and
         all(r["key"].startswith("alert") for r in desk_rows(b)))  # fmt: skip
    Select(browser.find_element(By.ID, "f-kind")).select_by_value("stolen_frame")
    wait(browser, lambda b: desk_rows(b) == [])
    Select(browser.find_element(By.ID, "f-kind")).select_by_value("")
    Select(browser.find_element(By.ID, "f-ack")).select_by_value("")
    wait(browser, lambda b: len(desk_rows(b)) == 3)

    # The desk is still live: a new alert arrives on top, waiting.
    wait(browser, lambda b: "live" in b.find_element(By.ID, "live").text)
    ride(console_db, body["tag_id"], datetime.now(UTC) - timedelta(minutes=2), ["R4"], batch_seq=72)
    wait(browser, lambda b: len(desk_rows(b)) == 4 and desk_rows(b)[0]["where"] == "R4")
    assert "Acknowledge" in desk_rows(browser)[0]["ack"]
    show_list(browser)
    screenshot("live")


def test_history_is_audited(api: httpx.Client, console_db: str, scene: dict[str, Any]) -> None:
    """Each look at the history is in the audit log, with its reason and what it showed."""
    del scene
    look = api.get("/alerts", params=REASON, headers=token_headers(api, "the-officer"))
    assert look.status_code == 200, look.text
    with psycopg.connect(console_db) as conn:
        row = conn.execute(
            """SELECT actor, reason, detail ? 'shown' FROM audit_log
               WHERE action = 'alerts.history' ORDER BY audit_id DESC LIMIT 1"""
        ).fetchone()
    assert row == ("the-officer", REASON["reason"], True)
