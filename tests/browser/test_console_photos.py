"""Bike photos in real Chromium: the registrar registers a bike and adds a phone photo on the
done screen (made smaller in the browser, re-encoded by the API), and the officer sees it on
the case view."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from browser_support import token_headers, wait
from PIL import Image
from scenarios import registration
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select
from test_console import fill, login


def test_registrar_adds_a_photo_and_the_officer_sees_it(
    browser: WebDriver,
    server: str,
    api: httpx.Client,
    tmp_path: Path,
    screenshot: Any,
) -> None:
    now = datetime.now(UTC)
    event = api.post(
        "/events",
        json={"name": "Photo day", "place": "East gate", "capacity": 20,
              "starts_at": (now - timedelta(hours=1)).isoformat(),
              "ends_at": (now + timedelta(hours=5)).isoformat()},
        headers=token_headers(api, "the-registrar"),
    )  # fmt: skip
    assert event.status_code == 201, event.text
    login(browser, server, "the-registrar", "/registration")
    wait(browser, lambda b: Select(b.find_element(By.ID, "event")).first_selected_option.text)
    body = registration(141)
    fill(browser, {
        "owner-name": "Li Na", "owner-phone": "13900004321", "owner-id": body["owner"]["id_number"],
        "plate": body["plate"], "frame": body["frame_number"], "motor": body["motor_number"],
        "brand": "Yadea", "colour": "red", "tag": body["tag_id"],
    })  # fmt: skip
    browser.find_element(By.CSS_SELECTOR, "#register button[type=submit]").click()
    wait(browser, ec.visibility_of_element_located((By.ID, "done")))

    photo = tmp_path / "IMG_2041.jpg"
    Image.new("RGB", (3000, 2000), (30, 90, 200)).save(photo, "JPEG")
    browser.find_element(By.ID, "photos").send_keys(str(photo))
    wait(browser, lambda b: "1 photo(s) added" in b.find_element(By.ID, "photos-status").text)
    screenshot("photo-added")

    bike_id = api.get(
        "/bikes", params={"plate": body["plate"]}, headers=token_headers(api, "the-officer")
    ).json()["bike_id"]
    listed = api.get(f"/bikes/{bike_id}/photos", headers=token_headers(api, "the-officer")).json()
    assert [(p["width"], p["height"]) for p in listed] == [(1600, 1067)]
    stored = api.get(
        listed[0]["url"].removeprefix("/api/v1"), headers=token_headers(api, "the-officer")
    )
    assert Image.open(io.BytesIO(stored.content)).size == (1600, 1067)

    login(browser, server, "the-officer", "/officer")
    browser.get(f"{server}/routes/{body['plate']}?reason=checking the photo view")
    panel = wait(browser, ec.visibility_of_element_located((By.ID, "photos-panel")))
    loaded = "const i = document.querySelector('#photos-panel img'); return i && i.naturalWidth > 0"
    wait(browser, lambda b: b.execute_script(loaded))
    assert len(panel.find_elements(By.TAG_NAME, "img")) == 1
    screenshot("case-photos")
