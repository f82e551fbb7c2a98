"""The case view's companions panel and time window in a real browser (headless Chromium
through Selenium, the real API and engine on the real PostgreSQL): a stolen bike and a second
bike ride past the same readers together, a third bike rides elsewhere; the API lists the
second as a companion, and so does the officer's case view, with its shared passages; a
window before the rides empties the route and the panels and goes into the address; a window
ending before it starts is refused in the page. Screenshots go to test-artifacts/screenshots/.

Like ``test_console_audit``, the module imports nothing from ``conftest`` nor
``test_console`` (see there why); its few helpers are its own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
from browser_support import bind_since, login, ride, token_headers, wait
from scenarios import registration
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

CASE = "HZ-COMPANION-1"
READERS = ["R0", "R1", "R2"]


def register(api: httpx.Client, db: str, n: int, bound_since: datetime) -> dict[str, Any]:
    """A registered bike whose tag counts as its own since ``bound_since``; body + bike_id."""
    body = registration(n)
    bike = api.post("/bikes", json=body, headers=token_headers(api, "the-registrar"))
    assert bike.status_code == 201, bike.text
    bind_since(db, bike.json()["bike_id"], bound_since)
    return {**body, "bike_id": bike.json()["bike_id"]}


def passages(browser: WebDriver) -> list[str]:
    """The passage rows' texts (the "no passages" row left out)."""
    texts: list[str] = browser.execute_script(
        """return [...document.querySelectorAll("#passages tbody tr")]
             .filter((tr) => !tr.querySelector("td.muted[colspan]")).map((tr) => tr.innerText)"""
    )
    return texts


def companions(browser: WebDriver) -> list[dict[str, Any]]:
    """The companions listed: tag, text, and the path of the route link (decoded)."""
    found: list[dict[str, Any]] = browser.execute_script(
        """return [...document.querySelectorAll("#companions li.companion")].map((li) => ({
             tag: li.dataset.tag, text: li.innerText,
             route: li.querySelector("a") && decodeURIComponent(li.querySelector("a").pathname),
           }))"""
    )
    return found


def set_window(browser: WebDriver, since: datetime, until: datetime) -> None:
    """Type a window into the from / until inputs (local time, as the browser shows it)."""
    browser.execute_script(
        """const local = (ms) => new Date(ms - new Date(ms).getTimezoneOffset() * 60000)
             .toISOString().slice(0, 16);
           document.getElementById("window-since").value = local(arguments[0]);
           document.getElementById("window-until").value = local(arguments[1]);""",
        int(since.timestamp() * 1000),
        int(until.timestamp() * 1000),
    )


def address(browser: WebDriver) -> dict[str, list[str]]:
    return parse_qs(urlsplit(browser.current_url).query)


def test_officer_sees_companions_and_sets_the_window(
    browser: WebDriver, server: str, api: httpx.Client, console_db: str, screenshot: Any
) -> None:
    now = datetime.now(UTC)
    stolen = register(api, console_db, 601, now - timedelta(hours=1))
    companion = register(api, console_db, 602, now - timedelta(hours=1))
    other = register(api, console_db, 603, now - timedelta(hours=1))
    officer = token_headers(api, "the-officer")
    theft = api.post(
        "/thefts",
        json={"bike_id": stolen["bike_id"], "stolen_at": (now - timedelta(minutes=30)).isoformat()},
        headers=officer,
    )
    assert theft.status_code == 201, theft.text
    theft_id = theft.json()["theft_id"]
    confirmed = api.post(f"/thefts/{theft_id}/confirm", json={"case_number": CASE}, headers=officer)
    assert confirmed.status_code == 200, confirmed.text
    # Together past three readers (a second apart: well within the 10 s the scoring allows),
    # so three shared passages; the third bike passes other readers at another time.
    start = now - timedelta(minutes=20)
    ride(console_db, stolen["tag_id"], start, READERS, batch_seq=1)
    ride(console_db, companion["tag_id"], start + timedelta(seconds=1), READERS, batch_seq=2)
    ride(console_db, other["tag_id"], now - timedelta(minutes=10), ["R5", "R4"], batch_seq=3)

    # The API first: a failure below is then the page's, not the engine's.
    found = api.get(f"/thefts/{theft_id}/companions", headers=officer)
    assert found.status_code == 200, found.text
    listed = {c["tag_id"]: c for c in found.json()["companions"]}
    assert set(listed) == {companion["tag_id"]}, listed
    assert listed[companion["tag_id"]]["bike_id"] == companion["bike_id"]
    assert listed[companion["tag_id"]]["shared"] == 3
    assert listed[companion["tag_id"]]["plate"] == companion["plate"]
    # Under the officer's own case number (an open case: another theft they work on),
    # recorded as such in the audit log.
    elsewhere = register(api, console_db, 604, now - timedelta(hours=1))
    other_theft = api.post(
        "/thefts",
        json={"bike_id": elsewhere["bike_id"], "stolen_at": (now - timedelta(hours=1)).isoformat()},
        headers=officer,
    )
    api.post(
        f"/thefts/{other_theft.json()['theft_id']}/confirm",
        json={"case_number": "HZ-OTHER-1"},
        headers=officer,
    ).raise_for_status()
    other_case = api.get(
        f"/thefts/{theft_id}/companions", params={"case_number": "HZ-OTHER-1"}, headers=officer
    )
    assert other_case.status_code == 200, other_case.text
    with psycopg.connect(console_db) as conn:
        recorded = conn.execute(
            "SELECT case_number FROM audit_log WHERE action = 'case.companions' "
            "ORDER BY audit_id DESC LIMIT 1"
        ).fetchone()
    assert recorded == ("HZ-OTHER-1",)

    login(browser, server, "the-officer")
    browser.get(f"{server}/routes/{stolen['plate']}?case_number={CASE}")
    wait(browser, lambda b: len(passages(b)) == 3)
    wait(browser, lambda b: companions(b))
    [shown] = companions(browser)
    assert shown["tag"] == companion["tag_id"]
    assert "3 shared passages at 3 readers" in shown["text"]
    assert f"bike {companion['bike_id']}" in shown["text"]
    assert shown["route"] == f"/routes/{companion['plate']}"  # its own case view, same case
    panel = browser.find_element(By.ID, "companions-panel").text
    assert other["tag_id"] not in panel
    assert other["plate"] not in panel
    # The shared passages open on demand: the three readers, in order.
    browser.find_element(By.CSS_SELECTOR, "#companions li.companion summary").click()
    wait(
        browser,
        lambda b: (
            [
                tr.text.split()[0]
                for tr in b.find_elements(By.CSS_SELECTOR, "#companions details[open] tbody tr")
            ]
            == READERS
        ),
    )
    screenshot("companions")

    # A window before the rides: nothing in it, and the window is in the address.
    set_window(browser, now - timedelta(hours=3), now - timedelta(hours=2))
    browser.find_element(By.ID, "window-apply").click()
    wait(browser, lambda b: "since" in address(b) and "until" in address(b))
    wait(
        browser,
        lambda b: "not seen by any reader in this window" in b.find_element(By.ID, "status").text,
    )
    assert passages(browser) == []
    wait(
        browser, lambda b: "No companions found" in b.find_element(By.ID, "companions-status").text
    )
    assert companions(browser) == []
    windowed = browser.current_url
    screenshot("empty-window")

    # Until before from: refused in the page, nothing sent, the address unchanged.
    set_window(browser, now - timedelta(hours=1), now - timedelta(hours=2))
    browser.find_element(By.ID, "window-apply").click()
    wait(browser, lambda b: "must be after" in b.find_element(By.ID, "window-error").text)
    assert browser.find_element(By.ID, "window-until").get_attribute("aria-invalid") == "true"
    assert browser.current_url == windowed

    # Reset: the default window again (since the theft, live), the rides and the companion back.
    browser.find_element(By.ID, "window-reset").click()
    wait(browser, lambda b: len(passages(b)) == 3)
    assert not {"since", "until"} & set(address(browser))
    assert browser.find_element(By.ID, "window-error").text == ""
    wait(browser, lambda b: [c["tag"] for c in companions(b)] == [companion["tag_id"]])
    # "Since the theft" writes the theft's time into the address.
    browser.find_element(By.ID, "window-theft").click()
    wait(browser, lambda b: "since" in address(b))
    since = datetime.fromisoformat(address(browser)["since"][0])
    assert since == datetime.fromisoformat(theft.json()["stolen_at"])
    assert "until" not in address(browser)
    wait(browser, lambda b: len(passages(b)) == 3)
    # Back: the address before it (the default window), shown again.
    browser.back()
    wait(browser, lambda b: "since" not in address(b))
    wait(browser, lambda b: b.find_element(By.ID, "window-since").get_attribute("value") == "")
    browser.find_element(By.ID, "lang-switch").click()
    wait(browser, lambda b: "同行标签" in b.find_element(By.ID, "companions-title").text)
    # Going back reloads the panels: the list comes again with the answer, not at once.
    wait(browser, lambda b: any("共同经过 3 次" in c["text"] for c in companions(b)))
