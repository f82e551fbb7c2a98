"""What street names cost the console's map: baseMap() timed in headless Chromium on a big city.

Stores the generated city (``--size-m``, 13.5 km: 33,029 directed edges) twice in a fresh
database, first without names then with them, serves the console, and in Chromium times
``baseMap()`` (fetch /api/v1/network and draw it), a zoom to 16 (where street labels are
placed) and a pan, as JavaScript time (``performance.now()``, paint not included); medians
of ``--runs`` after one warm-up. Uses the browser tests' helpers:

    export TAGTRAIL_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python tools/map_street_names_cost.py
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "browser")]

from browser_support import (  # noqa: E402
    CHROMEDRIVER,
    CHROMIUM,
    CHROMIUM_FLAGS,
    add_user,
    api_config,
    login,
)
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from testsupport import create_database, drop_database, free_port  # noqa: E402

from api.app import create_app  # noqa: E402
from api.registry import loaders as registry  # noqa: E402
from citymap.network import City  # noqa: E402
from simulators.city import generate_city  # noqa: E402
from track_engine.db.migrate import migrate  # noqa: E402

TIME_MAP = """const done = arguments[0];
import('/static/map.js').then(async (m) => {
  const el = document.createElement('div');
  el.style.width = '1000px'; el.style.height = '700px'; document.body.append(el);
  const t = performance.now();
  const {map} = await m.baseMap(el);
  const load = performance.now() - t;
  const z = performance.now();
  map.setZoom(16, {animate: false});
  const zoom = performance.now() - z;
  const p = performance.now();
  for (let i = 0; i < 10; i++) map.panBy([200, 0], {animate: false});
  const pan = (performance.now() - p) / 10;
  const labels = el.querySelectorAll('.street-label').length;
  map.remove(); el.remove(); done([load, zoom, pan, labels]);
});"""


def store(url: str, city: City, *, names: bool) -> None:
    """Store ``city`` (with or without its names) as the active network, with three readers."""
    edges = {
        "edge_id": np.arange(city.n_edges), "src": city.edge_src, "dst": city.edge_dst,
        "length_m": city.edge_length_m, "road_class": city.edge_class, "oneway": city.edge_oneway,
    }  # fmt: skip
    if names:
        edges["name"] = city.edge_names()
    nodes = [0, city.n_nodes // 2, city.n_nodes - 1]
    with psycopg.connect(url) as conn:
        network_id = registry.store_road_network(
            conn, name="big", source=f"cost:{names}",
            origin_lat=city.origin_lat, origin_lon=city.origin_lon,
            nodes=pd.DataFrame({
                "node_id": np.arange(city.n_nodes), "lon": city.node_lonlat[:, 0],
                "lat": city.node_lonlat[:, 1], "x_m": city.node_xy_m[:, 0],
                "y_m": city.node_xy_m[:, 1], "kind": city.node_kind,
            }),
            edges=pd.DataFrame(edges),
        )  # fmt: skip
        readers = pd.DataFrame({
            "reader_id": ["R0", "R1", "R2"], "protocol": "r2000",
            "lon": city.node_lonlat[nodes, 0], "lat": city.node_lonlat[nodes, 1],
            "x_m": city.node_xy_m[nodes, 0], "y_m": city.node_xy_m[nodes, 1], "node_id": nodes,
            "antennas": 1, "antenna_headings": [[90.0]] * 3, "clock_offset_ms": 0.0,
            "miss_rate": 0.1,
        })  # fmt: skip
        registry.upsert_readers(conn, readers, network_id=network_id)


def main() -> int:
    """Measure and print one line per variant (without names, with names)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-m", type=float, default=13_500.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    admin = os.environ["TAGTRAIL_TEST_DATABASE_URL"]
    city = generate_city(seed=7, size_m=args.size_m)
    print(f"city: {city.n_edges:,} directed edges, {city.n_nodes:,} nodes")
    name, url = create_database(admin)
    try:
        migrate(url)
        add_user(url, "cost-operator", "operator")
        port = free_port()
        uv = uvicorn.Server(
            uvicorn.Config(create_app(api_config(url)), port=port, log_level="warning")
        )
        threading.Thread(target=uv.run, daemon=True).start()
        while not uv.started:
            time.sleep(0.05)
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        browser = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        browser.set_script_timeout(120)
        try:
            for names in (False, True):
                store(url, city, names=names)
                login(browser, f"http://127.0.0.1:{port}", "cost-operator")
                runs = [browser.execute_async_script(TIME_MAP) for _ in range(args.runs + 1)]
                ms = np.median(np.array([r[:3] for r in runs[1:]]), axis=0)
                print(
                    f"names={names}: load+draw {ms[0]:.0f} ms, zoom to 16 {ms[1]:.0f} ms, "
                    f"pan {ms[2]:.1f} ms, labels at zoom 16: {runs[-1][3]}"
                )
        finally:
            browser.quit()
            uv.should_exit = True
    finally:
        drop_database(admin, name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
