"""Fixtures of the browser tests: the API and console served by uvicorn on a free loopback
port against a fresh migrated database, a seeded city, and one headless Chromium per module."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from browser_support import (
    CHROMIUM_FLAGS,
    SCREENSHOTS,
    add_user,
    api_config,
    chromium_paths,
)
from scenarios import line_city
from testsupport import create_database, drop_database, free_port

from api.app import create_app
from track_engine.db.migrate import migrate

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
except ImportError:  # pragma: no cover - depends on the machine
    webdriver = None


@pytest.fixture(scope="module")
def console_db(pg_admin_url: str) -> Iterator[str]:
    """A migrated database with the line city and one account per desk."""
    name, url = create_database(pg_admin_url)
    try:
        migrate(url)
        line_city(url)
        for role in ("officer", "registrar", "admin"):
            add_user(url, f"the-{role}", role)
        yield url
    finally:
        drop_database(pg_admin_url, name)


@pytest.fixture(scope="module")
def server(console_db: str) -> Iterator[str]:
    """Base URL of the API and console, served in a thread of this process."""
    port = free_port()
    config = uvicorn.Config(
        create_app(api_config(console_db)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, name="console-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the console server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def api(server: str) -> Iterator[httpx.Client]:
    """An HTTP client of the served API (for setting the scene)."""
    with httpx.Client(base_url=f"{server}/api/v1", timeout=20) as client:
        yield client


@pytest.fixture(scope="module")
def browser(server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """Headless Chromium with a fresh profile, no network beyond loopback. It depends on the
    server so that it quits first: open live streams would hold the server's shutdown."""
    del server
    binary, driver = chromium_paths()
    if webdriver is None:
        pytest.fail("browser tests need the selenium package: pip install selenium")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    # An explicit driver path keeps Selenium Manager from looking for one on the internet.
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    chrome.set_page_load_timeout(30)
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture
def screenshot(browser: webdriver.Chrome, request: pytest.FixtureRequest) -> object:
    """``screenshot("name")`` saves test-artifacts/screenshots/<test>-<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = SCREENSHOTS / f"{request.node.name}-{name}.png"
        browser.save_screenshot(str(path))
        return path

    return take
