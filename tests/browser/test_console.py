"""The console in a real browser (headless Chromium through Selenium): an officer follows a
stolen bike's route as it grows live, the duty desk hears the alert, a registrar registers a
bike and meets a conflict, and a resident reports a theft. Screenshots go to
test-artifacts/screenshots/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from browser_support import bind_since, ride, token_headers, wait
from browser_support import login as log_in
from scenarios import registration, valid_id_number
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select


def login(browser: WebDriver, server: str, username: str, lands_on: str) -> None:
    """Log in on the login page (a fresh tab session) and land on the role's desk."""
    log_in(browser, server, username)
    wait(browser, ec.url_contains(lands_on))


def rows(browser: WebDriver, table_id: str) -> list[str]:
    """The texts of a table's rows, read in one script call (the page re-renders tables)."""
    texts: list[str] = browser.execute_script(
        """return [...document.querySelectorAll(`#${arguments[0]} tbody tr`)]
             .filter((tr) => !tr.querySelector("td.muted[colspan]"))
             .map((tr) => tr.innerText)""",
        table_id,
    )
    return texts


def fill(browser: WebDriver, values: dict[str, str]) -> None:
    for element_id, value in values.items():
        field = browser.find_element(By.ID, element_id)
        field.clear()
        field.send_keys(value)


def stolen_bike(api: httpx.Client, db: str, n: int, case_number: str) -> dict[str, Any]:
    """A registered bike, reported stolen half an hour ago and confirmed under a case."""
    body = registration(n)
    bike = api.post("/bikes", json=body, headers=token_headers(api, "the-registrar"))
    assert bike.status_code == 201, bike.text
    now = datetime.now(UTC)
    bind_since(db, bike.json()["bike_id"], now - timedelta(hours=1))
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
        f"/thefts/{theft.json()['theft_id']}/confirm",
        json={"case_number": case_number},
        headers=officer,
    )
    assert confirmed.status_code == 200, confirmed.text
    return body


def test_officer_follows_stolen_bike_live(
    browser: WebDriver, server: str, api: httpx.Client, console_db: str, screenshot: Any
) -> None:
    body = stolen_bike(api, console_db, 101, "HZ-BROWSER-1")
    now = datetime.now(UTC)
    ride(console_db, body["tag_id"], now - timedelta(minutes=20), ["R0", "R1", "R2"], batch_seq=1)

    login(browser, server, "the-officer", "/officer")
    fill(browser, {"identifier": body["plate"], "case": "HZ-BROWSER-1"})
    wait(browser, lambda b: rows(b, "cases"))  # open cases listed beside the search
    screenshot("search")
    browser.find_element(By.CSS_SELECTOR, "#search button[type=submit]").click()
    wait(browser, ec.url_contains("/routes/"))
    wait(browser, lambda b: len(rows(b, "passages")) == 3)
    assert [r.split()[-2] for r in rows(browser, "passages")] == ["R0", "R1", "R2"]
    # The route is drawn: red observed/inferred stretches on the map, and the bike marker.
    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#map path[stroke='#c62828']"))
    wait(browser, lambda b: "live" in b.find_element(By.ID, "live").text)
    wait(browser, lambda b: "R2" in b.find_element(By.ID, "last-seen").text)
    wait(browser, lambda b: rows(b, "next"))
    screenshot("route")

    # New reads go through the engine while the page is open: the list grows by itself.
    ride(console_db, body["tag_id"], now - timedelta(minutes=10), ["R3", "R4"], batch_seq=2)
    wait(browser, lambda b: len(rows(b, "passages")) == 5)
    assert rows(browser, "passages")[-1].split()[-2] == "R4"
    wait(browser, lambda b: "R4" in b.find_element(By.ID, "last-seen").text)
    screenshot("live")
    # The printed case sheet: map and lists, no controls.
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".print-head").is_displayed())
    screenshot("print")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    # On a tablet held upright the map sits above the panel.
    browser.set_window_size(820, 1180)
    wait(browser, lambda b: b.find_element(By.ID, "map").size["width"] > 700)
    screenshot("tablet")
    browser.set_window_size(1280, 900)

    # The replay slider takes the map back in time; the list dims what came later.
    slider = browser.find_element(By.ID, "slider")
    browser.execute_script(
        "arguments[0].value = 0; arguments[0].dispatchEvent(new Event('input'))", slider
    )
    wait(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, "#passages tr.future")) == 4)
    browser.find_element(By.ID, "lang-switch").click()
    wait(browser, lambda b: "经过记录" in b.find_element(By.ID, "passages-title").text)
    screenshot("replay-zh")


def test_duty_desk_hears_watched_bike(
    browser: WebDriver, server: str, api: httpx.Client, console_db: str, screenshot: Any
) -> None:
    body = stolen_bike(api, console_db, 102, "HZ-BROWSER-2")
    login(browser, server, "the-officer", "/officer")
    browser.get(f"{server}/desk")
    wait(browser, lambda b: "live" in b.find_element(By.ID, "live").text)
    browser.find_element(By.ID, "sound").click()  # the Web Audio beep (silent in headless)
    ride(console_db, body["tag_id"], datetime.now(UTC) - timedelta(minutes=5), ["R1"], batch_seq=3)
    wait(browser, lambda b: any(body["plate"] in r for r in rows(b, "alerts")))
    link = browser.find_element(By.CSS_SELECTOR, "#alerts tbody a")
    assert "case_number=HZ-BROWSER-2" in link.get_attribute("href")
    screenshot("alert")


def test_registrar_registers_and_meets_conflict(
    browser: WebDriver, server: str, api: httpx.Client, screenshot: Any
) -> None:
    now = datetime.now(UTC)
    event = api.post(
        "/events",
        json={
            "name": "Riverside tagging day",
            "place": "North gate",
            "capacity": 50,
            "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(hours=5)).isoformat(),
        },
        headers=token_headers(api, "the-registrar"),
    )
    assert event.status_code == 201, event.text
    login(browser, server, "the-registrar", "/registration")
    wait(
        browser,
        lambda b: Select(b.find_element(By.ID, "event")).first_selected_option.text.startswith(
            "Riverside"
        ),
    )
    body = registration(201)
    good_id = body["owner"]["id_number"]
    bad_id = good_id[:17] + ("0" if good_id[17] != "0" else "1")
    fields = {
        "owner-name": "Wang Fang",
        "owner-phone": "13900001234",
        "owner-id": bad_id,
        "plate": body["plate"],
        "frame": body["frame_number"],
        "motor": body["motor_number"],
        "brand": "Yadea",
        "colour": "blue",
        "tag": body["tag_id"],
    }
    fill(browser, fields)
    browser.find_element(By.CSS_SELECTOR, "#register button[type=submit]").click()
    # The ID check character is checked in the browser, before anything is sent.
    error = wait(browser, lambda b: b.find_element(By.ID, "owner-id-error").text)
    assert "check character" in error
    assert browser.find_element(By.ID, "owner-id").get_attribute("aria-invalid") == "true"
    screenshot("id-error")

    fill(browser, {"owner-id": good_id})
    browser.find_element(By.CSS_SELECTOR, "#register button[type=submit]").click()
    done = wait(browser, ec.visibility_of_element_located((By.ID, "done")))
    assert body["plate"] in done.text
    browser.switch_to.frame(browser.find_element(By.ID, "slip"))
    wait(browser, lambda b: body["plate"] in b.find_element(By.TAG_NAME, "body").text)
    browser.switch_to.default_content()
    screenshot("registered")

    # The same tag and plate again, on another frame: refused, and said plainly.
    browser.find_element(By.ID, "next-bike").click()
    wait(browser, ec.visibility_of_element_located((By.ID, "register")))
    fill(
        browser,
        {
            **fields,
            "owner-id": valid_id_number("11010119900307777"),
            "frame": "LYD2024B9999999",
            "motor": "",
        },
    )
    browser.find_element(By.CSS_SELECTOR, "#register button[type=submit]").click()
    conflict = wait(browser, ec.visibility_of_element_located((By.ID, "conflict")))
    assert "already bound to another bike" in conflict.text
    assert browser.find_element(By.ID, "tag").get_attribute("aria-invalid") == "true"
    assert browser.find_element(By.ID, "plate").get_attribute("aria-invalid") == "true"
    screenshot("conflict")


def test_resident_reports_theft(
    browser: WebDriver, server: str, api: httpx.Client, console_db: str, screenshot: Any
) -> None:
    from browser_support import add_user

    registrar = token_headers(api, "the-registrar")
    bike = api.post("/bikes", json=registration(301), headers=registrar)
    assert bike.status_code == 201, bike.text
    add_user(console_db, "resident-li", "resident", owner_id=bike.json()["owner"]["owner_id"])
    login(browser, server, "resident-li", "/resident")
    card = wait(browser, ec.visibility_of_element_located((By.CSS_SELECTOR, "article.bike")))
    assert bike.json()["plate"] in card.text
    card.find_element(By.CSS_SELECTOR, "button.danger").click()
    wait(browser, ec.visibility_of_element_located((By.ID, "theft-dialog")))
    fill(browser, {"theft-place": "outside the metro station", "theft-description": "lock cut"})
    screenshot("dialog")
    browser.find_element(By.CSS_SELECTOR, "#theft-form button[type=submit]").click()
    wait(browser, lambda b: "reported" in b.find_element(By.ID, "mine-status").text)
    wait(
        browser,
        lambda b: "Stolen (reported)" in b.find_element(By.CSS_SELECTOR, "article.bike").text,
    )
    theft = api.get(f"/bikes/{bike.json()['bike_id']}", headers=registrar).json()["theft"]
    assert theft["status"] == "reported"
    screenshot("reported")


def test_operator_sees_reader_health(
    browser: WebDriver, server: str, api: httpx.Client, console_db: str, screenshot: Any
) -> None:
    body = registration(401)
    bike = api.post("/bikes", json=body, headers=token_headers(api, "the-registrar"))
    assert bike.status_code == 201, bike.text
    bind_since(console_db, bike.json()["bike_id"], datetime.now(UTC) - timedelta(hours=1))
    ride(console_db, body["tag_id"], datetime.now(UTC) - timedelta(minutes=3), ["R5"], batch_seq=4)
    login(browser, server, "the-admin", "/operator")
    wait(browser, lambda b: len(rows(b, "readers")) == 6)
    # Readers that sent reads are online, the others "never heard" (not offline); all on the map.
    wait(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, "#map path[fill='#1a7f37']")) >= 1)
    assert browser.find_element(By.ID, "kpi-rate").text not in ("", "—")
    assert "min" in browser.find_element(By.ID, "kpi-lag").text
    screenshot("readers")
