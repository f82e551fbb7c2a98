"""``tagtrail bench login-flood``: officers' route lookups while logins flood the API.

Set-up, on a fresh database: the demo city simulated for ``hours`` and stored the way the
engine stores it (as in ``bench query``), an officer account and ``accounts`` more accounts
with random passwords. The API runs as its own process, ``tagtrail api --workers
api_workers``, with ``TAGTRAIL_TRUSTED_PROXIES=["127.0.0.1"]``: the flood presents a
different ``X-Forwarded-For`` address on every request, as a flood from many addresses
through a reverse proxy would, so that no per-address limit stops it and the bound on
concurrent password hashes is what is measured.

Of ``clients`` closed-loop clients (each its own process, plain HTTP/1.1 on one keep-alive
connection, as in ``bench query``), ``officers`` ask in turn for a random bike's route
(``/api/v1/routes/{plate}`` with a reason); the others post logins without pause (no
respect of Retry-After: an attacker's), ``known_share`` of them with a real account's right
password and the rest for made-up usernames. The officers start ``warmup_s`` before the
flood (each API worker stitches every route once, cold: reported apart as ``route_warmup``);
then officers and flood run together for ``seconds``. Every answer is counted by status;
route answers (200, or 404 "not seen in that window") are timed from the first byte sent to
the last received, and those started during the flood are the ``route`` figures.

Targets (the issue's done-when line): no 5xx and no failed request (a connection reset or a
timeout counts), and the officers' route p99 during the flood under ``p99_target_s``.
"""

from __future__ import annotations

import multiprocessing
import secrets
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import numpy as np
import psycopg

from tagtrail.bench.common import (
    ADMIN_URL,
    BenchError,
    fresh_database,
    load_avg,
    machine,
    percentiles_ms,
)
from tagtrail.bench.latency import login, officer
from tagtrail.bench.preload import checkpoint
from tagtrail.bench.query import api_service, seed_city
from tagtrail.bench.query_clients import Http


@dataclass(frozen=True)
class LoginFloodOptions:
    """What one ``tagtrail bench login-flood`` run does."""

    clients: int = 100
    officers: int = 10  # of the clients; the others flood logins
    seconds: float = 60.0
    api_workers: int = 2
    accounts: int = 20  # real accounts whose right passwords are part of the flood
    known_share: float = 0.2  # of the flood's logins, with a real account's right password
    bikes: int = 120
    hours: float = 1.0
    p99_target_s: float = 1.0
    warmup_s: float = 5.0  # officers alone before the flood starts
    admin_url: str = ADMIN_URL


@dataclass
class Tally:
    """What clients saw: answers by status, route times (s), failed requests."""

    statuses: Counter[int] = field(default_factory=Counter)
    route_s: list[float] = field(default_factory=list)  # started during the flood
    warmup_route_s: list[float] = field(default_factory=list)  # started before it
    errors: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        """Count ``other`` in too."""
        self.statuses.update(other.statuses)
        self.route_s.extend(other.route_s)
        self.warmup_route_s.extend(other.warmup_route_s)
        self.errors.extend(other.errors)


def _accounts(database_url: str, count: int) -> list[tuple[str, str]]:
    """``count`` resident accounts with random passwords; their (username, password)."""
    from api.security import hash_password
    from api.users import store as accounts

    made = []
    with psycopg.connect(database_url) as conn:
        for i in range(count):
            username, password = f"flood-{i:03d}", secrets.token_urlsafe(16)
            accounts.create_user(
                conn, username=username, password_hash=hash_password(password), role="resident"
            )
            made.append((username, password))
    return made


def _officer_client(
    port: int,
    token: str,
    plates: list[str],
    start_at: float,
    flood_at: float,
    until: float,
    seed: int,
) -> Tally:
    """Route lookups in a closed loop (those started from ``flood_at`` on counted apart)."""
    rng = np.random.default_rng(seed)
    http = Http("127.0.0.1", port)
    head = (
        f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: */*\r\nUser-Agent: tagtrail-bench\r\n\r\n"
    ).encode()
    tally = Tally()
    while time.monotonic() < start_at:
        time.sleep(0.001)
    try:
        while time.monotonic() < until:
            plate = plates[int(rng.integers(len(plates)))]
            target = f"/api/v1/routes/{quote(plate, safe='')}?reason=benchmark"
            flooded = time.monotonic() >= flood_at
            started = time.perf_counter()
            try:
                status, _ = http.get(target, head)
            except (OSError, BenchError) as exc:
                tally.errors.append(f"route: {exc}")
                http.close()
                continue
            tally.statuses[status] += 1
            if status in (200, 404):
                times = tally.route_s if flooded else tally.warmup_route_s
                times.append(time.perf_counter() - started)
    finally:
        http.close()
    return tally


def _login_client(
    port: int,
    known: list[tuple[str, str]],
    known_share: float,
    start_at: float,
    until: float,
    seed: int,
) -> Tally:
    """Logins in a closed loop, each from another forwarded address."""
    rng = np.random.default_rng(seed)
    http = Http("127.0.0.1", port)
    tally = Tally()
    while time.monotonic() < start_at:
        time.sleep(0.001)
    turn = 0
    try:
        while time.monotonic() < until:
            turn += 1
            if rng.random() < known_share:
                username, password = known[int(rng.integers(len(known)))]
            else:
                username, password = f"nobody-{seed}-{turn}", "not a password"
            body = urlencode({"username": username, "password": password}).encode()
            address = ".".join(str(int(b)) for b in rng.integers(1, 255, 3))
            raw = (
                f"POST /api/v1/auth/token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"X-Forwarded-For: 10.{address}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\nUser-Agent: tagtrail-bench\r\n\r\n"
            ).encode() + body
            try:
                status, _ = http.request(raw)
            except (OSError, BenchError) as exc:
                tally.errors.append(f"login: {exc}")
                http.close()
                continue
            tally.statuses[status] += 1
    finally:
        http.close()
    return tally


def _client_process(kind: str, args: tuple[Any, ...], results: Any) -> None:
    """One client as its own process; its tallies go back through ``results`` (a pipe end)."""
    try:
        out = _officer_client(*args) if kind == "officer" else _login_client(*args)
    except Exception as exc:  # a client's crash is reported, not lost
        out = Tally(errors=[f"{kind} client: {exc!r}"])
    results.send((kind, out))
    results.close()


def _run_clients(
    opts: LoginFloodOptions,
    port: int,
    token: str,
    plates: list[str],
    known: list[tuple[str, str]],
) -> dict[str, Tally]:
    """Run the officers and the flood together; their tallies by kind."""
    ctx = multiprocessing.get_context("fork")  # a client needs a socket, not our imports
    start_at = time.monotonic() + 2.0  # time to fork every client
    flood_at = start_at + opts.warmup_s
    until = flood_at + opts.seconds
    pipes, procs = [], []
    for i in range(opts.clients):
        kind = "officer" if i < opts.officers else "login"
        args: tuple[Any, ...] = (
            (port, token, plates, start_at, flood_at, until, i)
            if kind == "officer"
            else (port, known, opts.known_share, flood_at, until, i)
        )
        receiver, sender = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_client_process, args=(kind, args, sender), daemon=True)
        proc.start()
        sender.close()
        pipes.append(receiver)
        procs.append(proc)
    tallies = {"officer": Tally(), "login": Tally()}
    for receiver, proc in zip(pipes, procs, strict=True):
        if not receiver.poll(opts.warmup_s + opts.seconds + 90):
            tallies["login"].errors.append(f"client process {proc.pid} sent nothing")
            continue
        kind, out = receiver.recv()
        tallies[kind].add(out)
    for proc in procs:
        proc.join(10)
    return tallies


def run_login_flood(opts: LoginFloodOptions) -> dict[str, Any]:
    """Run the benchmark; return the figures, with ``passed`` saying whether the targets hold."""
    if not 0 < opts.officers < opts.clients:
        raise BenchError("officers must be at least 1 and fewer than the clients")
    doc: dict[str, Any] = {
        "benchmark": "login flood",
        "options": {
            "clients": opts.clients,
            "officers": opts.officers,
            "login_clients": opts.clients - opts.officers,
            "seconds": opts.seconds,
            "api_workers": opts.api_workers,
            "accounts": opts.accounts,
            "known_share": opts.known_share,
            "bikes": opts.bikes,
            "hours": opts.hours,
            "p99_target_s": opts.p99_target_s,
            "warmup_s": opts.warmup_s,
        },
    }
    with fresh_database(opts.admin_url) as url, tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        seeded = seed_city(url, data_dir=data_dir, hours=opts.hours, bikes=opts.bikes)
        checkpoint(url)
        form = officer(url)
        known = _accounts(url, opts.accounts)
        doc["machine"] = machine(url)
        with api_service(
            url, data_dir, Path(tmp), workers=opts.api_workers, topic="login-flood",
            up_timeout_s=90, extra_env={"TAGTRAIL_TRUSTED_PROXIES": '["127.0.0.1"]'},
        ) as (port, api):  # fmt: skip
            token = login(f"http://127.0.0.1:{port}", form)
            load_before = load_avg()
            tallies = _run_clients(opts, port, token, [p for _, p in seeded["bikes"]], known)
            api.check()
    return _figures(doc, opts, tallies, load_before)


def _figures(
    doc: dict[str, Any],
    opts: LoginFloodOptions,
    tallies: dict[str, Tally],
    load_before: list[float],
) -> dict[str, Any]:
    officers, logins = tallies["officer"], tallies["login"]
    route = percentiles_ms(officers.route_s)  # NaN without an answer: the target fails
    statuses = officers.statuses + logins.statuses
    server_errors = sum(n for code, n in statuses.items() if code >= 500)
    failures = [*officers.errors, *logins.errors]
    doc.update(
        {
            "statuses": {str(code): n for code, n in sorted(statuses.items())},
            "officer_statuses": {str(c): n for c, n in sorted(officers.statuses.items())},
            "login_statuses": {str(c): n for c, n in sorted(logins.statuses.items())},
            "route": {"answers": len(officers.route_s), **route},
            "route_warmup": {
                "answers": len(officers.warmup_route_s),
                **percentiles_ms(officers.warmup_route_s),
            },
            "logins_per_s": round(logins.statuses[200] / opts.seconds, 1),
            "login_attempts_per_s": round(sum(logins.statuses.values()) / opts.seconds, 1),
            "logins_429": logins.statuses[429],
            "server_errors": server_errors,
            "failed_requests": len(failures),
            "failure_examples": failures[:5],
            "load_avg_before": load_before,
            "load_avg_after": load_avg(),
        }
    )
    doc["passed"] = (
        server_errors == 0 and not failures and route["p99_ms"] < 1000 * opts.p99_target_s
    )
    return doc


def report_rows(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The table rows of a login-flood document."""
    o, r, w = doc["options"], doc["route"], doc["route_warmup"]
    return [
        (
            "clients (officers + login flood)",
            f"{o['clients']} ({o['officers']} + {o['login_clients']})",
        ),
        ("API worker processes", str(o["api_workers"])),
        ("seconds", f"{o['seconds']:g}"),
        ("responses by status", ", ".join(f"{c}: {n:,}" for c, n in doc["statuses"].items())),
        ("officer route during the flood: answers", f"{r['answers']:,}"),
        (
            "officer route during the flood: p50 / p99 / max",
            f"{r['p50_ms']:,.1f} / {r['p99_ms']:,.1f} / {r['max_ms']:,.1f} ms",
        ),
        (
            f"officer route, first {o['warmup_s']:g} s alone (cold): p50 / p99 (n)",
            f"{w['p50_ms']:,.1f} / {w['p99_ms']:,.1f} ms ({w['answers']:,})",
        ),
        ("logins accepted per s", f"{doc['logins_per_s']:,.1f}"),
        ("login attempts per s (all answers)", f"{doc['login_attempts_per_s']:,.1f}"),
        ("logins refused with 429", f"{doc['logins_429']:,}"),
        ("5xx / failed requests", f"{doc['server_errors']} / {doc['failed_requests']}"),
        (
            f"target: 0 5xx, route p99 < {o['p99_target_s']:g} s",
            "met" if doc["passed"] else "NOT MET",
        ),
        ("load before → after", f"{doc['load_avg_before']} → {doc['load_avg_after']}"),
    ]
