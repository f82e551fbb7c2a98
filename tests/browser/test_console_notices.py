"""Notice preferences in real Chromium: an officer opens "Notices" from the duty desk's
navigation, adds an e-mail subscription, changes it, adds a signed webhook (its secret shown
once), sees the notice an alert queued among the recent deliveries, and deletes a
subscription; after each step the API (/api/v1/notifications/subscriptions) says the same.
Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from browser_support import bind_since, login, ride, token_headers, wait
from scenarios import registration
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select

CASE = "HZ-NOTE-7"


def _subs(api: httpx.Client, officer: dict[str, str]) -> list[dict[str, Any]]:
    r = api.get("/notifications/subscriptions", headers=officer)
    assert r.status_code == 200, r.text
    return sorted(
        (
            {**{k: s[k] for k in ("channel", "address", "enabled")}, "kinds": sorted(s["kinds"])}
            for s in r.json()
        ),
        key=lambda s: s["address"],
    )


def _rows(browser: WebDriver, table: str) -> list[str]:
    found: list[str] = browser.execute_script(
        "return [...document.querySelectorAll(`#${arguments[0]} tbody tr`)]"
        ".map((tr) => tr.innerText)",
        table,
    )
    return found


def _kinds(browser: WebDriver, wanted: set[str]) -> None:
    for kind in ("stolen_seen", "stolen_frame"):
        box = browser.find_element(By.ID, f"kind-{kind}")
        if box.is_selected() != (kind in wanted):
            box.click()


def _stolen_bike_rides(api: httpx.Client, console_db: str, officer: dict[str, str]) -> None:
    """A stolen bike under a case passes a reader: the engine raises a theft alert."""
    body = registration(851)
    bike = api.post("/bikes", json=body, headers=token_headers(api, "the-registrar"))
    assert bike.status_code == 201, bike.text
    now = datetime.now(UTC)
    bind_since(console_db, bike.json()["bike_id"], now - timedelta(hours=1))
    stolen_at = (now - timedelta(minutes=30)).isoformat()
    theft = api.post(
        "/thefts", json={"bike_id": bike.json()["bike_id"], "stolen_at": stolen_at}, headers=officer
    )
    assert theft.status_code == 201, theft.text
    confirmed = api.post(
        f"/thefts/{theft.json()['theft_id']}/confirm", json={"case_number": CASE}, headers=officer
    )
    assert confirmed.status_code == 200, confirmed.text
    ride(console_db, body["tag_id"], now - timedelta(minutes=5), ["R1"], batch_seq=95)


def test_officer_adds_changes_and_deletes_notice_subscriptions(
    browser: WebDriver, server: str, api: httpx.Client, console_db: str, screenshot: Any
) -> None:
    officer = token_headers(api, "the-officer")
    assert _subs(api, officer) == []
    login(browser, server, "the-officer")
    browser.get(f"{server}/desk")
    link = wait(
        browser, ec.element_to_be_clickable((By.CSS_SELECTOR, "#top nav a[href='/notices']"))
    )
    link.click()
    wait(browser, lambda b: b.current_url.endswith("/notices"))
    wait(browser, lambda b: "No subscriptions" in b.find_element(By.ID, "subs").text)
    # An officer may hear of stolen bikes and frames, not of a resident's own bike.
    assert not browser.find_elements(By.ID, "kind-bike_moved")

    # Add: e-mail, stolen bikes seen only.
    browser.find_element(By.ID, "address").send_keys("desk@police.example")
    _kinds(browser, {"stolen_seen"})
    browser.find_element(By.ID, "save").click()
    wait(browser, lambda b: any("desk@police.example" in r for r in _rows(b, "subs")))
    assert _subs(api, officer) == [
        {"channel": "email", "address": "desk@police.example", "kinds": ["stolen_seen"],
         "enabled": True},
    ]  # fmt: skip

    # An alert while subscribed queues a notice: it is among the recent deliveries.
    _stolen_bike_rides(api, console_db, officer)
    browser.refresh()
    wait(browser, lambda b: any("A stolen bike passed a reader" in r for r in _rows(b, "sent")))
    assert "E-mail" in _rows(browser, "sent")[0]
    assert "waiting to send" in _rows(browser, "sent")[0]
    assert not browser.find_element(By.ID, "everyone").is_displayed()  # the outbox: admins

    # Edit: a new address, both kinds, paused.
    browser.find_element(By.CSS_SELECTOR, "#subs button.edit").click()
    assert not browser.find_element(By.ID, "channel").is_enabled()  # a new channel: add one
    address = browser.find_element(By.ID, "address")
    address.clear()
    address.send_keys("duty@police.example")
    _kinds(browser, {"stolen_seen", "stolen_frame"})
    browser.find_element(By.ID, "enabled").click()
    browser.find_element(By.ID, "save").click()
    wait(browser, lambda b: any("duty@police.example" in r and "paused" in r
                                for r in _rows(b, "subs")))  # fmt: skip
    assert _subs(api, officer) == [
        {"channel": "email", "address": "duty@police.example",
         "kinds": ["stolen_frame", "stolen_seen"], "enabled": False},
    ]  # fmt: skip

    # Add a signed webhook: its secret is shown once, here.
    Select(browser.find_element(By.ID, "channel")).select_by_value("webhook")
    browser.find_element(By.ID, "address").send_keys("https://hooks.invalid/tagtrail")
    browser.find_element(By.ID, "save").click()
    wait(browser, lambda b: len(_rows(b, "subs")) == 2)
    secret = browser.find_element(By.ID, "secret")
    assert secret.is_displayed()
    assert "signing secret" in secret.text
    assert [s["channel"] for s in _subs(api, officer)] == ["email", "webhook"]
    screenshot("subscriptions")

    # Delete the e-mail one (the browser asks first).
    row = next(
        r
        for r in browser.find_elements(By.CSS_SELECTOR, "#subs tbody tr")
        if "duty@police.example" in r.text
    )
    row.find_element(By.CSS_SELECTOR, "button.delete").click()
    wait(browser, ec.alert_is_present()).accept()
    wait(browser, lambda b: not any("duty@police.example" in r for r in _rows(b, "subs")))
    assert [s["address"] for s in _subs(api, officer)] == ["https://hooks.invalid/tagtrail"]


def test_an_administrator_may_look_at_everyones_outbox(
    browser: WebDriver, server: str, api: httpx.Client
) -> None:
    """The officer's notice (queued above) is not the administrator's own, but it is in the
    outbox the administrator may switch to."""
    admin = token_headers(api, "the-admin")
    outbox = api.get("/notifications/outbox", headers=admin)
    assert outbox.status_code == 200, outbox.text
    assert outbox.json()["total"] >= 1
    login(browser, server, "the-admin")
    browser.get(f"{server}/notices")
    wait(browser, lambda b: "No notices yet" in b.find_element(By.ID, "sent").text)
    browser.find_element(By.ID, "everyone").click()
    wait(browser, lambda b: any("A stolen bike passed a reader" in r for r in _rows(b, "sent")))
    assert len(_rows(browser, "sent")) == outbox.json()["total"]
