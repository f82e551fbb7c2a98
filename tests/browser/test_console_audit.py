"""The auditor's page in a real browser (headless Chromium through Selenium, the real API on
the real PostgreSQL): officers look up a stolen bike's route through the API, each lookup
audited on its way; the auditor finds those entries by actor, by a family of actions, by bike
and by clicking an actor, pages through them, opens an entry's detail, meets the API's
refusal of a bad filter, and saves a CSV; an officer is refused, an administrator let in.
Screenshots go to test-artifacts/screenshots/.

The module imports nothing from ``conftest`` (nor from ``test_console``, which does): every
conftest is imported under that one name, so such an import breaks when pytest is given
another test directory first (see ``tests/testsupport.py``). Its few helpers are its own.
"""

from __future__ import annotations

import csv
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_support import add_user, bind_since, login, ride, token_headers, wait
from scenarios import registration
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec

CASE = "HZ-AUDIT-1"


def fill(browser: WebDriver, values: dict[str, str]) -> None:
    for element_id, value in values.items():
        field = browser.find_element(By.ID, element_id)
        field.clear()
        field.send_keys(value)


@pytest.fixture(scope="module")
def scene(api: httpx.Client, console_db: str) -> dict[str, Any]:
    """A bike registered, reported stolen, confirmed under a case and seen by three readers;
    the-officer looks up and exports its route under the case, officer-two looks it up with a
    reason. Every step writes the audit log the way production does (the API's own code)."""
    add_user(console_db, "the-auditor", "auditor")
    add_user(console_db, "officer-two", "officer")
    body = registration(501)
    bike = api.post("/bikes", json=body, headers=token_headers(api, "the-registrar"))
    assert bike.status_code == 201, bike.text
    bike_id = bike.json()["bike_id"]
    now = datetime.now(UTC)
    bind_since(console_db, bike_id, now - timedelta(hours=1))
    officer = token_headers(api, "the-officer")
    stolen_at = (now - timedelta(minutes=30)).isoformat()
    theft = api.post("/thefts", json={"bike_id": bike_id, "stolen_at": stolen_at}, headers=officer)
    assert theft.status_code == 201, theft.text
    confirmed = api.post(
        f"/thefts/{theft.json()['theft_id']}/confirm",
        json={"case_number": CASE},
        headers=officer,
    )
    assert confirmed.status_code == 200, confirmed.text
    ride(console_db, body["tag_id"], now - timedelta(minutes=20), ["R0", "R1", "R2"], batch_seq=1)
    plate = body["plate"]
    looked = api.get(f"/routes/{plate}", params={"case_number": CASE}, headers=officer)
    assert looked.status_code == 200, looked.text
    exported = api.get(
        f"/routes/{plate}/export", params={"case_number": CASE, "format": "csv"}, headers=officer
    )
    assert exported.status_code == 200, exported.text
    tip = api.get(
        f"/routes/{plate}",
        params={"reason": "checking a tip"},
        headers=token_headers(api, "officer-two"),
    )
    assert tip.status_code == 200, tip.text
    return {"plate": plate, "bike_id": bike_id}


@pytest.fixture(scope="module")
def auditor(api: httpx.Client, scene: dict[str, Any]) -> dict[str, str]:
    """The auditor's API token, taken once: each login is itself an audit entry."""
    del scene
    return token_headers(api, "the-auditor")


def audit(api: httpx.Client, auditor: dict[str, str], **params: Any) -> dict[str, Any]:
    """The audit API's own answer to a search, as the auditor."""
    r = api.get("/audit", params=params, headers=auditor)
    assert r.status_code == 200, r.text
    page: dict[str, Any] = r.json()
    return page


def ids(page: dict[str, Any]) -> list[int]:
    return [e["audit_id"] for e in page["items"]]


def shown(browser: WebDriver) -> list[int]:
    """The audit ids of the table's rows, top to bottom."""
    found: list[int] = browser.execute_script(
        "return [...document.querySelectorAll('#entries tbody tr[data-audit-id]')]"
        ".map((tr) => Number(tr.dataset.auditId))"
    )
    return found


def cells(browser: WebDriver, column: int) -> list[str]:
    """The texts of one column (0-based) of the table."""
    found: list[str] = browser.execute_script(
        "return [...document.querySelectorAll('#entries tbody tr[data-audit-id]')]"
        ".map((tr) => tr.cells[arguments[0]].innerText.trim())",
        column,
    )
    return found


def failure(browser: WebDriver) -> str | None:
    """The status line's text once it reports an error (not while "Searching…")."""
    status = browser.find_element(By.ID, "audit-status")
    return status.text if "error" in (status.get_attribute("class") or "") else None


def search(browser: WebDriver, values: dict[str, str]) -> None:
    """Set the filter form's fields (others emptied) and submit it."""
    browser.find_element(By.ID, "clear").click()
    fill(browser, values)
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()


def test_auditor_searches_the_log(
    browser: WebDriver,
    server: str,
    api: httpx.Client,
    scene: dict[str, Any],
    auditor: dict[str, str],
    screenshot: Any,
    tmp_path: Path,
) -> None:
    login(browser, server, "the-auditor")
    # Auditors start on the audit log, which is also in the header.
    wait(browser, ec.url_contains("/audit"))
    wait(browser, ec.visibility_of_element_located((By.CSS_SELECTOR, "#top nav a[href='/audit']")))
    assert browser.title.startswith("Audit log")
    # Unfiltered: the newest entries first, exactly the API's page.
    everything = audit(api, auditor)
    wait(browser, lambda b: shown(b) == ids(everything))
    assert f"of {everything['total']}" in browser.find_element(By.ID, "count").text
    screenshot("all")

    # "What did officer-two look up?" One route view, with the reason given.
    search(browser, {"f-actor": "officer-two"})
    wait(browser, ec.url_contains("actor=officer-two"))
    by_two = audit(api, auditor, actor="officer-two")
    wait(browser, lambda b: shown(b) == ids(by_two))
    assert {e["action"] for e in by_two["items"]} == {"auth.login", "route.view"}
    assert set(cells(browser, 1)) == {"officer-two"}
    assert "checking a tip" in cells(browser, 6)

    # A family of actions: every route lookup and export, by anyone.
    search(browser, {"f-action": "route."})
    routes = audit(api, auditor, action="route.")
    wait(browser, lambda b: shown(b) == ids(routes))
    assert set(cells(browser, 3)) == {"route.view", "route.export.csv"}
    assert cells(browser, 1).count("the-officer") == 2
    assert CASE in cells(browser, 6)[-1]  # the oldest: the-officer's lookup under the case
    # The detail opens on demand: the lookup's plate and window.
    row = browser.find_element(By.CSS_SELECTOR, f"#entries tr[data-audit-id='{ids(routes)[-1]}']")
    detail = row.find_element(By.CSS_SELECTOR, "details.json")
    assert not detail.find_element(By.TAG_NAME, "pre").is_displayed()
    detail.find_element(By.TAG_NAME, "summary").click()
    wait(browser, lambda b: detail.find_element(By.TAG_NAME, "pre").is_displayed())
    assert scene["plate"] in detail.find_element(By.TAG_NAME, "pre").text
    screenshot("routes")

    # The bike in a row: everything about that bike (registration, theft, lookups).
    row.find_element(By.CSS_SELECTOR, "a[data-filter=bike_id]").click()
    about_bike = audit(api, auditor, bike_id=scene["bike_id"])
    wait(browser, lambda b: shown(b) == ids(about_bike))
    assert browser.find_element(By.ID, "f-bike").get_attribute("value") == str(scene["bike_id"])
    assert browser.find_element(By.ID, "f-action").get_attribute("value") == ""
    assert {"bike.register", "theft.report", "theft.confirm", "route.view"} <= set(
        cells(browser, 3)
    )

    # An actor in a row: "what else did this officer do?" — every entry of the-officer.
    first_officer = browser.find_element(
        By.XPATH, "//table[@id='entries']//a[@data-filter='actor' and text()='the-officer']"
    )
    first_officer.click()
    by_officer = audit(api, auditor, actor="the-officer")
    wait(browser, lambda b: shown(b) == ids(by_officer))
    assert browser.find_element(By.ID, "f-actor").get_attribute("value") == "the-officer"
    assert browser.find_element(By.ID, "f-bike").get_attribute("value") == ""
    # Back returns to the bike's entries (the search lives in the address).
    browser.back()
    wait(browser, lambda b: shown(b) == ids(about_bike))

    # Two a page: previous / next with the total.
    browser.get(f"{server}/audit?actor=the-officer&limit=2")
    wait(browser, lambda b: shown(b) == ids(by_officer)[:2])
    total = by_officer["total"]
    assert total > 4
    assert browser.find_element(By.ID, "count").text == f"1–2 of {total}"
    assert not browser.find_element(By.ID, "prev").is_enabled()
    browser.find_element(By.ID, "next").click()
    wait(browser, lambda b: shown(b) == ids(by_officer)[2:4])
    assert browser.find_element(By.ID, "count").text == f"3–4 of {total}"
    browser.find_element(By.ID, "prev").click()
    wait(browser, lambda b: shown(b) == ids(by_officer)[:2])

    # A window starting in an hour: nothing yet (the time goes to the API as an instant).
    browser.execute_script(
        """const local = Date.now() + 3600e3 - new Date().getTimezoneOffset() * 60e3;
           document.getElementById("f-since").value = new Date(local).toISOString().slice(0, 16);"""
    )
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    wait(browser, lambda b: "No entries match" in b.find_element(By.ID, "entries").text)
    assert "since=" in browser.current_url

    # A bad filter: the API's 422 is said, the form stays to correct it.
    search(browser, {"f-bike": "abc"})
    status = wait(browser, failure)
    assert "bike_id" in status
    assert shown(browser) == []
    assert browser.find_element(By.ID, "filters").is_displayed()
    screenshot("bad-filter")

    # CSV of the current filters: every matching entry, whatever the page size.
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}
    )
    browser.get(f"{server}/audit?actor=the-officer&limit=2")
    wait(browser, lambda b: len(shown(b)) == 2)
    browser.find_element(By.ID, "export").click()
    wait(browser, lambda b: "CSV downloaded" in b.find_element(By.ID, "export-status").text)
    deadline = time.monotonic() + 10
    while not (files := list(tmp_path.glob("audit-*.csv"))) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(files) == 1, list(tmp_path.iterdir())
    with files[0].open(encoding="utf-8-sig", newline="") as f:
        exported = list(csv.DictReader(f))
    everything_by_officer = audit(api, auditor, actor="the-officer", limit=200)
    assert [int(r["audit_id"]) for r in exported] == ids(everything_by_officer)
    assert {r["actor"] for r in exported} == {"the-officer"}
    assert any(r["case_number"] == CASE and r["action"] == "route.view" for r in exported)

    # In Chinese.
    browser.find_element(By.ID, "lang-switch").click()
    wait(browser, lambda b: "审计日志" in b.find_element(By.ID, "audit-title").text)
    assert browser.find_element(By.ID, "count").text == f"第 1–2 条，共 {total} 条"
    screenshot("zh")
    browser.find_element(By.ID, "lang-switch").click()


def test_officer_cannot_read_the_log(
    browser: WebDriver, server: str, api: httpx.Client, auditor: dict[str, str], screenshot: Any
) -> None:
    refused = api.get("/audit", headers=token_headers(api, "the-officer"))
    assert refused.status_code == 403, refused.text
    login(browser, server, "the-officer")
    wait(browser, ec.url_contains("/officer"))
    assert not browser.find_elements(By.CSS_SELECTOR, "#top nav a[href='/audit']")
    browser.get(f"{server}/audit")
    status = wait(browser, failure)
    assert "for auditors and administrators" in status
    assert refused.json()["detail"] in status
    assert shown(browser) == []
    assert not browser.find_element(By.ID, "export").is_enabled()
    screenshot("refused")

    # Administrators may: the header links it, and the list shows.
    login(browser, server, "the-admin")
    wait(browser, ec.url_contains("/operator"))
    browser.find_element(By.CSS_SELECTOR, "#top nav a[href='/audit']").click()
    wait(browser, ec.url_contains("/audit"))
    wait(browser, lambda b: shown(b) == ids(audit(api, auditor)))
