"""Helpers of the browser tests: a small city, accounts, registrations, rides through the
engine, and the headless Chromium they drive.

Chromium and its driver come from Debian (``apt-get install chromium chromium-driver``),
the driver's client from PyPI (``selenium``). Missing pieces fail the tests with the command
that installs them: a skipped browser suite would let CI pass without testing the console.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from api.config import ApiConfig
from api.users import store as accounts
from api.users.service import create_user
from reader_gateway.wire import batch_from_columns
from track_engine.pipeline import Engine

PASSWORD = "correct horse battery"
KEYS = {"jwt_secret": b"j" * 32, "id_hash_key": b"h" * 32, "id_enc_key": b"e" * 32}
CHROMIUM = os.environ.get("TAGTRAIL_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("TAGTRAIL_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
    "--lang=en-US",
)


def api_config(url: str) -> ApiConfig:
    """The API's configuration with fixed test keys and quick live polling."""
    return ApiConfig(database_url=url, live_poll_s=0.2, **KEYS)


def chromium_paths() -> tuple[str, str]:
    """(browser, driver) paths; fails the test naming the packages to install."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (Path(p).exists() or shutil.which(p))]
    if missing:
        pytest.fail(
            f"browser tests need {', '.join(missing)}: "
            "apt-get install chromium chromium-driver (Debian packages)"
        )
    return CHROMIUM, CHROMEDRIVER


def add_user(url: str, username: str, role: str, *, owner_id: int | None = None) -> int:
    """Create an account directly in the database; returns its id."""
    with psycopg.connect(url) as conn:
        user = create_user(
            conn, username=username, password=PASSWORD, role=role, actor="test", actor_role="test"
        )
        if owner_id is not None:
            accounts.link_owner(conn, user_id=user.user_id, owner_id=owner_id)
        return user.user_id


def bind_since(url: str, bike_id: int, since: datetime) -> None:
    """Backdate the bike's tag binding, so that rides in the recent past count as its own."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE tag_bindings SET valid = tstzrange(%s, upper(valid)) WHERE bike_id = %s",
            (since, bike_id),
        )


def ride(url: str, tag_id: str, start: datetime, readers: list[str], *, batch_seq: int) -> None:
    """The bike passes ``readers`` 70 s apart; the engine stores reads, alerts, passages."""
    reader_ids, read_at_us, rssi = [], [], []
    t0_us = int(start.timestamp() * 1e6)
    for k, reader in enumerate(readers):
        for i in range(11):  # 2 s of reads, loudest in the middle
            reader_ids.append(reader)
            read_at_us.append(t0_us + k * 70_000_000 + i * 200_000)
            rssi.append(-60.0 - abs(i - 5) * 2.0)
    batch = batch_from_columns(
        gateway_id="gw-browser",
        batch_seq=batch_seq,
        sent_at_us=read_at_us[-1],
        reader_ids=reader_ids,
        antenna=[1] * len(reader_ids),
        tag=[tag_id] * len(reader_ids),
        rssi_dbm=rssi,
        read_at_us=read_at_us,
        seq=list(range(len(reader_ids))),
    )
    with psycopg.connect(url) as conn:
        engine = Engine(conn, gap_s=5.0)
        engine.process([batch])
        engine.flush()


def token_headers(api: httpx.Client, username: str) -> dict[str, str]:
    """Authorization header of a fresh token."""
    r = api.post("/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


WAIT_S = 15


def wait(browser: WebDriver, until: Callable[[WebDriver], Any], timeout: float = WAIT_S) -> Any:
    """``until``'s first truthy answer, polled every 0.1 s (re-rendered elements retried)."""
    return WebDriverWait(
        browser, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
    ).until(until)


def login(browser: WebDriver, server: str, username: str) -> None:
    """Log in on the login page in a fresh tab session, in English; returns once logged in."""
    browser.get(f"{server}/")
    browser.execute_script("sessionStorage.clear(); localStorage.setItem('tagtrail.lang', 'en');")
    browser.get(f"{server}/")
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    wait(browser, lambda b: b.execute_script("return sessionStorage.getItem('tagtrail.token')"))
