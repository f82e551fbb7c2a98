"""The public "is this e-bike stolen?" page in real Chromium, with no login: a buyer types a
plate (or a frame number, look-alike characters and all) and reads yes or no, the day it was
reported and what to do, never where the bike is. Screenshots go to
test-artifacts/screenshots/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from browser_support import token_headers, wait
from scenarios import registration
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from api.public import views


def _check(browser: WebDriver, by: str, value: str) -> str:
    """Ask the page about ``value`` (by plate or frame_number); the answer's whole text."""
    browser.find_element(By.CSS_SELECTOR, f"input[name=by][value={by}]").click()
    field = browser.find_element(By.ID, "value")
    field.clear()
    field.send_keys(value)
    browser.execute_script("document.getElementById('answer-title').textContent = ''")
    browser.find_element(By.CSS_SELECTOR, "#check button[type=submit]").click()
    wait(browser, lambda b: b.find_element(By.ID, "answer-title").text)
    return str(browser.find_element(By.ID, "answer").text)


def test_a_buyer_checks_a_plate_and_a_frame_number_without_an_account(
    browser: WebDriver, server: str, api: httpx.Client, screenshot: Any
) -> None:
    views.LIMIT_STORAGE.reset()  # the per-address limit: this module's checks start afresh
    stolen, clear = registration(151), registration(152)
    bike_ids = []
    for body in (stolen, clear):
        made = api.post("/bikes", json=body, headers=token_headers(api, "the-registrar"))
        assert made.status_code == 201, made.text
        bike_ids.append(made.json()["bike_id"])
    theft = api.post(
        "/thefts",
        json={
            "bike_id": bike_ids[0],
            "stolen_at": (datetime.now(UTC) - timedelta(hours=2)).isoformat(),
            "place": "Gate 3",
        },
        headers=token_headers(api, "the-officer"),
    )
    assert theft.status_code == 201, theft.text

    browser.get(f"{server}/")
    browser.execute_script("sessionStorage.clear(); localStorage.setItem('tagtrail.lang', 'en')")
    browser.get(f"{server}/check")
    assert browser.current_url.endswith("/check"), "no login asked for"
    answer = _check(browser, "plate", stolen["plate"])
    assert f"{stolen['plate']} is reported stolen" in answer
    assert "Do not buy" in answer
    assert "Gate" not in answer, "never a place"
    assert "stolen" in browser.find_element(By.ID, "answer").get_attribute("class")
    screenshot("stolen")

    typed = stolen["frame_number"].replace("0", "O")  # a look-alike still finds it
    assert "is reported stolen" in _check(browser, "frame_number", typed)
    answer = _check(browser, "plate", clear["plate"])
    assert f"{clear['plate']} is not reported stolen" in answer
    assert "registration slip" in answer
