"""Least-privilege database roles (migration 0040) on the real PostgreSQL.

A fresh migrated database and one LOGIN role of this run's own in each group role
(``tagtrail_engine``, ``tagtrail_api``, ``tagtrail_readonly``), dropped afterwards: roles are
cluster-wide and the machine is shared. The engine runs over MQTT logged in as the engine
login (store, alert, quarantine, redelivery, partitions ahead, heartbeats, retention with a
case hold, a reconnect after its connections are killed); the API answers every endpoint for
every role it admits logged in as the API login; and each login is refused what it must not do.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import paho.mqtt.client as mqtt
import psycopg
import pytest
from api_helpers import ROLES, add_user, config, create_migrated_database, login
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from psycopg import sql
from scenarios import line_city, registration
from testsupport import create_database, drop_database
from theft_scenes import register, report_theft, ride

from api.app import create_app
from api.openapi import route_roles
from api.registry import loaders as registry
from reader_gateway.brokers import mqtt_endpoint
from reader_gateway.wire import batch_from_columns, encode_batch, reads_topic
from track_engine.consumer.config import EngineConfig
from track_engine.consumer.service import EngineService
from track_engine.db.migrate import migrate
from track_engine.pipeline import Engine
from track_engine.reader_status import Heartbeat, record_heartbeats
from track_engine.retention import apply_retention

GROUPS = ("tagtrail_engine", "tagtrail_api", "tagtrail_readonly")
T0_US = 1_764_396_000_000_000  # 2025-11-29T06:00:00Z: a year back, so retention may drop it
T0 = datetime.fromtimestamp(T0_US / 1e6, tz=UTC)
WATCHED = "E28011A100000000000000AA"
OTHER = "E2000000000000000000BBBB"


@dataclass(frozen=True)
class Logins:
    """URLs of one database as its owner and as a member of each group role."""

    owner: str
    engine: str
    api: str
    readonly: str
    names: dict[str, str]  # group role -> this run's login role


def _as_user(url: str, user: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["user"] = user
    return psycopg.conninfo.make_conninfo(**info)


@pytest.fixture(scope="module")
def logins(pg_admin_url: str) -> Iterator[Logins]:
    """A migrated database and a LOGIN role in each group role, all dropped afterwards."""
    suffix = uuid.uuid4().hex[:10]
    names = {group: f"tt_{group.removeprefix('tagtrail_')}_{suffix}" for group in GROUPS}
    name, url = create_migrated_database(pg_admin_url)
    created: list[str] = []
    try:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            for group, login_role in names.items():
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(
                        sql.Identifier(login_role), sql.Identifier(group)
                    )
                )
                created.append(login_role)
        yield Logins(
            owner=url,
            engine=_as_user(url, names["tagtrail_engine"]),
            api=_as_user(url, names["tagtrail_api"]),
            readonly=_as_user(url, names["tagtrail_readonly"]),
            names=names,
        )
    finally:
        drop_database(pg_admin_url, name)  # WITH (FORCE): their sessions go with it
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            for login_role in created:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(login_role)))


def _refused(url: str, statement: str, params: tuple[object, ...] = ()) -> str | None:
    """The error a statement gets (None if it got through; then it is rolled back)."""
    with psycopg.connect(url) as conn:
        try:
            conn.execute(statement, params or None)
        except psycopg.Error as exc:
            return f"{type(exc).__name__}: {exc}"
        conn.rollback()
        return None


def _assert_refused(url: str, statements: list[str]) -> None:
    passed = [s for s in statements if _refused(url, s) is None]
    assert passed == [], f"allowed but should be refused: {passed}"


def _denied(url: str, statements: list[str]) -> None:
    """Each statement is refused for lack of a privilege (not for some other error)."""
    for statement in statements:
        error = _refused(url, statement)
        assert error is not None, f"allowed: {statement}"
        assert error.startswith("InsufficientPrivilege"), (statement, error)


def _wait(condition: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# --- the roles themselves ---------------------------------------------------------------


def test_group_roles_cannot_log_in_own_nothing_and_never_delete(logins: Logins) -> None:
    with psycopg.connect(logins.owner) as conn:
        rows = conn.execute(
            "SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls "
            "FROM pg_roles WHERE rolname = ANY(%s) ORDER BY rolname",
            (list(GROUPS),),
        ).fetchall()
        assert rows == [(g, False, False, False, False, False) for g in sorted(GROUPS)]
        everyone = [*GROUPS, *logins.names.values()]
        owned = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
            "WHERE r.rolname = ANY(%s)",
            (everyone,),
        ).fetchall()
        assert owned == []
        # No group role may delete or truncate any table, or change the audit log.
        loose = conn.execute(
            """SELECT r, c.relname, p FROM unnest(%s::text[]) r,
                      pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
                      unnest(ARRAY['DELETE', 'TRUNCATE', 'TRIGGER', 'REFERENCES']) p
               WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
                 AND has_table_privilege(r, c.oid, p)""",
            (list(GROUPS),),
        ).fetchall()
        assert loose == []
        audit = conn.execute(
            "SELECT r FROM unnest(%s::text[]) r "
            "WHERE has_table_privilege(r, 'audit_log', 'UPDATE')",
            (list(GROUPS),),
        ).fetchall()
        assert audit == []
        # National ID ciphertext (and hash) and password hashes: the API's only.
        for table, column in (
            ("owners", "id_number_enc"),
            ("owners", "id_number_hash"),
            ("users", "password_hash"),
        ):
            readers = conn.execute(
                "SELECT r FROM unnest(%s::text[]) r "
                "WHERE has_column_privilege(r, %s, %s, 'SELECT')",
                (list(GROUPS), table, column),
            ).fetchall()
            assert readers == [("tagtrail_api",)], (table, column)


def test_databases_of_one_cluster_migrate_concurrently(pg_admin_url: str) -> None:
    """Roles are cluster-wide while each database's migrations are serialised on their own:
    three fresh databases migrating at once must all succeed."""
    databases = [create_database(pg_admin_url) for _ in range(3)]
    errors: list[BaseException] = []

    def run(url: str) -> None:
        try:
            migrate(url)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(url,)) for _, url in databases]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == []
        for _, url in databases:
            with psycopg.connect(url) as conn:
                fn = conn.execute(
                    "SELECT prosecdef, proconfig FROM pg_proc "
                    "WHERE proname = 'tagtrail_ensure_partitions'"
                ).fetchone()
                assert fn == (True, ["search_path=public, pg_temp"])
    finally:
        for name, _ in databases:
            drop_database(pg_admin_url, name)


def test_tables_of_later_migrations_are_the_apis_not_the_engines(logins: Logins) -> None:
    with psycopg.connect(logins.owner) as conn:  # as a later migration would, as the owner
        conn.execute(
            "CREATE TABLE later_migration (id bigint GENERATED ALWAYS AS IDENTITY, note text)"
        )
    try:
        with psycopg.connect(logins.api) as conn:
            conn.execute("INSERT INTO later_migration DEFAULT VALUES")
            conn.execute("UPDATE later_migration SET note = 'x'")
        assert _refused(logins.api, "DELETE FROM later_migration") is not None
        with psycopg.connect(logins.readonly) as conn:
            assert conn.execute("SELECT count(*) FROM later_migration").fetchone() == (1,)
        _denied(logins.readonly, ["INSERT INTO later_migration DEFAULT VALUES"])
        _denied(logins.engine, ["SELECT * FROM later_migration"])
    finally:
        with psycopg.connect(logins.owner) as conn:
            conn.execute("DROP TABLE later_migration")


# --- the engine ---------------------------------------------------------------------------


def _setup_engine_world(owner_url: str) -> None:
    """As the owner: a stolen bike with a case hold on its tag, and a reader."""
    with psycopg.connect(owner_url) as conn:
        ids = registry.register_bikes(
            conn,
            [
                registry.Registration(
                    owner_name="Li Lei", owner_phone="13800000000",
                    owner_id_number="110101199003074258", brand="Yadea", colour="red",
                    frame_number="FRAMEROLE1", plate="ZBROLE1", tag_id=WATCHED,
                )
            ],
            registered_at=T0 - timedelta(days=300),
            id_hash_key=b"k" * 32,
        )  # fmt: skip
        theft_id, _ = registry.open_theft(
            conn, bike_id=ids["ZBROLE1"], stolen_at=T0 - timedelta(hours=1),
            reported_at=T0 - timedelta(minutes=50), place="gate", description="",
            case_number="C-ROLES",
        )  # fmt: skip
        conn.execute(
            "INSERT INTO case_holds (theft_id, tag_id, held_from) VALUES (%s, %s, %s)",
            (theft_id, WATCHED, T0 - timedelta(hours=1)),
        )
        conn.execute(
            "INSERT INTO readers (reader_id, protocol, lon, lat, x_m, y_m) "
            "VALUES ('R0001', 'r2000', 120, 30, 0, 0)"
        )


def _mqtt_client(url: str, client_id: str) -> mqtt.Client:
    host, port = mqtt_endpoint(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.connect(host, port)
    client.loop_start()
    return client


def _batch(seq: int, first_us: int, n: int, tags: list[str]) -> bytes:
    return encode_batch(
        batch_from_columns(
            gateway_id="gw-roles", batch_seq=seq, sent_at_us=first_us,
            reader_ids=["R0001"] * n, antenna=[1] * n, tag=tags, rssi_dbm=[-60.0] * n,
            read_at_us=[first_us + i * 100_000 for i in range(n)], seq=list(range(n)),
        )
    )  # fmt: skip


def _reconnects(service: EngineService) -> float | None:
    return service.metrics.registry.get_sample_value("tagtrail_engine_db_reconnects_total")


def test_engine_login_runs_the_engine(logins: Logins, mqtt_url: str, topic_prefix: str) -> None:
    _setup_engine_world(logins.owner)
    assert migrate(logins.engine) == []  # the start-up check works without CREATE
    service = EngineService(
        EngineConfig(
            database_url=logins.engine, mqtt_url=mqtt_url, topic_prefix=topic_prefix,
            shards=(0,), client_id=f"engine-{topic_prefix}", gap_s=5.0,
            persistent_session=False, read_max_age_s=None,  # T0 is older than the window
        )
    )  # fmt: skip
    stop = threading.Event()
    alerts: list[dict[str, object]] = []
    listener = _mqtt_client(mqtt_url, f"alerts-{topic_prefix}")
    listener.on_message = lambda _c, _u, m: alerts.append(orjson.loads(m.payload))
    listener.subscribe(f"{topic_prefix}/alerts/#", qos=1)
    publisher = _mqtt_client(mqtt_url, f"pub-{topic_prefix}")
    topic = reads_topic(0, f"{topic_prefix}/reads")
    n = 30
    first = _batch(1, T0_US, n, [WATCHED] * 10 + [OTHER] * 20)
    service.start()
    _wait(service.connected.is_set, "the engine's subscription")
    worker = threading.Thread(target=service.run, args=(stop,))
    worker.start()
    try:
        publisher.publish(topic, first, qos=1).wait_for_publish(5)
        publisher.publish(topic, first, qos=1).wait_for_publish(5)  # redelivery: staged path
        publisher.publish(topic, b'{"v": 1, "gateway_id": "broken"}', qos=1).wait_for_publish(5)
        _wait(
            lambda: service.counters.reads_received == 2 * n and service.counters.quarantined == 1,
            "the batches",
        )
        _wait(lambda: len(alerts) == 1, "the alert")
        assert _reconnects(service) == 0
        # Kill both of the engine's connections: it reconnects as the same login.
        with psycopg.connect(logins.owner, autocommit=True) as conn:
            killed = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = %s",
                (logins.names["tagtrail_engine"],),
            ).fetchone()
        assert killed is not None
        assert killed[0] >= 2
        _wait(lambda: (_reconnects(service) or 0) >= 1, "the reconnect")
        assert _reconnects(service) == service.counters.db_reconnects
        # A day later (the next day's partition), after the reconnect.
        later = _batch(2, T0_US + 86_400_000_000, 5, [OTHER] * 5)
        publisher.publish(topic, later, qos=1).wait_for_publish(5)
        _wait(lambda: service.counters.reads_received == 2 * n + 5, "the batch after it")
    finally:
        stop.set()
        worker.join(10)
        service.flush()
        service.close()
        publisher.loop_stop()
        listener.loop_stop()

    with psycopg.connect(logins.engine) as conn:
        beats = [Heartbeat("R0001", datetime.now(UTC)), Heartbeat("R9999", datetime.now(UTC))]
        assert record_heartbeats(conn, beats) == 1
        conn.commit()
        # Retention: the two days of reads are a year old; the watched tag is held for its case.
        result = apply_retention(conn, retention_days=30, now=datetime.now(UTC))
        assert f"reads_p{T0:%Y%m%d}" in result.partitions_dropped
        assert f"reads_p{T0 + timedelta(days=1):%Y%m%d}" in result.partitions_dropped
        assert result.reads_held == 10

    with psycopg.connect(logins.owner) as conn:
        assert conn.execute("SELECT count(*) FROM reads").fetchone() == (0,)  # all expired
        assert conn.execute("SELECT count(*) FROM held_reads").fetchone() == (10,)
        assert conn.execute("SELECT count(*) FROM passages").fetchone() == (3,)
        assert conn.execute("SELECT count(*) FROM alerts").fetchone() == (1,)
        reason = conn.execute("SELECT reason FROM quarantine").fetchone()
        assert reason is not None
        assert "missing field" in reason[0]
        heard = conn.execute("SELECT last_heard_at FROM readers WHERE reader_id = 'R0001'")
        assert heard.fetchone() != (None,)
        # Housekeeping created today's partitions and the next days' (as the engine).
        today = f"reads_p{datetime.now(UTC):%Y%m%d}"
        parts = conn.execute(
            """SELECT c.relname, pg_get_userbyid(c.relowner), c.relacl::text[]
               FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent IN ('reads'::regclass, 'passages'::regclass)"""
        ).fetchall()
        assert today in {p[0] for p in parts}
        owner = conn.execute("SELECT current_user").fetchone()
        assert owner is not None
        for name, part_owner, acl in parts:
            assert part_owner == owner[0], name  # the engine owns nothing
            grantees = {entry.split("=")[0]: entry.split("=")[1].split("/")[0] for entry in acl}
            others = {g: p for g, p in grantees.items() if g != owner[0]}
            assert others == {"tagtrail_engine": "r"}, (name, acl)
    assert alerts[0]["tag_id"] == WATCHED


def test_engine_login_is_refused_what_is_not_its_job(logins: Logins) -> None:
    with psycopg.connect(logins.owner) as conn:
        conn.execute("SELECT tagtrail_ensure_partitions('reads', now(), now())")
    today = f"reads_p{datetime.now(UTC):%Y%m%d}"
    _denied(
        logins.engine,
        [
            "SELECT id_number_enc FROM owners",
            "SELECT id_number_hash FROM owners",
            "SELECT name, phone FROM owners",
            "SELECT password_hash FROM users",
            "SELECT username FROM users",
            "SELECT * FROM audit_log",
            "INSERT INTO audit_log (actor, action) VALUES ('engine', 'x')",
            "UPDATE reads SET rssi_dbm = 0",
            "DELETE FROM reads",
            "DELETE FROM passages",
            "TRUNCATE reads",
            "DELETE FROM alerts",
            "UPDATE alerts SET acknowledged_at = now()",
            "SELECT * FROM quarantine",
            "UPDATE readers SET clock_offset_ms = 1000",
            "INSERT INTO watches (bike_id, kind) VALUES (1, 'armed')",
            "UPDATE bikes SET deregistered_at = now()",
            f"DROP TABLE {today}",
            "ALTER TABLE audit_log DISABLE TRIGGER ALL",
            "CREATE TABLE engine_was_here (x int)",
            "SELECT tagtrail_partition_privileges('reads_p20000101')",
        ],
    )
    # The partition functions serve partitions of reads and passages only, and drop past
    # days only: never today's reads, never another table.
    _assert_refused(
        logins.engine,
        [
            f"SELECT tagtrail_drop_partition('reads', '{today}')",
            "SELECT tagtrail_drop_partition('audit_log', 'audit_log')",
            "SELECT tagtrail_drop_partition('reads', 'audit_log')",
            "SELECT tagtrail_drop_partition('reads', 'passages_p20000101')",
        ],
    )
    with psycopg.connect(logins.engine) as conn:
        refused = conn.execute(
            "SELECT tagtrail_ensure_partitions('audit_log', now(), now())"
        ).fetchone()
        assert refused == (0,)


# --- the API ------------------------------------------------------------------------------


def _ride(engine_url: str, tag_id: str, start: datetime, readers: list[str]) -> None:
    """As the engine login: the bike passes ``readers`` 70 s apart."""
    assert ride(engine_url, tag_id, start, readers, gateway_id="gw-roles-api").alerts


LIVE = {"max_events": "1", "max_seconds": "0.2"}
# An open case and a reason that says something (api/grounds.py refuses "t" with a 422).
GROUNDS = {"case_number": "HZ-ROLES-1", "reason": "role check of every endpoint"}


def test_api_login_serves_every_endpoint(logins: Logins) -> None:
    line_city(logins.owner)  # a road network import is the operator's, as the owner
    for role in ROLES:
        add_user(logins.api, f"db-{role}", role)  # accounts written as the API login
    with TestClient(create_app(config(logins.api))) as client:
        headers = {role: login(client, f"db-{role}") for role in ROLES}
        now = datetime.now(UTC).replace(microsecond=0)
        event = client.post(
            "/api/v1/events",
            json={
                "name": "Roles day", "place": "Gate", "capacity": 5,
                "starts_at": (now - timedelta(hours=1)).isoformat(),
                "ends_at": (now + timedelta(hours=1)).isoformat(),
            },
            headers=headers["registrar"],
        )  # fmt: skip
        assert event.status_code == 201, event.text
        body = registration(8100, event_id=event.json()["event_id"])
        bike_id = register(client, headers, body)
        # The API decrypts the ID number it stored: it shows the last four characters.
        detail = client.get(f"/api/v1/bikes/{bike_id}", headers=headers["officer"])
        assert detail.status_code == 200, detail.text
        assert body["owner"]["id_number"][-4:] in orjson.dumps(detail.json()).decode()
        theft_id = report_theft(
            client, headers, bike_id, now - timedelta(minutes=5), case_number="HZ-ROLES-1"
        )
        ride_start = datetime.now(UTC) + timedelta(seconds=2)
        _ride(logins.engine, body["tag_id"], ride_start, ["R0", "R1", "R2"])
        route = client.get(
            f"/api/v1/routes/{body['plate']}",
            params={
                "case_number": "HZ-ROLES-1",
                "until": (ride_start + timedelta(minutes=10)).isoformat(),
            },
            headers=headers["officer"],
        )
        assert route.status_code == 200, route.text
        passages = route.json()["properties"]["passages"]
        assert [p["reader_id"] for p in passages] == ["R0", "R1", "R2"]
        audit = client.get("/api/v1/audit", params={"bike_id": bike_id}, headers=headers["auditor"])
        assert audit.status_code == 200, audit.text
        assert "route.view" in {a["action"] for a in audit.json()["items"]}

        # Every endpoint, for every role it admits: never a 5xx (a missing grant would be a
        # permission error, which the API does not turn into anything else).
        samples = {
            "{plate}": body["plate"], "{case_number}": "HZ-ROLES-1", "{reader_id}": "R1",
            "{bike_id}": str(bike_id), "{theft_id}": str(theft_id),
        }  # fmt: skip
        checked = 0
        for route_ in client.app.state.api_routes:  # type: ignore[attr-defined]
            roles = route_roles(route_)
            if roles is None or not route_.path.startswith("/api/"):
                continue
            url = route_.path
            for key, value in samples.items():
                url = url.replace(key, value)
            for name in ("watch_id", "event_id", "booking_id", "user_id"):
                url = url.replace("{" + name + "}", "1")
            for method in sorted(route_.methods):
                for role in roles:
                    response = client.request(
                        method, url, params={**LIVE, **GROUNDS},
                        headers=headers[role], json={},
                    )  # fmt: skip
                    assert response.status_code < 500, (method, url, role, response.text)
                    checked += 1
        assert checked >= 40


def test_api_login_cannot_change_the_audit_log_or_the_evidence(logins: Logins) -> None:
    with psycopg.connect(logins.api) as conn:  # what it is for: append and read
        conn.execute("INSERT INTO audit_log (actor, action) VALUES ('api', 'test.append')")
        conn.commit()
        count = conn.execute("SELECT count(*) FROM audit_log").fetchone()
        assert count is not None
        assert count[0] >= 1
        conn.execute("SELECT id_number_enc, password_hash FROM owners, users LIMIT 1")
    with psycopg.connect(logins.owner) as conn:
        conn.execute("SELECT tagtrail_ensure_partitions('reads', now(), now())")
        before = conn.execute("SELECT * FROM audit_log ORDER BY audit_id").fetchall()
    today = f"reads_p{datetime.now(UTC):%Y%m%d}"
    _denied(
        logins.api,
        [
            "UPDATE audit_log SET actor = 'someone else'",
            "UPDATE audit_log SET reason = '' WHERE true",
            "DELETE FROM audit_log",
            "WITH gone AS (DELETE FROM audit_log RETURNING 1) SELECT count(*) FROM gone",
            "MERGE INTO audit_log a USING (SELECT 1) s ON true WHEN MATCHED THEN DELETE",
            "TRUNCATE audit_log",
            "ALTER TABLE audit_log DISABLE TRIGGER ALL",
            "DROP TRIGGER audit_log_no_update_delete ON audit_log",
            "DROP TABLE audit_log",
            "INSERT INTO reads (tag_id, read_at, reader_id, antenna, rssi_dbm, reader_seq, "
            "gateway_id) VALUES ('AB', now(), 'R', 1, -60, 1, 'forged')",
            f"INSERT INTO {today} (tag_id, read_at, reader_id, antenna, rssi_dbm, reader_seq, "
            "gateway_id) VALUES ('AB', now(), 'R', 1, -60, 1, 'forged')",
            f"SELECT * FROM {today}",
            "UPDATE passages SET reader_id = 'R9'",
            "DELETE FROM passages",
            "DELETE FROM reads",
            "INSERT INTO alerts (watch_id, tag_id, reader_id, read_at) VALUES (1, 'A', 'R', now())",
            "UPDATE alerts SET read_at = now()",
            "DELETE FROM bikes",
            "DELETE FROM owners",
            "DELETE FROM users",
            "UPDATE schema_migrations SET checksum = 'edited'",
            "SELECT tagtrail_ensure_partitions('reads', now(), now() + interval '9 days')",
            f"SELECT tagtrail_drop_partition('reads', '{today}')",
            "CREATE TABLE api_was_here (x int)",
        ],
    )
    with psycopg.connect(logins.owner) as conn:
        after = conn.execute("SELECT * FROM audit_log ORDER BY audit_id").fetchall()
    assert after == before


def test_readonly_login_reads_but_never_writes_or_sees_secrets(logins: Logins) -> None:
    with psycopg.connect(logins.readonly) as conn:
        for table in ("audit_log", "reads", "passages", "bikes", "thefts", "alerts", "quarantine"):
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        conn.execute("SELECT owner_id, name, phone, id_number_tail FROM owners")
        conn.execute("SELECT user_id, username, role, disabled FROM users")
    _denied(
        logins.readonly,
        [
            "SELECT id_number_enc FROM owners",
            "SELECT id_number_hash FROM owners",
            "SELECT * FROM owners",
            "SELECT password_hash FROM users",
            "SELECT * FROM users",
            "INSERT INTO audit_log (actor, action) VALUES ('ro', 'x')",
            "UPDATE audit_log SET actor = 'x'",
            "DELETE FROM audit_log",
            "INSERT INTO reads (tag_id, read_at, reader_id, antenna, rssi_dbm, reader_seq, "
            "gateway_id) VALUES ('AB', now(), 'R', 1, -60, 1, 'x')",
            "UPDATE bikes SET colour = 'x'",
            "INSERT INTO users (username, password_hash, role) VALUES ('x', 'x', 'admin')",
            "UPDATE users SET role = 'admin'",
            "DELETE FROM thefts",
            "TRUNCATE quarantine",
            "SELECT tagtrail_ensure_partitions('reads', now(), now())",
            "CREATE TABLE readonly_was_here (x int)",
        ],
    )


def test_the_engine_merges_late_reads_but_retires_only_passages_a_merged_one_covers(
    logins: Logins,
) -> None:
    tag, reader = "E2000000000000000000C0DE", "R-merge"
    # After every read the module's other tests stored: reads older than the engine's
    # watermark by more than the allowed lateness would rightly not merge.
    with psycopg.connect(logins.owner) as conn:
        newest = conn.execute("SELECT max(read_at) FROM reads").fetchone()
        # Registered: an unknown reader's reads are held apart, never folded into passages.
        conn.execute(
            "INSERT INTO readers (reader_id, protocol, lon, lat, x_m, y_m) "
            "VALUES ('R-merge', 'r2000', 120, 30, 0, 0), ('R-next', 'r2000', 120.1, 30, 0, 0) "
            "ON CONFLICT DO NOTHING"
        )
    start = max(datetime.now(UTC), newest[0] if newest and newest[0] else T0)
    start = start.replace(microsecond=0) + timedelta(minutes=1)
    start_us = int(start.timestamp()) * 1_000_000

    def batch(seq: int, seconds: list[float], at: str = reader) -> object:
        n = len(seconds)
        return batch_from_columns(
            gateway_id="gw-merge", batch_seq=seq, sent_at_us=start_us, reader_ids=[at] * n,
            antenna=[1] * n, tag=[tag] * n, rssi_dbm=[-60.0 - abs(s - 4.0) for s in seconds],
            read_at_us=[start_us + round(s * 1e6) for s in seconds], seq=list(range(n)),
        )  # fmt: skip

    def stored(conn: psycopg.Connection) -> list[tuple[object, ...]]:
        return conn.execute(
            "SELECT first_at, read_count FROM passages WHERE tag_id = %s ORDER BY first_at", (tag,)
        ).fetchall()

    with psycopg.connect(logins.engine) as conn:
        engine = Engine(conn, gap_s=2.0)
        engine.process([batch(1, [0.0, 0.5, 1.0, 7.0, 7.5, 8.0])])  # a hole wider than the gap
        engine.process([batch(2, [60.0], "R-next")])  # event time moves on: both stored
        assert [n for _, n in stored(conn)] == [3, 3]
        engine.process([batch(3, [2.5, 4.0, 5.5])])  # the late middle, as the engine role
        engine.process([batch(4, [70.0], "R-next")])
        assert stored(conn) == [(start, 9)]
        # The engine's role cannot use the function to remove a passage that no stored passage
        # with more reads covers (here: the merged one itself).
        removed = conn.execute(
            "SELECT tagtrail_retire_passages(%s, %s, %s)", ([tag], [reader], [start])
        ).fetchone()
        assert removed == (0,)
        assert stored(conn) == [(start, 9)]
        conn.commit()


def test_unknown_readers_and_acknowledgements_stay_in_their_lanes(logins: Logins) -> None:
    """The engine login holds an unknown reader's reads apart (and may write nothing else of
    them); the API login reads them but cannot forge any, and may record an acknowledgement
    of an alert or flag but change nothing else of either."""
    with psycopg.connect(logins.owner) as conn:
        conn.execute(
            "INSERT INTO readers (reader_id, protocol, lon, lat, x_m, y_m) "
            "VALUES ('R-known', 'r2000', 120, 30, 0, 0) ON CONFLICT DO NOTHING"
        )
    now_us = int(datetime.now(UTC).timestamp()) * 1_000_000
    batch = batch_from_columns(
        gateway_id="gw-lanes", batch_seq=1, sent_at_us=now_us, reader_ids=["R-nobody"] * 3,
        antenna=[1] * 3, tag=["E20000000000000000001A7E"] * 3, rssi_dbm=[-60.0] * 3,
        read_at_us=[now_us + i * 100_000 for i in range(3)], seq=[0, 1, 2],
    )  # fmt: skip
    with psycopg.connect(logins.engine) as conn:
        engine = Engine(conn, gap_s=2.0)
        assert engine.process([batch]).reads_received == 0
        engine.flush()
        assert engine.unknown_readers.held_reads == 3
    with psycopg.connect(logins.api) as conn:
        held = conn.execute(
            "SELECT count(*) FROM unknown_reader_reads WHERE reader_id = 'R-nobody'"
        ).fetchone()
        assert held == (3,)
    _denied(
        logins.api,
        [
            "INSERT INTO unknown_reader_reads (reader_id, tag_id, antenna, rssi_dbm, read_at, "
            "gateway_id) VALUES ('R-x', 'AB', 1, -60, now(), 'forged')",
            "UPDATE unknown_reader_reads SET reader_id = 'R-known'",
            "UPDATE registration_flags SET kind = 'stolen_motor'",
            "UPDATE alerts SET reader_id = 'R-known'",
        ],
    )
    _denied(logins.engine, ["UPDATE unknown_reader_reads SET reader_id = 'R-known'"])
    with psycopg.connect(logins.api) as conn:  # what it is for: who acknowledged, when
        conn.execute("UPDATE alerts SET acknowledged_at = now() WHERE false")
        conn.execute("UPDATE registration_flags SET acknowledged_at = now() WHERE false")
