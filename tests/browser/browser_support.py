"""Helpers of the browser tests: a small city, accounts, registrations, rides through the
engine, and the headless Chromium they drive.

Chromium and its driver come from Debian (``apt-get install chromium chromium-driver``),
the driver's client from PyPI (``selenium``). Missing pieces fail the tests with the command
that installs them: a skipped browser suite would let CI pass without testing the console.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest

from api.config import ApiConfig
from api.users.service import create_user
from reader_gateway.wire import batch_from_columns
from track_engine.db import accounts, registry
from track_engine.pipeline import Engine

PASSWORD = "correct horse battery"
KEYS = {"jwt_secret": b"j" * 32, "id_hash_key": b"h" * 32, "id_enc_key": b"e" * 32}
SPACING_M = 300.0
LAT0, LON0 = 30.0, 120.0
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


def valid_id_number(prefix17: str) -> str:
    """A national ID number with a correct GB 11643 check character."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(prefix17, weights, strict=True))
    return prefix17 + "10X98765432"[total % 11]


def registration(n: int, **overrides: Any) -> dict[str, Any]:
    """A valid registration body, unique by ``n``."""
    body: dict[str, Any] = {
        "owner": {
            "name": f"Owner {n}",
            "phone": f"1380013{n:04d}",
            "id_number": valid_id_number(f"1101011990030{n:04d}"),
            "address": "Riverside estate",
        },
        "brand": "Yadea",
        "model": "DE3",
        "colour": "red",
        "frame_number": f"LYD2024A{n:07d}",
        "motor_number": f"M48V-{n:06d}",
        "plate": f"浙B·{n:05d}",
        "tag_id": f"E28011A1{n:016X}",
    }
    body.update(overrides)
    return body


def line_city(url: str, n: int = 6) -> None:
    """A straight two-way road with a reader at every node (R0 ... R5), 300 m apart."""
    x = np.arange(n) * SPACING_M
    lon = LON0 + x / (111_320.0 * np.cos(np.radians(LAT0)))
    nodes = pd.DataFrame(
        {"node_id": range(n), "lon": lon, "lat": LAT0, "x_m": x, "y_m": 0.0, "kind": "junction"}
    )
    src = [*range(n - 1), *range(1, n)]
    dst = [*range(1, n), *range(n - 1)]
    edges = pd.DataFrame(
        {
            "edge_id": range(len(src)),
            "src": src,
            "dst": dst,
            "length_m": SPACING_M,
            "road_class": "primary",
            "oneway": False,
        }
    )
    readers = pd.DataFrame(
        {
            "reader_id": [f"R{i}" for i in range(n)],
            "protocol": "r2000",
            "lon": lon,
            "lat": LAT0,
            "x_m": x,
            "y_m": 0.0,
            "node_id": range(n),
            "antennas": 1,
            "antenna_headings": [[90.0]] * n,
            "clock_offset_ms": 0.0,
            "miss_rate": 0.1,
        }
    )
    with psycopg.connect(url) as conn:
        network_id = registry.store_road_network(
            conn,
            name="line",
            source="test:line",
            origin_lat=LAT0,
            origin_lon=LON0,
            nodes=nodes,
            edges=edges,
        )
        registry.upsert_readers(conn, readers, network_id=network_id)


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
