"""The clients of ``tagtrail bench query``: closed loops asking for a random bike's route,
last sighting and likely next readers, each request timed and its answer checked.

``"processes"`` runs each client as its own forked process speaking plain HTTP/1.1
(:class:`~tagtrail.bench.api_under_test.Http`); ``"threads"`` runs one httpx client per thread
in the benchmark's own process (one GIL for all), kept to compare.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import Any, Literal, Protocol
from urllib.parse import quote

import httpx
import numpy as np

from tagtrail.bench.api_under_test import Http
from tagtrail.bench.common import BenchError

ENDPOINTS = ("route", "last_seen", "next_readers")


def _path(name: str, bike_id: int, plate: str) -> str:
    return {
        "route": f"/api/v1/routes/{quote(plate, safe='')}",
        "last_seen": f"/api/v1/bikes/{bike_id}/last-seen",
        "next_readers": f"/api/v1/bikes/{bike_id}/next-readers",
    }[name]


def _client(
    base: str,
    token: str,
    bikes: list[tuple[int, str]],
    *,
    until: float,
    warm_at: float,
    seed: int,
    out: dict[str, list[float]],
    errors: list[str],
) -> None:
    """The ``"threads"`` client: httpx, in a thread of the benchmark's process."""
    rng = np.random.default_rng(seed)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        turn = 0
        while time.monotonic() < until:
            bike_id, plate = bikes[int(rng.integers(len(bikes)))]
            name = ENDPOINTS[turn % len(ENDPOINTS)]
            turn += 1
            warm = time.monotonic() >= warm_at
            started = time.perf_counter()
            resp = client.get(_path(name, bike_id, plate), params={"reason": "benchmark"})
            elapsed = time.perf_counter() - started
            if resp.status_code == 404:
                # "not seen in that window": an answer too (timed), but counted apart
                out[f"{name}_not_found"].append(elapsed)
                continue
            if resp.status_code != 200:
                errors.append(f"{name} {resp.status_code}: {resp.text[:200]}")
                continue
            out[name].append(elapsed)
            if warm:
                out[f"{name}_warm"].append(elapsed)


def _client_process(
    port: int,
    token: str,
    bikes: list[tuple[int, str]],
    start_at: float,
    until: float,
    warm_at: float,
    seed: int,
    results: Any,
) -> None:
    """The ``"processes"`` client: its own process, plain HTTP/1.1; its timings go back
    through ``results`` (a pipe end) when ``until`` (monotonic; shared by all processes on
    Linux) has passed."""
    rng = np.random.default_rng(seed)
    out = _timings()
    errors: list[str] = []
    http = Http("127.0.0.1", port)
    headers = (
        f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: */*\r\nUser-Agent: tagtrail-bench\r\n\r\n"
    ).encode()
    while time.monotonic() < start_at:
        time.sleep(0.001)
    turn = 0
    try:
        while time.monotonic() < until:
            bike_id, plate = bikes[int(rng.integers(len(bikes)))]
            name = ENDPOINTS[turn % len(ENDPOINTS)]
            turn += 1
            target = _path(name, bike_id, plate) + "?reason=benchmark"
            warm = time.monotonic() >= warm_at
            started = time.perf_counter()
            try:
                status, body = http.get(target, headers)
            except (OSError, BenchError) as exc:
                errors.append(f"{name}: {exc}")
                http.close()
                continue
            elapsed = time.perf_counter() - started
            if status == 404:
                out[f"{name}_not_found"].append(elapsed)
            elif status != 200 or not body:
                errors.append(f"{name} {status}: {body[:200]!r}")
            else:
                out[name].append(elapsed)
                if warm:
                    out[f"{name}_warm"].append(elapsed)
    finally:
        http.close()
        results.send((out, errors))
        results.close()


def _timings() -> dict[str, list[float]]:
    """Per endpoint: every answer, answers after the warm-up, and "not found" answers."""
    return {key: [] for name in ENDPOINTS for key in (name, f"{name}_warm", f"{name}_not_found")}


class ClientLoad(Protocol):
    """How many clients, of which kind, for how long: what of a
    :class:`~tagtrail.bench.query.QueryOptions` the clients need."""

    @property
    def client(self) -> Literal["processes", "threads"]: ...
    @property
    def clients(self) -> int: ...
    @property
    def seconds(self) -> float: ...
    @property
    def warmup_s(self) -> float: ...


def run_clients(
    opts: ClientLoad, port: int, token: str, bikes: list[tuple[int, str]]
) -> tuple[dict[str, list[float]], list[str]]:
    """Run ``opts.clients`` closed-loop clients for ``opts.seconds``; their timings."""
    out = _timings()
    errors: list[str] = []
    if opts.client == "threads":
        until = time.monotonic() + opts.seconds
        warm_at = until - opts.seconds + opts.warmup_s
        threads = [
            threading.Thread(
                target=_client,
                args=(f"http://127.0.0.1:{port}", token, bikes),
                kwargs={
                    "until": until,
                    "warm_at": warm_at,
                    "seed": i,
                    "out": out,
                    "errors": errors,
                },
            )
            for i in range(opts.clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(opts.seconds + 60)
        return out, errors
    # Forked, not spawned: a client needs nothing but a socket, and forking skips importing
    # the benchmark's modules 16 times. Every client starts at the same moment.
    ctx = multiprocessing.get_context("fork")
    start_at = time.monotonic() + 0.5
    until = start_at + opts.seconds
    pipes, procs = [], []
    for i in range(opts.clients):
        receiver, sender = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_client_process,
            args=(port, token, bikes, start_at, until, start_at + opts.warmup_s, i, sender),
            daemon=True,
        )
        proc.start()
        sender.close()
        pipes.append(receiver)
        procs.append(proc)
    for receiver, proc in zip(pipes, procs, strict=True):
        if not receiver.poll(opts.seconds + 60):
            errors.append(f"client process {proc.pid} sent nothing")
            continue
        got, failed = receiver.recv()
        for key, values in got.items():
            out[key].extend(values)
        errors.extend(failed)
    for proc in procs:
        proc.join(10)
    return out, errors
